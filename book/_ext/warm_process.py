"""The warm process of ``warm_kernels``: it imports the modules the chapters share once, then
forks a kernel for each chapter.

Run as ``python warm_process.py MODULE...``. It reads one request per line of stdin, in JSON:
``{"argv": [...], "env": {...}, "cwd": "..."}``, where ``argv`` is the kernel's command line
after ``python -m ipykernel_launcher``. For each it forks a kernel and answers with the
kernel's pid on a line of stdout. It ends when stdin closes. SIGCHLD is ignored, so the system
reaps the kernels that end; their manager watches each by its pid.

Imports nothing but the standard library before the modules it is asked to load.
"""

import importlib
import json
import os
import signal
import sys
import traceback


def become_kernel(request: dict) -> None:
    """In the forked child: run an IPython kernel as ``python -m ipykernel_launcher`` would
    in ``request["cwd"]`` with ``request["env"]``; leave the process when it ends, never
    returning to the warm process's loop."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own process group, which its manager signals
        signal.signal(
            signal.SIGCHLD, signal.SIG_DFL
        )  # its own subprocesses need waiting for
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(2, 1)  # stdout was the answer pipe to the manager
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"], JPY_PARENT_PID=str(os.getppid()))
        # ipykernel read JPY_PARENT_PID when this process imported it: its poller, which ends
        # the kernel should this process end, learns its parent from the command line
        parent = f"--IPKernelApp.parent_handle={os.getppid()}"
        sys.argv = ["ipykernel_launcher", *request["argv"], parent]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exit_:
        code = (
            exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        )
    except BaseException:  # noqa: BLE001 - reported, and the process ends
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(modules: list[str]) -> None:
    del sys.path[0]  # this file's folder: the kernels import from the book's paths only
    for name in modules:
        importlib.import_module(name)
    importlib.import_module("ipykernel.kernelapp")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            become_kernel(request)
        try:
            os.setpgid(
                pid, pid
            )  # also here, so that the group exists when the pid is sent
        except OSError:  # the child got there first, or has already ended
            pass
        print(pid, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

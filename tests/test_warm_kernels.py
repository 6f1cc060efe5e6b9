"""Kernels forked from a warm process (book/_ext/warm_kernels.py) behave as cold ones: they
run in the folder and environment they are given, find the preloaded module loaded, can be
interrupted, and a kernel that dies or hangs is reported as a cold one is; no process outlives
its use. A warm process that cannot start leaves kernels to start cold. The build's own
use of them is covered by tests/test_build.py (its books preload a light module) and by the
book's build and second execution."""

import asyncio
import os
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

import warm_kernels
from parallel_execution import KERNEL_MANAGER, kernel_manager

pytestmark = pytest.mark.skipif(not warm_kernels.AVAILABLE, reason="Linux only")

PRELOAD = ["fractions"]  # light, and not imported by a cold kernel


def notebook(*cells: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def run(nb, folder, manager, timeout=60):
    """Execute ``nb`` in place, in ``folder``, in a kernel of ``manager``."""
    return NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=manager,
        resources={"metadata": {"path": str(folder)}},
    ).execute()


def printed(nb) -> list[str]:
    return [
        "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        for cell in nb.cells
    ]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_warm_kernel_runs_where_and_as_it_is_told(tmp_path, monkeypatch):
    monkeypatch.setenv("WARM_KERNEL_PROBE", "given")
    cells = (
        "import os, sys",
        "print('fractions' in sys.modules, os.getcwd(), os.environ['WARM_KERNEL_PROBE'])",
        "print(os.getpgid(0) == os.getpid(), sys.path)",
        "import subprocess\nprint(subprocess.run(['true']).returncode)",
    )
    warm = run(notebook(*cells), tmp_path, kernel_manager(PRELOAD))
    cold = run(notebook(*cells), tmp_path, KERNEL_MANAGER)
    assert printed(warm)[1] == f"True {tmp_path} given\n"
    assert printed(cold)[1] == f"False {tmp_path} given\n"
    # its own process group and a cold kernel's sys.path; a child of its own can be
    # waited for
    assert printed(warm)[2:] == printed(cold)[2:]
    assert printed(warm)[2].startswith("True [") and printed(warm)[3] == "0\n"


def test_a_warm_kernel_is_interrupted_like_a_cold_one(tmp_path):
    code = (
        "import time\ntry:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n    print(1)"
    )

    async def interrupt():
        manager = kernel_manager(PRELOAD)(kernel_name="python3")
        await manager.start_kernel(cwd=str(tmp_path))
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=30)
            client.execute(code)
            await asyncio.sleep(2)
            start = time.monotonic()
            await manager.interrupt_kernel()
            reply = await client.get_shell_msg(timeout=20)
            return manager.provisioner.pid, reply, time.monotonic() - start
        finally:
            client.stop_channels()
            await manager.shutdown_kernel()

    pid, reply, seconds = asyncio.run(interrupt())
    assert reply["content"]["status"] == "ok" and seconds < 10
    assert not alive(pid), "the kernel outlived its shutdown"


def test_a_warm_kernel_that_dies_or_hangs_is_reported_and_gone(tmp_path):
    manager = kernel_manager(PRELOAD)
    dies = notebook("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    with pytest.raises(DeadKernelError):
        run(dies, tmp_path, manager)
    hangs = notebook(
        "import os\nprint(os.getpid(), flush=True)", "import time\ntime.sleep(60)"
    )
    start = time.monotonic()
    with pytest.raises(CellTimeoutError):
        run(hangs, tmp_path, manager, timeout=2)
    assert (
        time.monotonic() - start < 20
    )  # stopped at its limit, not at the end of its sleep
    pid = int(printed(hangs)[0])
    time.sleep(1)
    assert not alive(pid), "the timed-out kernel is still running"


def test_kernels_start_cold_when_the_warm_process_cannot_start(tmp_path):
    manager = kernel_manager(["a_module_that_is_not_installed"])
    nb = run(
        notebook("import sys\nprint('fractions' in sys.modules)"), tmp_path, manager
    )
    assert printed(nb) == ["False\n"]


def test_the_warm_process_ends_when_its_manager_lets_go(tmp_path):
    warm = warm_kernels.WarmProcess(sys.executable, ("fractions",), dict(os.environ))
    pid = warm.fork(
        ["-f", str(tmp_path / "kernel.json")], dict(os.environ), str(tmp_path)
    )
    assert pid and pid != warm.process.pid
    warm.process.stdin.close()
    assert warm.process.wait(timeout=20) == 0
    deadline = time.monotonic() + 10  # the kernel, orphaned, sees its parent gone
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(pid)

"""Kernels forked from a process that has already imported torch, instead of started cold.

Every chapter executes in a fresh kernel, and a fresh kernel spends about 3 CPU-seconds
importing torch and torchvision before its first cell computes anything: a build pays that
once per chapter, a second execution again. Here one "warm process" (``warm_process.py``)
imports those modules once and forks a kernel for each chapter. A forked kernel is as fresh as
a cold one: nothing of any chapter has run in it, only those imports (and every chapter seeds
its own random streams); it simply starts at once. matplotlib is not preloaded: it reads the
kernel's plotting backend from the environment at import.

Linux only (fork, and ``os.pidfd_open`` to watch a kernel that is not the manager's child);
elsewhere, or for a command that is not ``python -m ipykernel_launcher``, or when the warm
process cannot start, kernels start cold, as they always did.

jupyter_client's provisioners are its way to launch kernels. Beyond that, this relies on two
things of jupyter-client 8.10 (checked in ``_versions``): a kernel manager keeps a provisioner
set before it starts the kernel (``KernelManager._async_pre_start_kernel``), and
``LocalProvisioner`` uses of its process handle only ``pid``, ``poll``, ``wait``,
``send_signal``, ``kill``, ``terminate`` and the three std streams.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from functools import cache
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

WARM_PROCESS = Path(__file__).with_name("warm_process.py")
#: variables that may differ from kernel to kernel of one warm process; a kernel whose other
#: variables differ (another PYTHONPATH, say) gets a warm process of its own
PER_KERNEL = ("JPY_PARENT_PID",)
AVAILABLE = sys.platform == "linux" and hasattr(os, "pidfd_open")


class WarmProcess:
    """One warm process, started with the environment its kernels will have."""

    def __init__(self, python: str, modules: tuple[str, ...], env: dict[str, str]):
        self.lock = threading.Lock()
        self.process = subprocess.Popen(
            [python, str(WARM_PROCESS), *modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            start_new_session=True,  # a Ctrl-C at the terminal reaches the build, not it
        )
        # closing its stdin ends it; at exit the kernels have been shut down (one still
        # running would end too: its poller sees its parent gone)
        atexit.register(self.process.stdin.close)

    def fork(self, argv: list[str], env: dict[str, str], cwd: str) -> int | None:
        """The pid of a new kernel, or None if the warm process has ended (its imports
        failed, say)."""
        request = json.dumps({"argv": argv, "env": env, "cwd": cwd})
        with self.lock:
            try:
                self.process.stdin.write(request + "\n")
                self.process.stdin.flush()
                answer = self.process.stdout.readline()
            except (OSError, ValueError):
                return None
        return int(answer) if answer.strip() else None


_starting = threading.Lock()  # kernels start from several threads at once


def warm_process(python: str, modules: tuple[str, ...], env: tuple) -> WarmProcess:
    """The warm process for kernels run by ``python`` with the environment ``env`` (pairs),
    started on first use."""
    with _starting:
        return _warm_process(python, modules, env)


@cache
def _warm_process(python: str, modules: tuple[str, ...], env: tuple) -> WarmProcess:
    return WarmProcess(python, modules, dict(env))


class ForkedKernel:
    """A forked kernel, handled as ``LocalProvisioner`` handles a ``Popen``. Its exit status
    goes to the warm process (its parent), so an ended kernel reports 1."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None
        try:
            self.pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # already ended
            self.pidfd, self.returncode = None, 1

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self.pidfd], [], [], 0)[0]:
            os.close(self.pidfd)
            self.returncode = 1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class WarmProvisioner(LocalProvisioner):
    """Launches a kernel by forking it from the warm process that imported ``preloaded``."""

    preloaded: tuple[str, ...] = ()

    async def launch_kernel(self, cmd: list[str], **kwargs):
        env = kwargs.get("env") or dict(os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        pid = None
        if AVAILABLE and cmd[1:3] == ["-m", "ipykernel_launcher"]:
            shared = tuple(
                sorted((k, v) for k, v in env.items() if k not in PER_KERNEL)
            )
            pid = warm_process(cmd[0], self.preloaded, shared).fork(cmd[3:], env, cwd)
        if pid is None:
            return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedKernel(pid)
        self.kernel_id = kwargs.get("kernel_id") or self.kernel_id
        self.pid = self.pgid = pid
        self.cwd = cwd
        return self.connection_info


def with_warm_kernels(manager_class: type, modules: list[str]) -> type:
    """A subclass of the kernel manager ``manager_class`` whose kernels are forked from a
    warm process that has imported ``modules``."""

    class Provisioner(WarmProvisioner):
        preloaded = tuple(modules)

    class WarmKernelManager(manager_class):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.provisioner = Provisioner(kernel_spec=self.kernel_spec, parent=self)

    return WarmKernelManager

"""Start processes that train together, and make every way they can fail end the launch.

:func:`launch` starts one process per rank with ``torch.multiprocessing`` (spawn), joins
them into one process group — gloo on CPU, NCCL where every process has a GPU of its own —
and returns what rank 0's function returned. The rendezvous is a ``TCPStore`` served by the
launching process on a socket bound to 127.0.0.1 at a port the system picks, so nothing
listens beyond this machine and no port is guessed. A worker that raises, hangs or dies
makes the launch raise :class:`LaunchError` with that worker's own traceback (or its stack
when it hung or crashed), within the launch's timeout; no worker and no port outlives it.
"""

import faulthandler
import multiprocessing.connection
import os
import pickle
import signal
import socket
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing

from .. import seeding

#: How long a collective (and the rendezvous) may wait for the other processes. A step
#: takes milliseconds; the rendezvous waits for the slowest process to import torch.
GROUP_TIMEOUT = 60.0

#: After one worker failed, how long the others get to fail on their own (their peer is
#: gone, so their next collective raises) before they are stopped.
GRACE = 3.0


@dataclass(frozen=True)
class Failure:
    """One worker that failed: its rank, what became of it, and what it left (what it
    wrote to stderr, then its traceback, or its Python stack if it crashed or had to be
    stopped)."""

    rank: int
    fate: str
    report: str


class LaunchError(RuntimeError):
    """A launch failed. ``failures`` (also in the message) lists the workers that did,
    the first failure first; ``pids`` and ``port`` are what the launch used, all gone
    when this is raised."""

    def __init__(
        self, header: str, failures: list[Failure], pids: list[int], port: int
    ):
        parts = [header] + [
            f"\n--- rank {f.rank}: {f.fate} ---\n{f.report}".rstrip() for f in failures
        ]
        super().__init__("\n".join(parts))
        self.failures, self.pids, self.port = failures, pids, port


def backend(world_size: int) -> str:
    """NCCL when every process can have a GPU of its own, else gloo on the CPU."""
    if dist.is_nccl_available() and torch.cuda.device_count() >= world_size:
        return "nccl"
    return "gloo"


def device() -> torch.device:
    """Where this process's tensors live: its own GPU under NCCL, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def loopback_interface() -> str | None:
    """The name of the loopback network interface ("lo" on Linux, "lo0" on macOS)."""
    names = {name for _, name in socket.if_nameindex()}
    return next((name for name in ("lo", "lo0") if name in names), None)


@contextmanager
def process_group(
    rank: int,
    world_size: int,
    store=None,
    timeout=GROUP_TIMEOUT,
    local_rank: int | None = None,
):
    """Inside the block this process is rank ``rank`` of a group of ``world_size``.

    ``store=None`` takes the rendezvous from the environment (``MASTER_ADDR``,
    ``MASTER_PORT``), as ``torchrun`` sets it. Under NCCL the process uses GPU
    ``local_rank`` (default ``rank``). gloo and NCCL are told to talk over the loopback
    interface unless the environment names another."""
    interface = loopback_interface()
    if interface:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", interface)
        os.environ.setdefault("NCCL_SOCKET_IFNAME", interface)
    name = backend(world_size)
    if name == "nccl":
        torch.cuda.set_device(rank if local_rank is None else local_rank)
    dist.init_process_group(
        name,
        store=store,
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=timeout),
    )
    yield name
    dist.destroy_process_group()  # not after an error: the process exits instead


@contextmanager
def loopback_store(world_size: int):
    """A rendezvous store served from this process on 127.0.0.1; yields its port.

    The socket is bound before the store takes it over, so the port is free by
    construction and reachable from this machine only; it closes with the store."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    store = dist.TCPStore(
        "127.0.0.1",
        port,
        world_size,
        is_master=True,
        wait_for_workers=False,
        master_listen_fd=listener.detach(),  # the store owns and closes the socket
    )
    try:
        yield port
    finally:
        del store


def running(pid: int) -> bool:
    """Is process ``pid`` still there? (POSIX; to check that a launch left none.)"""
    if os.name != "posix":
        raise NotImplementedError(f"running: needs a POSIX system, not {os.name!r}")
    try:
        os.kill(pid, 0)  # signal 0: no signal, only the check that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def listening(port: int) -> bool:
    """Does anything accept connections on 127.0.0.1:``port``?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _worker(rank, function, args, world_size, port, folder, deadline, group_timeout):
    """One process of a launch: join the group, run ``function``, hand rank 0's result
    over in a file. A failure leaves its traceback in a file, a crash or the deadline
    leaves the stack, and what the process writes to stderr (torch's C++ included)
    goes to a file too, into the report rather than into the launcher's output."""
    folder = Path(folder)
    sys.stderr.flush()
    stderr = os.open(folder / f"stderr-{rank}.txt", os.O_WRONLY | os.O_CREAT)
    os.dup2(stderr, 2)
    os.close(stderr)
    stack = open(folder / f"stack-{rank}.txt", "w")  # noqa: SIM115 - open for the process's life
    faulthandler.enable(stack)  # a crash (segfault, abort) writes the Python stack here
    if hasattr(signal, "SIGUSR1"):  # the launcher's "where are you?" before it stops us
        faulthandler.register(signal.SIGUSR1, stack, all_threads=True)
    # A hung worker stops itself at the deadline, with its stack, even if the launcher is
    # gone.
    faulthandler.dump_traceback_later(
        max(deadline - time.time(), 1.0), exit=True, file=stack
    )
    try:
        seeding.seed_everything()  # one torch thread per process, as in the book
        store = dist.TCPStore(
            "127.0.0.1",
            port,
            world_size,
            is_master=False,
            timeout=timedelta(seconds=group_timeout),
        )
        with process_group(rank, world_size, store, group_timeout):
            result = function(rank, world_size, *args)
        if rank == 0:
            with open(folder / "result.pickle", "wb") as file:
                pickle.dump(result, file)
        code = 0
    except Exception:  # noqa: BLE001 - whatever fails, the launcher reports it
        (folder / f"traceback-{rank}.txt").write_text(traceback.format_exc())
        code = 1
    faulthandler.cancel_dump_traceback_later()
    sys.stdout.flush()
    sys.stderr.flush()
    # Its work done and reported, the process skips the interpreter's teardown: after a
    # peer failed, torch's background threads can abort it there (std::terminate),
    # turning a clean "exited with code 1" into a SIGABRT some runs and not others.
    os._exit(code)


def launch(
    function,
    args: tuple = (),
    world_size: int = 2,
    timeout: float = 300.0,
    group_timeout: float = GROUP_TIMEOUT,
):
    """Run ``function(rank, world_size, *args)`` in ``world_size`` new processes joined
    in one process group; return what rank 0's call returned.

    ``function`` and its arguments must be picklable (``function`` defined at the top of
    a module). Raises :class:`LaunchError` when a worker raises, dies or is still running
    after ``timeout`` seconds; each collective waits at most ``group_timeout`` seconds
    for the others."""
    if world_size < 1:
        raise ValueError(f"launch: world_size must be ≥ 1, got {world_size}")
    if not _importable(function):
        raise ValueError(
            f"launch: {function.__qualname__} is defined in __main__ (a script or a "
            "notebook), which new processes cannot import; define it in a module"
        )
    if not 0 < group_timeout <= timeout:
        raise ValueError(
            f"launch: need 0 < group_timeout ≤ timeout, got {group_timeout} and {timeout}"
        )
    context = torch.multiprocessing.get_context("spawn")
    start = time.monotonic()
    deadline = time.time() + timeout
    with tempfile.TemporaryDirectory(prefix="mnistbook-launch-") as folder:
        with loopback_store(world_size) as port:
            processes = [
                context.Process(
                    target=_worker,
                    args=(
                        rank,
                        function,
                        args,
                        world_size,
                        port,
                        folder,
                        deadline,
                        group_timeout,
                    ),
                    daemon=True,  # stopped if this process exits first
                )
                for rank in range(world_size)
            ]
            try:
                for process in processes:
                    process.start()
                ended = _supervise(processes, start + timeout + GRACE)
            finally:
                _stop(processes, Path(folder))
            if len(ended) == world_size and all(p.exitcode == 0 for p in processes):
                with open(Path(folder) / "result.pickle", "rb") as file:
                    return pickle.load(file)
        header, failures = _failures(processes, ended, Path(folder), start, timeout)
    raise LaunchError(header, failures, [p.pid for p in processes], port)


def _importable(function) -> bool:
    """Can a spawned process find ``function``? Not if it was defined in a notebook,
    an interactive session or the ``__main__`` of ``python -m package``: spawn imports
    ``__main__`` again only from a script's file or a module's name."""
    if getattr(function, "__module__", None) != "__main__":
        return True
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return not spec.name.endswith("__main__")
    return getattr(main, "__file__", None) is not None


def _supervise(processes, end: float) -> dict[int, float]:
    """Wait until every process has ended, one has failed (then a grace period for the
    others), or ``end`` (monotonic) has come. Returns {rank: when it ended}."""
    ended: dict[int, float] = {}
    failed = False
    while len(ended) < len(processes):
        remaining = end - time.monotonic()
        if remaining <= 0:
            break
        running = {
            p.sentinel: rank for rank, p in enumerate(processes) if rank not in ended
        }
        ready = multiprocessing.connection.wait(running, timeout=remaining)
        seen = time.monotonic()  # all that ended since the last look: one moment
        for sentinel in ready:
            rank = running[sentinel]
            processes[rank].join()
            ended[rank] = seen
            if processes[rank].exitcode != 0 and not failed:
                failed, end = True, min(end, seen + GRACE)
    return ended


def _stop(processes, folder: Path) -> None:
    """Stop every process still running, after asking it for its stack."""
    alive = [(rank, p) for rank, p in enumerate(processes) if p.is_alive()]
    if alive and hasattr(signal, "SIGUSR1"):
        for _, process in alive:
            os.kill(process.pid, signal.SIGUSR1)  # faulthandler writes the stack
        stacks = [folder / f"stack-{rank}.txt" for rank, _ in alive]
        until, sizes = time.monotonic() + 2.0, None
        while (
            time.monotonic() < until
        ):  # until every stack is written and stops growing
            time.sleep(0.05)
            now = [path.stat().st_size if path.exists() else 0 for path in stacks]
            if all(now) and now == sizes:
                break
            sizes = now
    for _, process in alive:
        process.kill()
    for process in processes:
        if process.pid is not None:
            process.join()


def _failures(processes, ended, folder: Path, start: float, timeout: float):
    """(header, failures): what went wrong, worker by worker, the first to end first.

    Workers seen ended at the same moment are told apart by how they ended: a signal
    (killed, aborted, crashed) is never the echo of a peer's failure, while an exception can
    be (a collective call whose peer is gone); then by when each wrote its traceback."""

    def first_to_fail(rank: int) -> tuple:
        traceback = folder / f"traceback-{rank}.txt"
        return (
            ended.get(rank, float("inf")),
            (processes[rank].exitcode or 0) >= 0,  # a signal first
            traceback.stat().st_mtime_ns if traceback.exists() else 0,
        )

    order = sorted(range(len(processes)), key=first_to_fail)
    failed = [r for r in order if r not in ended or processes[r].exitcode != 0]
    if failed[0] not in ended or ended[failed[0]] - start >= timeout:
        header = f"did not finish within its timeout of {timeout:g} s"
    else:
        after = ended[failed[0]] - start
        header = f"failed: rank {failed[0]} failed first, after {after:.1f} s"
    failures = []
    for rank in failed:
        fate = _fate(processes[rank], rank in ended)
        if not (folder / f"stack-{rank}.txt").exists():
            fate += " before it could run (its own stderr shows why)"
        texts = [
            (folder / name).read_text()
            for name in (
                f"stderr-{rank}.txt",
                f"traceback-{rank}.txt",
                f"stack-{rank}.txt",
            )
            if (folder / name).exists()
        ]
        failures.append(
            Failure(rank, fate, "\n".join(t.rstrip() for t in texts if t.strip()))
        )
    world_size = len(processes)
    return (
        f"the launch of {world_size} processes ({backend(world_size)}) {header}",
        failures,
    )


def _fate(process, ended: bool) -> str:
    if not ended:
        return "still running; stopped (its stack when stopped below)"
    code = process.exitcode
    if code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return f"exited with code {code}"

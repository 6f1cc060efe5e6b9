"""Run untrusted Python in a process of its own, under limits, where it harms nothing
else.

The grader (the parent) opens one :class:`Box` per submission: a private temporary
folder holding a copy of the submission, a process started in it, a results channel (a
pipe that the process's printing does not reach) and a watchdog that counts its
processes and their memory. The child side is this module's ``main``: before it imports
the code it is asked to run, it applies the limits to itself and, when it starts as
root, becomes an unprivileged user of its own, so nothing the submission does runs
before the limits hold.

Two isolations:

- ``bubblewrap`` (Debian's ``bubblewrap``, Flatpak's sandbox): new PID, network, IPC
  and UTS namespaces; a root file system that holds only the system's libraries,
  Python and the book's package (read-only), and size-limited temporary folders, so
  the submission sees neither the other submissions nor the grader's files, and
  cannot reach the network. Killing ``bwrap`` ends every process inside
  (``--die-with-parent`` and the PID namespace).
- ``process``: a plain subprocess in a session of its own, with the same limits and
  watchdog, running with the rights of the grader's user. It stops accidents (endless
  loops, memory, forks, exits, crashes), not a malicious submission.
"""

import argparse
import importlib
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

MB, GB = 2**20, 2**30
ISOLATIONS = ("bubblewrap", "process")
#: In the bubblewrap sandbox: the copy of the submission (read-only), and where it runs.
SOURCE, WORK = "/tmp/submission", "/tmp/work"
#: How often the watchdog looks at a submission's processes, in seconds.
TICK = 0.25
#: A root grader runs each job's sandbox as its own uid (offset by the grader's pid, so
#: that two graders differ), far above any account's, so that the kernel's limit on
#: processes, which counts per uid, counts that sandbox's only.
UID_BASE = 1_000_000_000
_NAMESPACES = (
    "--unshare-pid",
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
)


@dataclass(frozen=True)
class Limits:
    memory: int = 4 * GB  # each process's data; all its processes' resident memory
    processes: int = 16  # running at once (a learner's code needs one)
    output: int = 64 * MB  # what it prints, and the largest file it writes
    folder: int = 256 * MB  # all it writes (its folder and /tmp)
    files: int = 10_000  # files and folders it creates (without bubblewrap)

    @staticmethod
    def size(n: int) -> str:
        return f"{n / GB:g} GB" if n >= GB else f"{n / MB:g} MB"


class SandboxUnavailable(RuntimeError):
    """The isolation asked for cannot run here; the message says why."""


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def choose(requested: str = "auto") -> str:
    """The isolation to use: ``bubblewrap`` where it is installed and works, else
    ``process``. ``requested`` is ``auto``, ``bubblewrap`` (raise
    :class:`SandboxUnavailable` without it) or ``process``."""
    if requested not in ("auto", *ISOLATIONS):
        raise ValueError(f"expected auto, bubblewrap or process, got {requested!r}")
    if requested == "process":
        return "process"
    bwrap = bwrap_path()
    problem = (
        _probe(bwrap)
        if bwrap
        else "bwrap is not on PATH (install Debian's package bubblewrap)"
    )
    if not problem:
        return "bubblewrap"
    if requested == "bubblewrap":
        raise SandboxUnavailable(f"--sandbox bubblewrap: {problem}")
    return "process"


def _probe(bwrap: str) -> str:
    """'' when bwrap can make the sandbox this module asks of it, else what it said."""
    command = [
        bwrap,
        "--die-with-parent",
        "--new-session",
        *_NAMESPACES,
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(MB),
        "--tmpfs",
        "/tmp",
        "--perms",
        "0755",
        "--dir",
        "/tmp/probe",
        "true",
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap does not run: {error}"
    if done.returncode == 0:
        return ""
    said = done.stderr.strip() or f"exit status {done.returncode}"
    return f"bwrap cannot create a sandbox here: {said}"


# ---- the parent's side ------------------------------------------------------------


class Box:
    """One submission's sandbox: its folder, its process and the watchdog on them.

    A context manager: leaving it kills whatever the submission left running and
    removes its folder."""

    def __init__(self, isolation: str, limits: Limits, root: Path, slot: int = 0):
        self.isolation, self.limits, self.slot = isolation, limits, slot
        self.folder = Path(tempfile.mkdtemp(prefix="submission-", dir=root))
        self.copy = self.folder / "work"
        self.proc: subprocess.Popen | None = None
        self._read_end = -1
        self._buffer = b""
        self._received = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._read_end >= 0:
            os.close(self._read_end)
            self._read_end = -1
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def uid(self) -> int | None:
        """The uid the submission runs as, when a root grader uses bubblewrap."""
        if self.isolation != "bubblewrap" or os.geteuid() != 0:
            return None
        return UID_BASE + (os.getpid() % 1_000_000) * 100 + self.slot

    def put(self, path: Path, limit: int, leave_out: tuple[Path, ...] = ()) -> str:
        """Copy the submission (a file, or a folder without its hidden entries and the
        folders ``leave_out``, such as MNIST's where a learner keeps it) in.

        Returns '' or, when it holds more than ``limit`` bytes, why it is not graded."""
        self.copy.mkdir(mode=0o700)
        if path.is_file():
            files = [(path, Path(path.name))]
        else:
            left = [f.resolve() for f in leave_out]
            files = [
                (p, p.relative_to(path))
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not p.is_symlink()
                and not _hidden(p, path)
                and not any(f in p.resolve().parents for f in left)
            ]
        total = sum(p.stat().st_size for p, _ in files)
        if total > limit:
            return (
                f"the submission holds {Limits.size(total)}, more than the "
                f"{Limits.size(limit)} accepted"
            )
        for source, relative in files:
            (self.copy / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, self.copy / relative)
        return ""

    def start(
        self,
        target: str,
        args: list[str],
        env: dict[str, str],
        binds: list[Path],
        cpu_seconds: float,
    ) -> None:
        """Run ``target`` ("module:function", called with the results channel's file
        descriptor and ``args``) in the sandbox, on the copy :meth:`put` made.

        ``binds`` are more folders a bubblewrap sandbox shows, read-only."""
        read_end, write_end = os.pipe()
        self._read_end = read_end
        os.set_blocking(read_end, False)
        work = WORK if self.isolation == "bubblewrap" else str(self.copy)
        child = [
            sys.executable,
            "-I",
            "-m",
            __name__,
            "--work",
            work,
            "--results",
            str(write_end),
            "--memory",
            str(self.limits.memory),
            "--output",
            str(self.limits.output),
            "--cpu",
            str(int(cpu_seconds) + 1),
            "--tag",
            str(self.folder),
        ]
        command = child
        if self.isolation == "bubblewrap":
            child += ["--source", SOURCE]
            if self.uid is not None:
                tasks = 4 * self.limits.processes  # threads count too
                child += ["--uid", str(self.uid), "--tasks", str(tasks)]
            command = self._bwrap(binds) + child
        home = work if self.isolation == "process" else "/tmp"
        environment = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": home,
            "TMPDIR": home,
            "PYTHONNOUSERSITE": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{home}/.matplotlib",
            **env,
        }
        with open(self.folder / "output", "wb") as output:
            self.proc = subprocess.Popen(
                [*command, "--", target, *args],
                cwd=self.copy,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                pass_fds=(write_end,),
                start_new_session=True,
            )
        os.close(write_end)

    def _bwrap(self, binds: list[Path]) -> list[str]:
        """bwrap's arguments: an empty root with size-limited /tmp and /dev/shm, the
        system and Python read-only, and the copy of the submission read-only."""
        args = [
            bwrap_path() or "bwrap",
            "--die-with-parent",
            "--new-session",
            *_NAMESPACES,
            "--size",
            str(self.limits.folder),
            "--tmpfs",
            "/tmp",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(self.limits.output),
            "--tmpfs",
            "/dev/shm",
        ]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/", top)
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        system = [
            "/usr",
            "/etc/ld.so.cache",
            "/etc/ld.so.conf",
            "/etc/ld.so.conf.d",
            "/sys/devices/system/cpu",
        ]
        python = [
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            sys.base_exec_prefix,
            _import_root(__name__),
        ]  # this package, wherever it is installed
        paths = [Path(p) for p in system + python + binds]
        mounts = _outermost([p for p in paths if p.exists()])
        for folder in _ancestors(mounts):  # else bwrap makes them root's alone
            args += ["--perms", "0755", "--dir", str(folder)]
        for path in mounts:
            args += ["--ro-bind", str(path), str(path)]
        return args + ["--ro-bind", str(self.copy), SOURCE, "--chdir", "/tmp"]

    # -- watching it --

    def receive(self, timeout: float) -> list[str]:
        """Complete lines from the results channel: all it holds, waiting up to
        ``timeout`` seconds for the first. At most 16 MB are kept in all, so that a
        flood cannot exhaust the grader."""
        if self._read_end < 0:
            time.sleep(timeout)
            return []
        ready, _, _ = select.select([self._read_end], [], [], timeout)
        chunks = []
        while ready:
            try:
                chunk = os.read(self._read_end, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:  # every writer closed it
                os.close(self._read_end)
                self._read_end = -1
                break
            self._received += len(chunk)
            if self._received <= 16 * MB:
                chunks.append(chunk)
        *lines, self._buffer = (self._buffer + b"".join(chunks)).split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    def ended(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def breach(self) -> str:
        """The limit the submission has passed, '' if none: processes, memory, or
        (without bubblewrap, whose folders have a fixed size) what it wrote."""
        found = _members(self.proc.pid, _scan()) if self.proc else {}
        running = {pid: info[3] for pid, info in found.items() if info[2] != "Z"}
        if len(running) > self.limits.processes + 2:  # bwrap and its init count
            return f"started more than {self.limits.processes} processes"
        # Resident memory added up, so a page a fork shares with its parent counts
        # twice; the kernel's proportional sizes would not, but reading them waits on
        # any fork under way, and a fork bomb always has one.
        if sum(running.values()) > self.limits.memory:
            return f"used more than {Limits.size(self.limits.memory)} of memory"
        if self.isolation == "process":
            size, count = _folder_size(self.copy, self.limits.files)
            if count > self.limits.files:
                return f"created more than {self.limits.files} files"
            if size > self.limits.folder:
                return f"wrote more than {Limits.size(self.limits.folder)}"
        return ""

    def how_it_ended(self) -> str:
        """What ended the process, in words, from its exit status (bwrap passes a
        signal on as 128 + its number)."""
        code = self.proc.returncode if self.proc else None
        if code is None:
            return "was stopped"
        if code < 0 or (self.isolation == "bubblewrap" and code > 128):
            number = -code if code < 0 else code - 128
            return _SIGNALS.get(number, f"was killed by signal {number}").format(
                output=Limits.size(self.limits.output)
            )
        return f"ended (exit status {code})"

    def stop(self) -> None:
        """Kill every process of the submission (bwrap takes its PID namespace with
        it), and reap it."""
        if self.proc is None:
            return
        for _ in range(200):
            members = _members(self.proc.pid, _scan())
            found = {pid for pid, info in members.items() if info[2] != "Z"}
            if self.proc.poll() is None:
                found.add(self.proc.pid)
            if not found:
                break
            try:  # the whole group at once, forks under way included (its leader is
                os.killpg(self.proc.pid, signal.SIGKILL)  # unreaped: the id is its own)
            except (ProcessLookupError, PermissionError):
                pass
            for pid in found:  # and any that left the group
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    continue
            time.sleep(0.02)
        self.proc.wait()


_SIGNALS = {
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGBUS: "crashed (bus error)",
    signal.SIGABRT: "crashed (aborted)",
    signal.SIGFPE: "crashed (floating-point exception)",
    signal.SIGILL: "crashed (illegal instruction)",
    signal.SIGXFSZ: "printed or wrote more than {output} to one file",
    signal.SIGXCPU: "used more CPU time than its time limit",
    signal.SIGKILL: "was killed (SIGKILL: out of memory?)",
}


def _hidden(path: Path, folder: Path) -> bool:
    return any(
        part.startswith(".") or part == "__pycache__"
        for part in path.relative_to(folder).parts
    )


def _scan() -> dict[int, tuple[int, int, str, int]]:
    """Every process: pid -> (parent pid, session id, state, resident bytes)."""
    page = os.sysconf("SC_PAGE_SIZE")
    processes = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        processes[int(name)] = (
            int(fields[1]),
            int(fields[3]),
            fields[0].decode(),
            int(fields[21]) * page,
        )
    return processes


def _members(root: int, processes: dict) -> dict[int, tuple]:
    """The processes of a submission: ``root``'s descendants, and its session's (root
    leads a session of its own), which finds those that left the tree too."""
    children = defaultdict(list)
    for pid, (ppid, *_) in processes.items():
        children[ppid].append(pid)
    found, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in processes and pid not in found:
            found.add(pid)
            stack.extend(children[pid])
    found |= {pid for pid, info in processes.items() if info[1] == root}
    return {pid: processes[pid] for pid in found}


def _folder_size(folder: Path, most: int) -> tuple[int, int]:
    """(bytes, entries) under ``folder``, counting no further than ``most`` + 1."""
    size = count = 0
    stack = [str(folder)]
    while stack and count <= most:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            count += 1
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    size += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return size, count


def _import_root(module: str) -> Path:
    """The folder a top-level package is imported from (site-packages, or a tree)."""
    package = importlib.import_module(module.split(".")[0])
    return Path(package.__file__).resolve().parents[1]


def _outermost(paths: list[Path]) -> list[Path]:
    """``paths`` without those inside another one, shortest first."""
    kept: list[Path] = []
    for path in sorted({p.absolute() for p in paths}, key=lambda p: len(p.parts)):
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return kept


def _ancestors(paths: list[Path]) -> list[Path]:
    """The folders above ``paths``, the root excluded, parents first."""
    found = {parent for path in paths for parent in path.parents if parent != Path("/")}
    return sorted(found - set(paths), key=lambda p: len(p.parts))


# ---- the child's side -------------------------------------------------------------


def _confine(args: argparse.Namespace) -> None:
    """Copy the submission in, set the limits and leave root, before any of its code."""
    work = Path(args.work)
    if args.source:
        shutil.copytree(args.source, work)
    leave_root = args.uid is not None and os.geteuid() == 0
    if leave_root:
        for folder in ("/tmp", "/dev/shm"):  # bwrap made them root's: now everyone's
            os.chmod(folder, 0o1777)
        for path in [work, *work.rglob("*")]:
            os.chown(path, args.uid, args.uid, follow_symlinks=False)
    limits = {
        resource.RLIMIT_DATA: args.memory,
        resource.RLIMIT_FSIZE: args.output,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_CPU: args.cpu,
    }
    if args.tasks:  # counted per uid, and not for root: for the uid set below
        limits[resource.RLIMIT_NPROC] = args.tasks
    for which, value in limits.items():
        # SIGXCPU at the soft CPU limit says why; SIGKILL follows at the hard one
        hard = value + 5 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))
    if leave_root:
        os.setgroups([])
        os.setresgid(args.uid, args.uid, args.uid)
        os.setresuid(args.uid, args.uid, args.uid)
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:
            raise SystemExit("sandbox: could not leave root")
    os.chdir(work)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__name__}",
        description="Run module:function confined (the grader starts this).",
    )
    parser.add_argument("--work", required=True, help="the folder to run in")
    parser.add_argument("--source", help="the folder to copy into --work first")
    parser.add_argument("--results", type=int, required=True, help="the channel's fd")
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--output", type=int, required=True)
    parser.add_argument("--cpu", type=int, required=True)
    parser.add_argument("--uid", type=int, help="the uid to become, if root")
    parser.add_argument("--tasks", type=int, help="processes and threads of that uid")
    parser.add_argument(
        "--tag",
        help="the grader's folder for this submission: its "
        "processes carry it in their command line",
    )
    parser.add_argument("target")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    _confine(args)
    os.set_inheritable(args.results, False)  # the submission's subprocesses lack it
    module, function = args.target.split(":")
    getattr(importlib.import_module(module), function)(args.results, *args.args)


if __name__ == "__main__":
    main()

"""Grade a class: ``python -m mnistbook.workbook grade PATH...`` runs every workbook
check on every submission, each in a sandbox of its own, and writes the grades.

A PATH is a submission: a ``.py`` file, a notebook, or a folder (one student) holding
any number of them. The checks, and the names they check, come from
:data:`~mnistbook.workbook.registry.EXERCISES` alone, so a check added to the workbook
is graded with no change here. Submissions run side by side (``--jobs``), each in a
process and temporary folder of its own (:mod:`~mnistbook.workbook.sandbox`), where
:mod:`~mnistbook.workbook.submission` runs its code, then the checks, and sends the
results back on a channel of their own. Whatever one submission does (loop, exhaust
memory, fork, exit, crash) ends that submission only: its unfinished checks fail with
the reason. The exit status is 0 whenever the grader ran, whatever the grades; not 0
only when it could not run.
"""

import argparse
import json
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from . import reports, sandbox
from .registry import EXERCISES, QUICK, Exercise
from .reports import Check, Graded, Report
from .submission import CODE

#: Seconds a submission may take to run its code and its quick checks. A slow check
#: (the training check) adds its own time limit when it starts.
TIMEOUT = 60.0
#: The largest submission graded, in bytes (hidden files and folders, such as .git, are
#: not copied into the sandbox, nor counted).
SIZE_LIMIT = 100 * sandbox.MB
_STOP = threading.Event()  # set on Ctrl-C: each submission's loop stops its sandbox


class GraderError(RuntimeError):
    """The grader cannot run (not a submission's failure); the message says why."""


def slow(exercise: Exercise) -> bool:
    """A check that needs more than the quick checks' time limit: the training check."""
    return exercise.time_limit > QUICK


@dataclass(frozen=True)
class Plan:
    """What every submission of a run is graded with."""

    exercises: tuple[Exercise, ...]
    isolation: str
    limits: sandbox.Limits
    timeout: float
    seed: int
    root: Path  # the grader's temporary folder
    env: dict[str, str]  # given to every submission's process
    binds: tuple[Path, ...]  # shown read-only in a bubblewrap sandbox (the MNIST data)

    @property
    def budget(self) -> float:
        """The longest a submission may take, its slow checks included."""
        return self.timeout + sum(e.time_limit for e in self.exercises if slow(e))


def collect(paths: list[str]) -> list[tuple[str, Path]]:
    """(name, path) of each submission; GraderError for a path that is none."""
    found, seen = [], set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise GraderError(f"no such file or folder: {given}")
        if path.is_file() and path.suffix not in CODE:
            raise GraderError(
                f"{given}: a submission is a .py file, a .ipynb notebook or a folder"
            )
        if path.resolve() not in seen:
            seen.add(path.resolve())
            found.append((path.resolve().name, path))
    return found


class _Watch:
    """What the grader knows of a running submission: its events so far, its deadline,
    and the reason it was stopped, if it was."""

    def __init__(self, plan: Plan, start: float):
        self.plan = plan
        self.deadline, self.budget = start + plan.timeout, plan.timeout
        self.results: dict[str, Check] = {}
        self.phase, self.phase_start = "before its code ran", start
        self.ready = self.done = False
        self.reason = ""
        self._exercises = {e.name: e for e in plan.exercises}

    @property
    def finished(self) -> bool:
        return self.done or bool(self.reason)

    def event(self, line: str) -> None:
        """Take one line of the results channel; anything else than the events the
        sandboxed process sends is ignored."""
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        kind, check = event.get("event"), event.get("check")
        if kind == "ready":
            self.ready = True
        elif kind == "code":
            self.phase, self.phase_start = "while its code ran", time.monotonic()
        elif kind == "start" and check in self._exercises:
            self.phase, self.phase_start = f"during {check}", time.monotonic()
            if slow(self._exercises[check]):  # a slow check brings its own time
                self.deadline += self._exercises[check].time_limit
                self.budget += self._exercises[check].time_limit
        elif kind == "result" and check in self._exercises.keys() - self.results.keys():
            passed, message = event.get("passed"), event.get("message")
            seconds = event.get("seconds")
            if (
                isinstance(passed, bool)
                and isinstance(message, str)
                and isinstance(seconds, (int, float))
            ):
                seconds = max(0.0, float(seconds))
                self.results[check] = Check(check, passed, message, seconds)
        elif kind == "limit" and event.get("reason") == "memory":
            memory = sandbox.Limits.size(self.plan.limits.memory)
            self.stop(f"used more than {memory} of memory")
        elif kind == "done":
            self.done = len(self.results) == len(self._exercises)
            if not self.done:
                self.stop("ended without reporting every check")

    def overdue(self) -> str:
        late = time.monotonic() > self.deadline
        return f"timed out after {self.budget:g} s" if late else ""

    def stop(self, reason: str) -> None:
        """Record why the sandbox stops the submission (nothing if ``reason`` is '')."""
        if reason and not self.reason:
            when = ", after its checks" if self.done else f" {self.phase}"
            self.reason = reason + when
            self.done = False

    def checks(self) -> list[Check]:
        """Every check of the plan in page order; one without a result fails with the
        reason the submission was stopped."""
        now = time.monotonic()
        found = []
        for exercise in self.plan.exercises:
            if exercise.name in self.results:
                found.append(self.results[exercise.name])
                continue
            running = self.phase == f"during {exercise.name}"
            seconds = round(now - self.phase_start, 3) if running else 0.0
            found.append(
                Check(
                    exercise.name,
                    False,
                    f"not graded: the submission {self.reason}",
                    seconds,
                )
            )
        return found


def grade_one(name: str, path: Path, plan: Plan, slots: queue.Queue) -> Graded:
    """Grade one submission in a sandbox of its own."""
    slot = slots.get()
    start = time.monotonic()
    try:
        with sandbox.Box(plan.isolation, plan.limits, plan.root, slot) as box:
            refused = box.put(path, SIZE_LIMIT, plan.binds)  # MNIST is bound apart
            if refused:
                checks = [
                    Check(e.name, False, f"not graded: {refused}", 0.0)
                    for e in plan.exercises
                ]
                return Graded(name, str(path), checks, 0.0, refused)
            try:
                box.start(
                    f"{__package__}.submission:grade",
                    [str(plan.seed), *(e.name for e in plan.exercises)],
                    plan.env,
                    list(plan.binds),
                    plan.budget,
                )
            except OSError as error:
                message = f"cannot start a sandbox for {path}: {error}"
                raise GraderError(message) from None
            watch = _Watch(plan, start)
            while not watch.finished:
                ended = box.ended()
                for line in box.receive(0 if ended else sandbox.TICK):  # all, if ended
                    watch.event(line)
                if watch.done:  # done, unless it leaves too much running behind
                    watch.stop(box.breach())
                elif ended:
                    watch.stop(box.how_it_ended())
                elif _STOP.is_set():
                    raise KeyboardInterrupt
                else:
                    watch.stop(box.breach() or watch.overdue())
            box.stop()
            if not watch.ready:
                output = (box.folder / "output").read_text(errors="replace")[-2000:]
                raise GraderError(
                    f"the sandbox could not start Python for {path} "
                    f"(it {watch.reason}):\n{output}"
                )
            seconds = round(time.monotonic() - start, 3)
            return Graded(name, str(path), watch.checks(), seconds, watch.reason)
    finally:
        slots.put(slot)


class Progress:
    """Progress on stderr: a bar redrawn in place on a terminal, else a line for each
    submission graded."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream = total, stream
        self.tty = stream.isatty()
        self.done, self.running, self.start = 0, [], time.monotonic()
        self.lock = threading.Lock()

    def started(self, name: str) -> None:
        with self.lock:
            self.running.append(name)
            self._draw()

    def finished(self, graded: Graded) -> None:
        with self.lock:
            self.done += 1
            self.running.remove(graded.name)
            if self.tty:
                self._draw()
                return
            stopped = f" — stopped: {graded.stopped}" if graded.stopped else ""
            print(
                f"[{self.done}/{self.total}] {graded.name}: {graded.passed}/"
                f"{graded.total} checks passed ({graded.seconds:.1f} s){stopped}",
                file=self.stream,
                flush=True,
            )

    def tick(self, until: threading.Event) -> None:
        """Redraw every second until ``until`` is set: the clock moves in a check."""
        while not until.wait(1):
            with self.lock:
                self._draw()

    def _draw(self) -> None:
        if not self.tty:
            return
        filled = 30 * self.done // max(self.total, 1)
        elapsed = int(time.monotonic() - self.start)
        running = f" — {', '.join(self.running)}" if self.running else ""
        bar = "#" * filled + "." * (30 - filled)
        line = (
            f"[{bar}] {self.done}/{self.total} graded, "
            f"{elapsed // 60}:{elapsed % 60:02d}{running}"
        )
        width = os.get_terminal_size(self.stream.fileno()).columns
        self.stream.write("\r\x1b[K" + line[: width - 1])
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def grade_all(
    submissions: list[tuple[str, Path]], plan: Plan, jobs: int
) -> list[Graded]:
    """Grade the submissions, ``jobs`` at a time; their grades, in their order."""
    _STOP.clear()
    progress = Progress(len(submissions))
    slots: queue.Queue = queue.Queue()  # which job runs: a bubblewrap sandbox's uid
    for slot in range(jobs):
        slots.put(slot)

    def one(name: str, path: Path) -> Graded:
        progress.started(name)
        graded = grade_one(name, path, plan, slots)
        progress.finished(graded)
        return graded

    finished = threading.Event()
    if progress.tty:
        threading.Thread(target=progress.tick, args=(finished,), daemon=True).start()
    results: dict[int, Graded] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(one, name, path): n
            for n, (name, path) in enumerate(submissions)
        }
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
        except BaseException:
            _STOP.set()  # the other sandboxes stop too
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            finished.set()
            progress.close()
    return [results[n] for n in range(len(submissions))]


def _mnist() -> Path:
    """MNIST's folder, downloaded and extracted now: the training check reads it."""
    from .. import data, paths

    data.mnist(train=True, transform=None)
    data.mnist(train=False, transform=None)
    return paths.data_root()


def parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Grade workbook submissions: run every check of the "
        "workbook on each submission, each in a sandbox of its own, and print a table "
        "of the grades.",
        epilog="Exit status 0 when the grader ran, whatever the grades; 2 when it "
        "could not run.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a submission: a .py file, "
        "a .ipynb notebook, or a folder holding any number of them",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the grades as JSON")
    p.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="write a row per submission, a column per check",
    )
    p.add_argument(
        "--junit",
        type=Path,
        metavar="FILE",
        help="write JUnit XML, a test case per check",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        metavar="N",
        help="submissions graded at once (default: the CPUs, %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        metavar="S",
        help="seconds a submission may take to run its code and the quick "
        "checks (default %(default)g); the training check adds its own",
    )
    p.add_argument(
        "--no-training",
        action="store_true",
        help="leave out the training check (the slow one: it trains)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="move the seeds the checks draw their inputs from by N "
        "(default 0: the pages' inputs), so that answers hard-coded for "
        "those fail",
    )
    p.add_argument(
        "--sandbox",
        choices=("auto", *sandbox.ISOLATIONS),
        default="auto",
        help="bubblewrap (refuse to run without it), process, or auto "
        "(bubblewrap where it works, the default)",
    )
    return p


def main(
    argv: list[str] | None = None, prog: str = "python -m mnistbook.workbook grade"
) -> int:
    args = parser(prog).parse_args(argv)
    try:
        if args.jobs < 1 or args.timeout <= 0:
            raise GraderError("--jobs and --timeout must be positive")
        submissions = collect(args.paths)
        for output in (args.json, args.csv, args.junit):
            if output is not None and not output.absolute().parent.is_dir():
                raise GraderError(f"cannot write {output}: no folder {output.parent}")
        isolation = sandbox.choose(args.sandbox)
        exercises = tuple(
            e for e in EXERCISES.values() if not (args.no_training and slow(e))
        )
        env = {k: v for k, v in os.environ.items() if k == "MNISTBOOK_BOOK_URL"}
        binds: tuple[Path, ...] = ()
        if any(slow(e) for e in exercises):
            folder = _mnist()
            env["MNISTBOOK_DATA"], binds = str(folder), (folder,)
    except (GraderError, sandbox.SandboxUnavailable) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # MNISTUnavailableError
        print(
            f"{prog}: the training check needs MNIST, or pass --no-training: {error}",
            file=sys.stderr,
        )
        return 2
    if isolation == "process":
        user = "your user's rights" + (" (root's)" if os.geteuid() == 0 else "")
        print(
            f"{prog}: without bubblewrap, each submission runs as a plain process "
            f"with {user}: its limits stop accidents, not a malicious submission",
            file=sys.stderr,
        )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the sandboxes
    start = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="mnistbook-grade-") as root:
            os.chmod(root, 0o711)
            plan = Plan(
                exercises,
                isolation,
                sandbox.Limits(),
                args.timeout,
                args.seed,
                Path(root),
                env,
                binds,
            )
            graded = grade_all(submissions, plan, args.jobs)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no grades written", file=sys.stderr)
        return 130
    except GraderError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    skipped = [e.name for e in EXERCISES.values() if e not in exercises]
    report = Report(
        graded,
        isolation,
        args.seed,
        round(time.monotonic() - start, 3),
        args.jobs,
        skipped,
    )
    writers = (
        (args.json, reports.write_json),
        (args.csv, reports.write_csv),
        (args.junit, reports.write_junit),
    )
    for output, write in writers:
        if output is not None:
            write(report, output)
    print(reports.table(report))
    return 0

"""A submission's code, run as a learner's kernel runs it, then every check on what it
defined.

This runs in the sandbox (:mod:`mnistbook.workbook.sandbox`), never in the grader's
process. Each ``.py`` file and notebook of the submission runs in a namespace of its
own, in the order of their names. A notebook's code cells run in order and an error
stops only its cell, as in Jupyter; IPython's ``%`` and ``!`` lines are skipped (they
install packages or set options), and the cells that call checks are not needed: while
the submission's code runs, every check does nothing. A ``.py`` file runs as a module is
imported, so its ``if __name__ == "__main__":`` block does not run.

A name the pages ask for counts where the submission defines it; one imported from the
book's package (as a page imports the book's ``Linear`` for the learner's ``Net``) does
not. Where several files define it, the last in name order counts. The results go back
one JSON object per line on the results channel, a pipe the submission's printing does
not reach.
"""

import json
import linecache
import os
import re
import sys
import time
import traceback
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CODE = (".py", ".ipynb")
#: Cell magics whose body is Python (``%%time``...); a cell under any other (``%%bash``,
#: ``%%html``...) is not Python, and is skipped.
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
MAGIC = re.compile(r"^(\s*)(?:[%!]|\w+\s*=\s*[%!])")  # %pip ..., !ls, files = !ls
#: The longest message kept from a check (a learner's exception can be long).
MESSAGE_LIMIT = 4000


def code_files(folder: Path) -> list[Path]:
    """The ``.py`` files and notebooks under ``folder`` by name, hidden ones not."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in CODE
        and p.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__"
            for part in p.relative_to(folder).parts
        )
    )


@dataclass(frozen=True)
class Unit:
    """Code that runs as one: a ``.py`` file, or one code cell of a notebook."""

    where: str  # "net.py" or "workbook-net.ipynb cell 5", as messages name it
    source: str


def units(path: Path, folder: Path) -> list[Unit]:
    """The code of ``path``: the file, or its notebook's code cells without magics."""
    name = path.relative_to(folder).as_posix()
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".py":
        return [Unit(name, text)]
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{name} is not a Jupyter notebook (nbformat 4)") from None
    found = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        python = without_magics(source)
        if python is not None:
            found.append(Unit(f"{name} cell {number}", python))
    return found


def without_magics(source: str) -> str | None:
    """A cell's Python: ``%`` and ``!`` lines become ``pass``; None for a cell magic
    whose body is not Python."""
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].lstrip()[2:].split(maxsplit=1)
        if not magic or magic[0] not in PYTHON_CELL_MAGICS:
            return None
        lines = lines[first + 1 :]
    return "\n".join(
        MAGIC.sub(r"\1pass  # ", line) if MAGIC.match(line) else line for line in lines
    )


class _Kernel:
    """What ``get_ipython()`` gives a notebook's cells: a kernel that does nothing (the
    pages' Colab cell asks it to ``%pip install`` the book's package, and ``%env``)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


@dataclass
class Loaded:
    """What a submission's code defined."""

    found: dict[str, object] = field(default_factory=dict)  # name -> the learner's
    borrowed: dict[str, str] = field(default_factory=dict)  # name -> the book's module
    errors: list[str] = field(default_factory=list)  # where its code raised, and what


_WORKER = os.getpid()


def _worker_only() -> None:
    """End a process the learner's code forked as soon as it leaves that code: a copy
    of this process must not go on to run checks and send results."""
    if os.getpid() != _WORKER:
        os._exit(0)


def run(unit: Unit, namespace: dict) -> str:
    """Run ``unit`` in ``namespace``; '' or where it raised, and what.

    A MemoryError is raised on: the submission has reached its memory limit."""
    filename = unit.where
    # for tracebacks and the checks' messages
    linecache.cache[filename] = (
        len(unit.source),
        None,
        unit.source.splitlines(True),
        filename,
    )
    try:
        exec(compile(unit.source, filename, "exec"), namespace)  # noqa: S102
    except MemoryError:
        _worker_only()
        raise
    except SyntaxError as error:
        return f"{unit.where}: SyntaxError at line {error.lineno}: {error.msg}"
    except BaseException as error:  # noqa: BLE001  (sys.exit too ends a cell only)
        _worker_only()
        lines = [
            f.lineno
            for f in traceback.extract_tb(error.__traceback__)
            if f.filename == filename
        ]
        at = f" at line {lines[-1]}" if lines else ""
        return f"{unit.where}: {type(error).__name__}{at}: {error}"
    _worker_only()
    return ""


def load(folder: Path, names: set[str]) -> Loaded:
    """Run every file of the submission in ``folder``; collect the ``names`` defined."""
    loaded = Loaded()
    sys.path.insert(0, str(folder))  # a file may import another of the submission
    for path in code_files(folder):
        notebook = path.suffix == ".ipynb"
        module = types.ModuleType("__main__" if notebook else _module_name(path))
        module.__file__ = str(path)
        if notebook:
            module.__dict__.update(get_ipython=_Kernel, display=print)
        sys.modules[module.__name__] = module
        try:
            pieces = units(path, folder)
        except (OSError, ValueError) as error:
            loaded.errors.append(str(error))
            continue
        for unit in pieces:
            error = run(unit, module.__dict__)
            if error:
                loaded.errors.append(error)
        for name in names & module.__dict__.keys():
            value = module.__dict__[name]
            origin = getattr(value, "__module__", None)
            if isinstance(origin, str) and origin.split(".")[0] == "mnistbook":
                loaded.borrowed.setdefault(name, origin)
            else:
                loaded.found[name] = value
    return loaded


def _module_name(path: Path) -> str:
    name = re.sub(r"\W", "_", path.stem)
    taken = not name.isidentifier() or name in sys.modules
    return f"submitted_{name}" if taken else name


def not_submitted(name: str, loaded: Loaded) -> str:
    if name in loaded.borrowed:
        text = (
            f"not submitted: {name} is the book's own, imported from "
            f"{loaded.borrowed[name]}; the check needs yours"
        )
    else:
        text = f"not submitted: the submission defines no {name}"
    if loaded.errors:
        shown = "; ".join(loaded.errors[:3]) + ("; …" if len(loaded.errors) > 3 else "")
        text += f" (its code raised: {shown})"
    return text


@contextmanager
def checks_idle(exercises):
    """While the submission's code runs, a check it calls does nothing: the grader runs
    them all afterwards, and a training check in a cell would train twice."""
    from .result import Result

    def idle(name):
        return lambda *args, **kwargs: Result(
            name, False, "not run while the grader loads your code", pending=True
        )

    saved = []
    for exercise in exercises:
        defined_in = sys.modules[exercise.check.__module__]
        for module in {defined_in, sys.modules[__package__]}:
            saved.append((module, exercise.name, getattr(module, exercise.name)))
            setattr(module, exercise.name, idle(exercise.name))
    try:
        yield
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)


class Channel:
    """The results channel: one JSON object per line, on a pipe from the grader."""

    def __init__(self, fd: int):
        self.fd = fd

    def send(self, **event) -> None:
        _worker_only()
        data = (json.dumps(event) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data) :]


def grade(results_fd: int, seed: str, *checks: str) -> None:
    """Run the submission in the current folder, then the ``checks`` (by name) on what
    it defined, each reported on the results channel. Ends the process, which a thread
    the learner's code started cannot keep alive."""
    import torch

    from . import probe
    from .registry import EXERCISES

    global _WORKER
    _WORKER = os.getpid()
    torch.set_num_threads(1)
    channel = Channel(results_fd)
    exercises = [EXERCISES[name] for name in checks]
    channel.send(event="ready")
    channel.send(event="code")
    try:
        with checks_idle(EXERCISES.values()):
            loaded = load(Path.cwd(), {e.subject for e in exercises})
    except MemoryError:
        channel.send(event="limit", reason="memory")
        os._exit(3)
    for exercise in sorted(exercises, key=lambda e: e.time_limit):  # quick ones first
        channel.send(event="start", check=exercise.name)
        start = time.perf_counter()
        if exercise.subject not in loaded.found:
            passed, message = False, not_submitted(exercise.subject, loaded)
        else:
            try:
                with probe.inputs_seed(int(seed)):
                    result = exercise.check(loaded.found[exercise.subject])
                passed, message = bool(result.passed), str(result.message)
            except MemoryError:
                channel.send(event="limit", reason="memory")
                os._exit(3)
            except BaseException as error:  # noqa: BLE001  (sys.exit in the learner's code)
                _worker_only()
                passed = False
                message = (
                    f"the check was stopped: your code raised "
                    f"{type(error).__name__}: {error}"
                )
        channel.send(
            event="result",
            check=exercise.name,
            passed=passed,
            message=message[:MESSAGE_LIMIT],
            seconds=round(time.perf_counter() - start, 3),
        )
    channel.send(event="done")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110  (the learner's code may have closed it)
            pass
    os._exit(0)

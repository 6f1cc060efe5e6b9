"""Write the workbook's exercises, and the instructors' table of checks, from the package's
registry of checks.

A page ``book/workbook-<x>.md`` holds its own prose (title, introduction, formula, where it is
derived) down to :data:`MARKER`; everything below it is written here from the checks registered
for that page in :data:`mnistbook.workbook.EXERCISES`: the setup cell, the exercise with each
check's contract, the skeleton (the book's answer with every body replaced by
``raise NotImplementedError``), the check cell, and the folded solution (the book's answer as it
runs: the functions it calls, then itself, without the input checks that ``guarded`` adds in the
package). The instructors' page gets its table of checks between :data:`TABLE_BEGIN` and
:data:`TABLE_END`.

An authoring tool, not part of the installed package: run ``python book/_ext/workbook_pages.py``
after changing a check or the code a page shows, and commit what it writes;
``tests/test_workbook_pages.py`` fails when a page is stale.
"""

import ast
import importlib
import inspect
import textwrap
from pathlib import Path

from mnistbook.workbook import EXERCISES
from mnistbook.workbook.probe import STUB_MESSAGES, Mistake

BOOK = Path(__file__).resolve().parents[1]
MARKER = (
    "<!-- Everything below is written by book/_ext/workbook_pages.py from this page's checks: "
    "change those, then run it. -->"
)
TABLE_BEGIN = "<!-- The table of checks, written by book/_ext/workbook_pages.py: -->"
TABLE_END = "<!-- (end of the table of checks) -->"
STUB = f'raise NotImplementedError("{STUB_MESSAGES[0]}")'
SETUP = "import math\n\nimport torch\n"


def tensor_import(exercises: list) -> str:
    """Where the page's ``Tensor`` comes from: the engine's module, on the page whose answers
    are the engine's (the learner builds graphs of its tensors), else torch."""
    for exercise in exercises:
        module = importlib.import_module(exercise.solution.split(":")[0])
        own = getattr(module, "Tensor", None)
        if inspect.isclass(own) and own.__module__ == module.__name__:
            return f"from {module.__name__} import Tensor"
    return "from torch import Tensor"


def solution_object(exercise):
    """The book's answer to ``exercise``: the function or class its ``solution`` names."""
    module, name = exercise.solution.split(":")
    return getattr(importlib.import_module(module), name)


def by_page() -> dict[str, list]:
    """The registered exercises of each page, in the registry's order."""
    pages: dict[str, list] = {}
    for exercise in EXERCISES.values():
        pages.setdefault(exercise.page, []).append(exercise)
    return pages


def _source(obj) -> tuple[str, ast.AST]:
    """The source of a function or class without its decorators, and its parsed definition."""
    source = textwrap.dedent(inspect.getsource(obj))
    node = ast.parse(source).body[0]
    lines = source.splitlines()[node.lineno - 1 :]
    return "\n".join(lines), ast.parse("\n".join(lines)).body[0]


def _docstring_end(body: list) -> int:
    first = body[0]
    is_doc = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    return first.end_lineno if is_doc else 0


def skeleton(obj) -> str:
    """The exercise for ``obj``: its source with every function body (``__call__`` excepted) a stub."""
    source, node = _source(obj)
    lines = source.splitlines()
    functions = (
        [node]
        if isinstance(node, ast.FunctionDef)
        else [
            item
            for item in node.body
            if isinstance(item, ast.FunctionDef) and item.name != "__call__"
        ]
    )
    # from the bottom up, so earlier line numbers stay valid
    for function in reversed(functions):
        keep = _docstring_end(function.body) or function.body[0].lineno - 1
        indent = " " * (function.body[0].col_offset)
        lines[keep : function.end_lineno] = [indent + STUB]
    return "\n".join(lines)


def helpers(obj) -> list:
    """The package's functions that ``obj`` calls by name, callees first: with it, the solution
    runs as shown. Other exercises' answers are left out: the page imports them."""
    subjects = {e.subject for e in EXERCISES.values()}
    found: list = []

    def visit(item) -> None:
        module = inspect.getmodule(item)
        for node in ast.walk(_source(item)[1]):
            target = (
                getattr(module, node.id, None) if isinstance(node, ast.Name) else None
            )
            if (
                inspect.isfunction(target)
                and target.__module__.startswith("mnistbook")
                and target.__name__ not in subjects
                and target is not item
                and target not in found
            ):
                visit(target)
                if target not in found:
                    found.append(target)

    visit(obj)
    return found


def solution_code(exercises: list) -> str:
    """The page's answer as one cell: what the solution shows, ready to run after the setup."""
    parts = []
    for obj in [h for e in exercises for h in helpers(solution_object(e))] + [
        solution_object(e) for e in exercises
    ]:
        text = _source(obj)[0]
        if text not in parts:
            parts.append(text)
    return "\n\n\n".join(parts) + "\n"


def imports(exercises: list) -> list[str]:
    """What the page imports besides torch: other exercises' answers its solution uses, and the
    classes its checks take besides the subject, from the modules of their defaults (so that the
    learner can swap in their own)."""
    answers = {e.subject: e.solution.split(":")[0] for e in EXERCISES.values()}
    own = {e.subject for e in exercises}
    needed = {
        node.id: answers[node.id]
        for e in exercises
        for node in ast.walk(_source(solution_object(e))[1])
        if isinstance(node, ast.Name) and node.id in answers and node.id not in own
    }
    for e in exercises:
        for name, parameter in list(inspect.signature(e.check).parameters.items())[1:]:
            if inspect.isclass(parameter.default):
                needed[name] = parameter.default.__module__
    by_module: dict[str, list[str]] = {}
    for name, module in sorted(needed.items()):
        by_module.setdefault(module, []).append(name)
    return [
        f"from {module} import {', '.join(names)}"
        for module, names in sorted(by_module.items())
    ]


def check_call(exercise, names: set[str]) -> str:
    extra = [
        p for p in list(inspect.signature(exercise.check).parameters)[1:] if p in names
    ]
    return f"{exercise.name}({', '.join([exercise.subject, *extra])})"


def _cell(code: str) -> str:
    return f"```{{code-cell}} ipython3\n{code.rstrip()}\n```"


def generated(page: str, exercises: list) -> str:
    """Everything of ``page`` below the marker."""
    extra_imports = imports(exercises)
    names = {
        name.strip()
        for line in extra_imports
        for name in line.split(" import ")[1].split(",")
    }
    calls = [check_call(e, names) for e in exercises]
    checks = sorted(
        {e.name for e in exercises} | ({"summary"} if len(exercises) > 1 else set())
    )
    setup = (
        SETUP
        + f"{tensor_import(exercises)}\n"
        + "".join(f"{line}\n" for line in extra_imports)
        + f"\nfrom mnistbook.workbook import {', '.join(checks)}"
    )
    # no backticks: a fence's info string may not hold any
    subjects = " and ".join(e.subject for e in exercises)
    contract = "\n".join(f"- {line}" for e in exercises for line in e.contract)
    modules = sorted(
        {e.solution.split(":")[0].replace(".", "/") + ".py" for e in exercises}
    )
    blocks = [
        _cell(setup),
        f"````{{exercise}} Write {subjects}\n:label: {page}-exercise\n:nonumber:\n\n"
        'Replace each `raise NotImplementedError("your code here")` in the cell below with your code, run '
        "it, then run the check under it. It says what is wrong, if anything, and where the book explains "
        f"it. What the check requires, and what it tries:\n\n{contract}\n````",
        _cell("\n\n\n".join(skeleton(solution_object(e)) for e in exercises)),
        _cell(calls[0] if len(calls) == 1 else f"summary({', '.join(calls)})"),
        f"````{{solution}} {page}-exercise\n:class: dropdown\n\n"
        f"The book's answer, as in `{'`, `'.join(modules)}` (there, `guarded` adds input checks that are left "
        "out here): the functions it calls, then itself. The book's tests paste it, as shown here, into the "
        "cell of the exercise and run the check, which passes (`tests/test_built_solutions.py`)."
        f"\n\n```python\n{solution_code(exercises).rstrip()}\n```\n````",
    ]
    return "\n\n".join(blocks) + "\n"


def render(page: str, text: str) -> str:
    """``text`` of ``page`` with everything below the marker written anew."""
    if MARKER not in text:
        raise ValueError(
            f"book/{page}.md: the line {MARKER!r} is missing; put it below the page's prose"
        )
    return text.split(MARKER)[0] + MARKER + "\n\n" + generated(page, by_page()[page])


def mistakes_named(check) -> list[Mistake]:
    """The known mistakes a check can name: those its function, and the module's functions it
    calls, refer to."""
    function = inspect.unwrap(check)
    module, found, seen = inspect.getmodule(function), [], set()

    def visit(item) -> None:
        seen.add(item)
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(item)))):
            value = (
                getattr(module, node.id, None) if isinstance(node, ast.Name) else None
            )
            if isinstance(value, Mistake) and value not in found:
                found.append(value)
            elif (
                inspect.isfunction(value)
                and value.__module__ == module.__name__
                and value not in seen
            ):
                visit(value)

    visit(function)
    return found


def table() -> str:
    """A section per check: what it requires and tries, and the mistakes it can name."""
    blocks = []
    for e in EXERCISES.values():
        requires = "\n".join(f"- {line}" for line in e.contract)
        named = (
            "\n".join(f"- {m.explanation}" for m in mistakes_named(e.check))
            or "- none beyond the general ones"
        )
        blocks.append(
            f"### `{e.name}`\n\n`{e.name}({e.subject})`, on the page {{doc}}`{e.page}`.\n\n"
            f"**What it requires and tries**\n\n{requires}\n\n**The mistakes it names**\n\n{named}"
        )
    return "\n\n".join(blocks)


def render_instructors(text: str) -> str:
    before, rest = text.split(TABLE_BEGIN)
    return (
        before
        + TABLE_BEGIN
        + "\n\n"
        + table()
        + "\n\n"
        + TABLE_END
        + rest.split(TABLE_END, 1)[1]
    )


def write(book: Path = BOOK) -> list[Path]:
    """Write every workbook page and the instructors' table; return the files whose text changed."""
    missing = [page for page in by_page() if not (book / f"{page}.md").is_file()]
    if missing:
        raise FileNotFoundError(
            f"checks are registered for {missing}, but no book/<page>.md holds their "
            f"prose: write it (title, introduction, formula) and end it with {MARKER}"
        )
    changed = []
    targets = [
        (book / f"{page}.md", lambda text, page=page: render(page, text))
        for page in by_page()
    ]
    targets.append((book / "workbook-instructors.md", render_instructors))
    for path, rewrite in targets:
        old = path.read_text(encoding="utf-8")
        new = rewrite(old)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    for path in write():
        print("wrote", path)

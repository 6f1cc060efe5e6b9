"""Write the GitHub Classroom starter of the workbook, from the book itself.

    python classroom/starter.py OUT [--repository https://github.com/OWNER/NAME]
                                    [--ref COMMIT]
    python classroom/starter.py --workflow

The first writes, into the new (or empty) folder OUT, the repository to create the
assignment from:

- ``workbook-*.ipynb``: a notebook per workbook page, generated from ``book/<page>.md``
  as the book's Colab twins are (``book/_ext/colab_notebooks.py``), without the
  solutions: never a copy that can drift from the pages;
- ``README.md``: this folder's README, for the students;
- ``requirements.txt``: PyTorch's CPU-only wheels, and the book's package from the
  commit OUT is made from (the repository is found as the book's Colab buttons find it;
  ``--repository`` and ``--ref`` choose another);
- ``.github/workflows/classroom.yml``: the autograding workflow (below);
- ``.gitignore``.

The second rewrites ``classroom/.github/workflows/classroom.yml`` from the book's list
of checks (:data:`mnistbook.workbook.registry.EXERCISES`): on every push it runs the
grader with ``--junit``, then awards each check's points through GitHub Classroom's
autograding actions. ``tests/test_grade.py`` fails when the committed workflow is not
what this writes.
"""

import argparse
import json
import os
import re
import sys
from pathlib import Path

from mnistbook.workbook.registry import EXERCISES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BOOK = ROOT / "book"
sys.path.insert(0, str(BOOK / "_ext"))  # the Colab twins' generator, the repository
import colab_notebooks  # noqa: E402
import repository  # noqa: E402

WORKFLOW = HERE / ".github" / "workflows" / "classroom.yml"
#: GitHub Classroom's actions, pinned to the commits of their release tags.
COMMAND_GRADER = (
    "classroom-resources/autograding-command-grader"
    "@d5b3fa6f50f7f629b7bfae0cc3e4c58852b412d5 # v1"
)
REPORTER = (
    "classroom-resources/autograding-grading-reporter"
    "@d13b5912daf5042ac1b71bc38bdb4a6bcd61d8ca # v1"
)
POINTS = 10  # per check
REPORT = "grades.xml"
SOLUTION = re.compile(  # as book/_ext/colab_notebooks.py folds a solution
    r"\n*<details>\n<summary><b>Solution</b></summary>.*?</details>\n*", re.DOTALL
)
GITIGNORE = "data/\ngrades.xml\n__pycache__/\n.ipynb_checkpoints/\n"


def pinned(action: str) -> str:
    """``action@commit # version`` as the book's own workflow pins it: one place for
    the pins."""
    deploy = (ROOT / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    match = re.search(rf"uses: ({re.escape(action)}@[0-9a-f]{{40}} # v[\d.]+)", deploy)
    if not match:
        raise LookupError(f".github/workflows/deploy.yml does not pin {action}")
    return match[1]


def workflow() -> str:
    """The autograding workflow: the grader once, then a step per check, awarding its
    points, then the report of the total to GitHub Classroom."""
    checks = list(EXERCISES)
    steps = "".join(
        f"""
      - name: {check}
        id: {check}
        uses: {COMMAND_GRADER}
        with:
          test-name: {check}
          command: python -m mnistbook.workbook passed {REPORT} {check}
          timeout: 1
          max-score: {POINTS}
"""
        for check in checks
    )
    results = "".join(
        f"\n          {check.upper()}_RESULTS: ${{{{ steps.{check}.outputs.result }}}}"
        for check in checks
    )
    return f"""\
# Autograding of the workbook, written by classroom/starter.py from the book's
# list of checks: change that, not this file. On every push the book's grader runs
# every check on the notebooks and .py files of this repository (python -m
# mnistbook.workbook grade) and writes a JUnit report; a step per check then awards
# its points through GitHub Classroom's autograding actions, and the last step reports
# the total to GitHub Classroom. Actions are pinned to the commits of their release
# tags (version beside). Its file name, name and triggers are those of the workflow
# GitHub Classroom writes for tests set up in its own pages.
name: Autograding Tests

on:
  push:
  workflow_dispatch:
  repository_dispatch:

# what GitHub Classroom's reporter documents that it needs
permissions:
  actions: read  # the run's steps and their results
  contents: read  # the repository, to check it out

# a newer push is graded instead of an older one still running
concurrency:
  group: ${{{{ github.workflow }}}}-${{{{ github.ref }}}}
  cancel-in-progress: true

jobs:
  run-autograding-tests:
    name: Grade the workbook
    runs-on: ubuntu-24.04
    # GitHub Classroom's own commit (the starter, as handed out) is not graded
    if: github.actor != 'github-classroom[bot]'
    timeout-minutes: 30
    steps:
      - uses: {pinned("actions/checkout")}
        with:
          persist-credentials: false

      - uses: {pinned("actions/setup-python")}
        with:
          python-version: "3.11"
          cache: pip
          cache-dependency-path: requirements.txt

      - name: Install the book's package (CPU-only PyTorch)
        run: python -m pip install -r requirements.txt

      - name: Run every check of the workbook
        env:
          MNISTBOOK_DATA: ${{{{ runner.temp }}}}/data
        run: python -m mnistbook.workbook grade . --junit {REPORT}
{steps}
      - name: Report the points to GitHub Classroom
        uses: {REPORTER}
        env:{results}
        with:
          runners: {",".join(checks)}
"""


def workbook_pages() -> list[str]:
    """The workbook's pages (``book/<page>.md``), in the order of their checks."""
    return list(dict.fromkeys(e.page for e in EXERCISES.values()))


def notebook(page: str, book: colab_notebooks.Book) -> str:
    """A workbook page as a student's notebook: its Colab twin without the solution."""
    twin = json.loads(colab_notebooks.colab_notebook(BOOK / f"{page}.md", book))
    for cell in twin["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = cell["source"]
        text = "".join(text) if isinstance(text, list) else text
        cell["source"] = SOLUTION.sub("\n\n", text).strip("\n")
        if "Solution</b>" in cell["source"]:
            raise ValueError(
                f"{page}: a solution is left in the notebook (has the "
                "twins' format changed? book/_ext/colab_notebooks.py)"
            )
    twin["cells"] = [
        c for c in twin["cells"] if c["cell_type"] != "markdown" or c["source"]
    ]
    return json.dumps(twin, indent=1, ensure_ascii=False) + "\n"


def requirements(where: repository.Repository) -> str:
    pinned_in_book = (ROOT / "requirements.in").read_text()
    pins = re.findall(r"^(torch(?:vision)?==\S+)", pinned_in_book, re.MULTILINE)
    return (
        "# The book's package (the workbook's checks and its grader) from the\n"
        "# commit this starter was made from; PyTorch's CPU-only wheels (no GPU).\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\n"
        + "".join(f"{pin}\n" for pin in pins)
        + f"mnistbook @ {where.pip_url}\n"
    )


def write(out: Path, where: repository.Repository) -> list[Path]:
    """Write the starter into ``out``, new or empty; the files written."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    book = colab_notebooks.Book.read(BOOK, where)
    files = {
        out / "README.md": (HERE / "README.md").read_text(encoding="utf-8"),
        out / "requirements.txt": requirements(where),
        out / ".gitignore": GITIGNORE,
        out / ".github" / "workflows" / "classroom.yml": workflow(),
        **{out / f"{page}.ipynb": notebook(page, book) for page in workbook_pages()},
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, help="the folder to write it into")
    parser.add_argument(
        "--repository",
        default="",
        help="the book's repository, https://github.com/OWNER/NAME",
    )
    parser.add_argument(
        "--ref",
        help="the commit (or tag) of the book to install (default: the checkout's)",
    )
    parser.add_argument(
        "--workflow",
        action="store_true",
        help=f"rewrite {WORKFLOW.relative_to(ROOT)} only",
    )
    args = parser.parse_args(argv)
    if args.workflow:
        WORKFLOW.parent.mkdir(parents=True, exist_ok=True)
        WORKFLOW.write_text(workflow(), encoding="utf-8")
        print("wrote", WORKFLOW)
        return 0
    if args.out is None:
        parser.error("name the folder to write the starter into, or pass --workflow")
    where = repository.derive(args.repository, dict(os.environ), ROOT)
    if where is None:
        parser.error(
            "no repository found (no GitHub 'origin' remote): pass "
            "--repository https://github.com/OWNER/NAME"
        )
    if args.ref:
        where = repository.Repository(where.url, args.ref, where.colab_branch)
    for path in write(args.out, where):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every workbook solution runs as the built page shows it: the page's first cell (its imports),
then the code of the folded solution, then the page's check cell, each copied from the HTML a
reader sees, pass the check in a fresh interpreter.

Reads the built site (marker ``built_book``); the training page's solution trains the recipe for
two epochs, so that one is also marked ``slow``.
"""

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html" / "book"
PAGES = sorted(
    p.stem
    for p in (ROOT / "book").glob("workbook-*.md")
    if p.stem != "workbook-instructors"
)

pytestmark = pytest.mark.built_book


def code_blocks(fragment: str) -> list[str]:
    """The text of every highlighted code block in an HTML fragment, as a reader copies it."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", block))
        for block in re.findall(
            r'<div class="highlight"><pre>(.*?)</pre>', fragment, re.DOTALL
        )
    ]


def shown(page: str) -> tuple[str, str, str]:
    """(the page's first cell, its solution, its check cell), as the built page shows them."""
    path = SITE / f"{page}.html"
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: build the book first (bash .ci/run does everything)"
        )
    text = path.read_text(encoding="utf-8")
    solution_start = text.index('<div class="solution dropdown admonition"')
    cells = code_blocks(text[:solution_start])
    [solution] = code_blocks(
        text[solution_start : text.index("</section>", solution_start)]
    )
    setup, _skeleton, check = cells[-3:]
    return setup, solution, check


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(p, marks=pytest.mark.slow) if p == "workbook-training" else p
        for p in PAGES
    ],
)
def test_the_solution_as_shown_passes_the_pages_check(page):
    setup, solution, check = shown(page)
    program = "\n\n".join([setup, solution, f"print(repr({check.strip()}))"])
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT / "book",
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "✓ passed" in done.stdout and "✗" not in done.stdout and "○" not in done.stdout
    ), done.stdout

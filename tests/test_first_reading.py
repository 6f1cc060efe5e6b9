"""A first reading that works: every chapter of the book's main part closes with its key results
and leveled exercises, and the build's machinery stays out of the code a reader reads.

The main part is what ``_toc.yml`` lists under "The PyTorch way", "From scratch" and "Going
further". The source tests read the chapters' MyST; the tests marked ``built_book`` read what a
build left in ``_build/`` (the HTML and the PDF), so they run after a build, with
``pytest -m built_book``. The Colab twin is built here, from the source, by the build's own
converter."""

import html
import re
import shutil
import subprocess
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

import colab_notebooks  # book/_ext, on sys.path via conftest
from repository import Repository

ROOT = Path(__file__).resolve().parents[1]
MAIN_PARTS = ("The PyTorch way", "From scratch", "Going further")
DERIVATIONS = ("likelihood", "softmax", "backprop", "scratch")
LEVELS = ("Warm-up: ", "Core: ", "Challenge: ")
EXERCISE_TITLE = re.compile(r"^````\{exercise\} (.*)$", re.MULTILINE)
HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
GLUE_WORD = re.compile(r"\bglue\b")
GLUE_CALL = re.compile(r"""\bglue\(\s*["']([^"']+)["']""")  # the name a glue call gives


def main_chapters() -> list[str]:
    """The stems of the main part's chapters, in the order of ``_toc.yml``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [
        Path(chapter["file"]).stem
        for part in toc["parts"]
        if part.get("caption") in MAIN_PARTS
        for chapter in part["chapters"]
    ]


def source(stem: str) -> str:
    return (ROOT / "book" / f"{stem}.md").read_text(encoding="utf-8")


def outside_fences(text: str) -> str:
    """The text with every fenced block (code cells, directives) blanked, so that a ``##`` line
    inside a cell or a directive is not taken for a section heading."""
    kept, fence = [], None
    for line in text.split("\n"):
        opening = re.match(r"^(`{3,}|:{3,})", line)
        if fence is None and opening:
            fence = opening[1]
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            kept.append(line)
    return "\n".join(kept)


def test_the_main_part_is_the_chapters_the_tests_expect():
    chapters = main_chapters()
    assert {"tensors", "pytorch", "next", *DERIVATIONS} <= set(chapters), chapters


@pytest.mark.parametrize("stem", main_chapters())
def test_key_results_come_right_before_the_exercises(stem):
    headings = HEADING.findall(outside_fences(source(stem)))
    assert "Key results" in headings, f"{stem}: no section “Key results”"
    assert "Exercises" in headings, f"{stem}: no section “Exercises”"
    assert headings.index("Exercises") == headings.index("Key results") + 1, (
        f"{stem}: “Key results” is not the section right before “Exercises”: {headings}"
    )


@pytest.mark.parametrize("stem", main_chapters())
def test_every_exercise_title_names_its_level(stem):
    titles = EXERCISE_TITLE.findall(source(stem))
    assert titles, f"{stem}: no exercises"
    unleveled = [t for t in titles if not t.startswith(LEVELS)]
    assert unleveled == [], (
        f"{stem}: titles without “Warm-up: ”, “Core: ” or “Challenge: ”"
    )
    # the title sits on the opening fence, whose info string cannot hold a backtick: with one
    # the fence is no fence, and the exercise prints as raw text
    assert [t for t in titles if "`" in t] == [], (
        f"{stem}: a backtick in an exercise title"
    )


@pytest.mark.parametrize("stem", DERIVATIONS)
def test_a_derivation_chapter_has_two_warm_ups(stem):
    warm_ups = [
        t for t in EXERCISE_TITLE.findall(source(stem)) if t.startswith("Warm-up: ")
    ]
    assert len(warm_ups) >= 2, f"{stem}: {len(warm_ups)} warm-up exercise(s)"


@pytest.mark.parametrize("stem", main_chapters())
def test_glue_appears_only_in_hidden_cells(stem):
    """The build's ``glue`` (its import and every call) sits in code cells tagged remove-cell,
    which the HTML and the PDF leave out and the Colab twin keeps."""
    notebook = jupytext.read(ROOT / "book" / f"{stem}.md", fmt="md:myst")
    visible = [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code"
        and "remove-cell" not in cell.metadata.get("tags", [])
    ]
    leaks = [s for s in visible if GLUE_WORD.search(s)]
    assert leaks == [], f"{stem}: glue in a cell a reader sees:\n" + "\n---\n".join(
        leaks
    )


@pytest.mark.parametrize("stem", main_chapters())
def test_the_quoted_package_code_holds_no_glue(stem):
    """What a chapter quotes with ``literalinclude`` is code a reader reads too."""
    quoted = [
        colab_notebooks._expand_include(m, ROOT / "book")
        for m in colab_notebooks.INCLUDE.finditer(source(stem))
    ]
    assert [q for q in quoted if GLUE_WORD.search(q)] == []


def test_the_colab_twin_keeps_the_glue_cells_that_print_the_quoted_numbers():
    """In the twin a quoted number appears as its name, and the hidden cell that glues it is
    there to print ``name = value`` (``mnistbook.notebook.glue`` without myst-nb)."""
    stem = "softmax"
    book = colab_notebooks.Book.read(
        ROOT / "book", Repository("https://github.com/someone/fork", "0123abc")
    )
    twin = nbformat.reads(
        colab_notebooks.colab_notebook(ROOT / "book" / f"{stem}.md", book), 4
    )
    code = [c for c in twin.cells if c.cell_type == "code"]
    hidden = [c for c in code if "remove-cell" in c.metadata.get("tags", [])]
    glued = set(GLUE_CALL.findall("\n".join(c.source for c in hidden)))
    quoted = {
        name for name in colab_notebooks.GLUE.findall(source(stem)) if ".md" not in name
    }
    assert quoted, f"{stem} quotes no glued number"
    assert quoted <= glued, (
        f"quoted but glued in no hidden cell of the twin: {quoted - glued}"
    )
    assert any("from mnistbook.notebook import glue" in c.source for c in hidden)
    markdown = "\n".join(c.source for c in twin.cells if c.cell_type == "markdown")
    assert "{glue" not in markdown and all(f"`{name}`" in markdown for name in quoted)


# What a build left in _build/: run after a build, with `pytest -m built_book`.

HTML = ROOT / "_build" / "html" / "book"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
PDF = (
    ROOT
    / "_build"
    / "latex"
    / Path(CONFIG["latex"]["latex_documents"]["targetname"]).with_suffix(".pdf")
)
CHAPTER_START = re.compile(r"^CHAPTER\n\n[A-Z-]+\n\n(?P<title>.+)$", re.MULTILINE)
PART_START = re.compile(r"^[IVX]+\n\n\S")


def code_on_page(page: str) -> list[str]:
    """The text of every ``<pre>`` block of a built page: the code cells, their outputs and the
    quoted package code, as a reader sees them (syntax highlighting removed)."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", block))
        for block in re.findall(r"<pre[^>]*>(.*?)</pre>", page, flags=re.DOTALL)
    ]


def blank(page: str) -> bool:
    """A page with nothing but its running header and folio (a blank verso)."""
    return len([line for line in page.split("\n") if line.strip()]) <= 3


def pages_of_chapter(pages: list[str], title: str) -> list[str]:
    """The pages of the chapter titled ``title``, from its opening page to the page before the
    next chapter or part, blank versos left out."""
    starts = [
        i
        for i, page in enumerate(pages)
        if (m := CHAPTER_START.match(page)) and m["title"].strip() == title.upper()
    ]
    assert len(starts) == 1, f"the chapter “{title}” opens on {len(starts)} pages"
    end = next(
        (
            i
            for i in range(starts[0] + 1, len(pages))
            if CHAPTER_START.match(pages[i]) or PART_START.match(pages[i])
        ),
        len(pages),
    )
    return [page for page in pages[starts[0] : end] if not blank(page)]


@pytest.mark.built_book
@pytest.mark.parametrize("stem", main_chapters())
def test_no_glue_in_the_code_of_the_built_page(stem):
    path = HTML / f"{stem}.html"
    if not path.is_file():
        pytest.fail(f"{path.relative_to(ROOT)} missing: build the book (README.md)")
    assert path.stat().st_mtime >= (ROOT / "book" / f"{stem}.md").stat().st_mtime, (
        f"{path.relative_to(ROOT)} is older than its chapter: build the book again"
    )
    blocks = code_on_page(path.read_text(encoding="utf-8"))
    assert blocks, f"{stem}: no code on the built page"
    assert [b for b in blocks if "glue(" in b] == []


@pytest.mark.built_book
def test_the_formula_sheet_takes_at_most_two_pages_of_the_pdf():
    if not PDF.is_file():
        pytest.fail(
            f"{PDF.relative_to(ROOT)} missing: build it with README's pdf-command"
        )
    assert shutil.which("pdftotext"), "pdftotext missing: bash .ci/install-pdf-tools"
    assert (
        PDF.stat().st_mtime >= (ROOT / "book" / "formula-sheet.md").stat().st_mtime
    ), "the PDF is older than the formula sheet: build it again"
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(PDF), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    title = re.search(r"^# (.+)$", source("formula-sheet"), re.MULTILINE)[1]
    pages = pages_of_chapter(text.split("\f"), title)
    assert 1 <= len(pages) <= 2, f"the formula sheet takes {len(pages)} pages"

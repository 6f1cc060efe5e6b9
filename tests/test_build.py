"""The build configuration, on small books built with the book's own _config.yml and extensions:
a failing cell fails the build, a change in the package re-executes the chapter, and chapters
missing from the cache execute side by side."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def make_book(folder: Path, chapter_text: str, *more_chapters: str) -> Path:
    """A book with the real configuration and extensions, chapters ``chapter``, ``chapter2``, …
    and one package, probe."""
    (folder / "book").mkdir(parents=True)
    for part in ("_ext", "_static"):
        shutil.copytree(ROOT / "book" / part, folder / "book" / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "book" / "references.bib", folder / "book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["sphinx"]["config"].update(package_fingerprint_package="probe", parallel_execution_workers=2)
    (folder / "_config.yml").write_text(yaml.safe_dump(config))
    names = ["chapter"] + [f"chapter{i}" for i in range(2, len(more_chapters) + 2)]
    (folder / "_toc.yml").write_text("format: jb-book\nroot: book/index\nchapters:\n"
                                     + "".join(f"  - file: book/{name}\n" for name in names))
    (folder / "book" / "index.md").write_text("# A test book\n")
    for name, text in zip(names, (chapter_text, *more_chapters)):
        (folder / "book" / f"{name}.md").write_text(HEADER + text)
    (folder / "code").mkdir()
    (folder / "code" / "probe.py").write_text("def value():\n    return 'first'\n")
    return folder


def build(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(JUPYTER_BOOK), "build", str(folder), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, timeout=300, check=False)


def html(folder: Path, name: str = "chapter") -> str:
    return (folder / "_build" / "html" / "book" / f"{name}.html").read_text()


CELL = "```{code-cell} ipython3\n%s\n```\n"


def test_a_failing_cell_fails_the_build(tmp_path):
    book = make_book(tmp_path, "# Broken\n\n" + CELL % "print('before')\n1 / 0")
    result = build(book)
    assert result.returncode != 0
    assert "ZeroDivisionError" in result.stdout + result.stderr


def test_a_warning_in_a_cell_fails_the_build(tmp_path):
    book = make_book(tmp_path, "# Warns\n\n" + CELL % "import warnings\nwarnings.warn('careful')")
    assert build(book).returncode != 0


def test_package_change_reexecutes_and_prose_edit_uses_the_cache(tmp_path):
    chapter = "# Probe\n\nProse, first version.\n\n" + CELL % (
        "import sys\nsys.path.insert(0, '../code')\nimport probe\nprint('probe says', probe.value())")
    book = make_book(tmp_path, chapter)
    first = build(book)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "probe says first" in html(book)

    (book / "code" / "probe.py").write_text("def value():\n    return 'second'\n")
    second = build(book)
    assert second.returncode == 0
    assert "re-executing book/chapter" in second.stdout and "Executing notebook" in second.stdout
    assert "probe says second" in html(book) and "probe says first" not in html(book)

    source = book / "book" / "chapter.md"
    source.write_text(source.read_text().replace("first version", "second version"))
    third = build(book)
    assert third.returncode == 0
    assert "Executing notebook" not in third.stdout and "Using cached notebook" in third.stdout
    assert "second version" in html(book) and "probe says second" in html(book)

    fourth = build(book)
    assert "Executing notebook" not in fourth.stdout and "reading sources... [100%]" not in fourth.stdout


def test_chapters_missing_from_the_cache_execute_side_by_side(tmp_path):
    # Each chapter notes when its kernel ran; executed one after the other, the spans cannot overlap.
    chapter = "# Slow\n\n" + CELL % (
        "import time\nstart = time.time()\ntime.sleep(4)\nprint('span', start, time.time())")
    book = make_book(tmp_path, chapter, chapter)
    result = build(book)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[parallel_execution] executing 2 chapters" in result.stdout
    assert "Executing notebook" not in result.stdout  # myst-nb found both in the cache
    (start1, end1), (start2, end2) = (
        map(float, re.search(r"span ([\d.]+) ([\d.]+)", html(book, name)).groups())
        for name in ("chapter", "chapter2"))
    assert start1 < end2 and start2 < end1


def test_a_failing_chapter_executed_side_by_side_still_fails_the_build(tmp_path):
    book = make_book(tmp_path, "# Fine\n\n" + CELL % "print('fine')",
                     "# Broken\n\n" + CELL % "1 / 0")
    result = build(book)
    assert result.returncode != 0
    assert "[parallel_execution] book/chapter2 failed" in result.stdout
    assert "[parallel_execution] book/chapter executed" in result.stdout
    assert "ZeroDivisionError" in result.stdout + result.stderr

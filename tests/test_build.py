"""The build configuration, on small books built with the book's own _config.yml and extensions:
a failing cell, a warning or a dead link fails the build, a change in the package re-executes the
chapters that import it (even after an interrupted build), chapters missing from the cache execute
side by side and a dead kernel is reported as its chapter's failure, math is rendered by files
shipped with the site, pages say only what the build produced, and the book builds with its
speed switch off. Builds that only must succeed share one build of one book."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from html_pages import scripts_of, styles_of

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


def make_book(
    folder: Path,
    chapter_text: str,
    *more_chapters: str,
    fast: bool = True,
    index: str = "# A test book\n",
) -> Path:
    """A book with the real configuration and extensions, chapters ``chapter``, ``chapter2``, …
    and one package, probe. ``fast=False`` builds it with the speed switch off (no V8, no font
    subsetting, chapters executed one after another), enough for what most tests look at."""
    (folder / "book").mkdir(parents=True)
    for part in ("_ext", "_static"):
        shutil.copytree(
            ROOT / "book" / part,
            folder / "book" / part,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(ROOT / "book" / "references.bib", folder / "book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["sphinx"]["config"].update(
        package_fingerprint_package="probe",
        parallel_execution_workers=2,
        parallel_execution_preload=[
            "json"
        ],  # warm kernels, without torch's import cost
        fast_book=fast,
    )
    (folder / "_config.yml").write_text(yaml.safe_dump(config))
    names = ["chapter"] + [f"chapter{i}" for i in range(2, len(more_chapters) + 2)]
    (folder / "_toc.yml").write_text(
        "format: jb-book\nroot: book/index\nchapters:\n"
        + "".join(f"  - file: book/{name}\n" for name in names)
    )
    (folder / "book" / "index.md").write_text(index)
    for name, text in zip(names, (chapter_text, *more_chapters)):
        (folder / "book" / f"{name}.md").write_text(HEADER + text)
    (folder / "code").mkdir()
    (folder / "code" / "probe.py").write_text("def value():\n    return 'first'\n")
    return folder


def build(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", str(folder), "-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def html(folder: Path, name: str = "chapter") -> str:
    return (folder / "_build" / "html" / "book" / f"{name}.html").read_text()


CELL = "```{code-cell} ipython3\n%s\n```\n"


def test_a_failing_cell_fails_the_build(tmp_path):
    book = make_book(
        tmp_path, "# Broken\n\n" + CELL % "print('before')\n1 / 0", fast=False
    )
    result = build(book)
    assert result.returncode != 0
    assert "ZeroDivisionError" in result.stdout + result.stderr


def test_a_warning_in_a_cell_and_a_dead_link_each_fail_the_build(tmp_path):
    book = make_book(
        tmp_path,
        "# Warns\n\n" + CELL % "import warnings\nwarnings.warn('careful')",
        fast=False,
        index='# A test book\n\n<p>See <a href="../missing.pdf">the missing file</a>.</p>\n',
    )
    result = build(book)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # the cell's warning goes to stderr, which -W turns into a build error
    warning = r"book/chapter\.md:\d+: WARNING: stderr was found in the cell outputs of cell \d+"
    assert re.search(warning, output), output[-3000:]
    assert (
        "book/index.html: the link '../missing.pdf' points at no file of the built site"
        in output
    )


def test_package_change_reexecutes_and_prose_edit_uses_the_cache(tmp_path):
    chapter = "# Probe\n\nProse, first version.\n\n" + CELL % (
        "import sys\nsys.path.insert(0, '../code')\nimport probe\nprint('probe says', probe.value())"
    )
    book = make_book(tmp_path, chapter, fast=False)
    first = build(book)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "probe says first" in html(book)

    (book / "code" / "probe.py").write_text("def value():\n    return 'second'\n")
    second = build(book)
    assert second.returncode == 0
    assert (
        "re-executing book/chapter" in second.stdout
        and "Executing notebook" in second.stdout
    )
    assert "probe says second" in html(book) and "probe says first" not in html(book)

    source = book / "book" / "chapter.md"
    source.write_text(source.read_text().replace("first version", "second version"))
    third = build(book)
    assert third.returncode == 0
    assert (
        "Executing notebook" not in third.stdout
        and "Using cached notebook" in third.stdout
    )
    assert "second version" in html(book) and "probe says second" in html(book)

    fourth = build(book)
    assert (
        "Executing notebook" not in fourth.stdout
        and "reading sources... [100%]" not in fourth.stdout
    )


# Each chapter notes when its kernel ran; executed one after the other, the spans cannot overlap.
SPAN = (
    CELL
    % "import time\nstart = time.time()\ntime.sleep(3)\nprint('span', start, time.time())"
)
MATH = "Inline $a^2 + b^2 = c^2$ and displayed\n\n$$\nE = mc^2\n$$\n"
CONDITIONAL = """# A test book

```{if-built} pdf
<p>To print it: the <a href="../mnist-two-ways.pdf">PDF edition</a>.</p>
```

```{if-built} no pdf
Built without its PDF edition.
```

```{if-built} repository
Each chapter opens in Colab.
```

```{if-built} no repository
Built without a repository.
```

```{execution-record}
```
"""


@pytest.fixture(scope="module")
def fast_book(tmp_path_factory):
    """One successful build, with the speed switch on, of a book with two slow chapters, math,
    and text that depends on what the build produced; outside a git checkout, with no
    repository and no PDF edition."""
    book = make_book(
        tmp_path_factory.mktemp("fast"),
        "# Slow\n\n" + MATH + SPAN,
        "# Slow too\n\n" + SPAN,
        index=CONDITIONAL,
    )
    result = build(book)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return book, result


def test_chapters_missing_from_the_cache_execute_side_by_side(fast_book):
    book, result = fast_book
    assert "[parallel_execution] executing 2 chapters" in result.stdout
    assert "Executing notebook" not in result.stdout  # myst-nb found both in the cache
    (start1, end1), (start2, end2) = (
        map(float, re.search(r"span ([\d.]+) ([\d.]+)", html(book, name)).groups())
        for name in ("chapter", "chapter2")
    )
    assert start1 < end2 and start2 < end1


def test_pages_say_only_what_the_build_produced(fast_book):
    book, _ = fast_book
    index = html(book, "index")
    assert (
        "Built without its PDF edition." in index and "mnist-two-ways.pdf" not in index
    )
    assert "Built without a repository." in index and "Colab" not in index
    assert "report-error" not in index and "colab.research.google.com" not in html(book)
    assert "built outside a git checkout" in html(book)
    assert "the outputs of this chapter were computed on" in html(
        book
    ) and "by this build" in html(book)
    assert re.search(
        r"Slow too</p></td>\s*<td><p>20\d\d-\d\d-\d\d \d\d:\d\d</p></td>\s*<td><p>this build",
        index,
    )


def test_a_pdf_built_since_brings_its_link_and_its_file(fast_book, tmp_path):
    book = tmp_path / "book"
    shutil.copytree(fast_book[0], book)
    (book / "_build" / "latex").mkdir(exist_ok=True)
    (book / "_build" / "latex" / "mnist-two-ways.pdf").write_bytes(
        b"%PDF-1.4"
    )  # _config.yml's name
    result = build(book)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    index = html(book, "index")
    assert (
        '<a href="../mnist-two-ways.pdf">PDF edition</a>' in index
        and "Built without its PDF" not in index
    )
    assert (book / "_build" / "html" / "mnist-two-ways.pdf").read_bytes() == b"%PDF-1.4"
    assert (
        "Executing notebook" not in result.stdout
    )  # the chapters' outputs come from the cache


def test_math_arrives_typeset_and_no_script_is_needed_or_fetched(fast_book):
    book, _ = fast_book
    page = html(book)
    assert page.count("<mjx-container") == 2, "both equations typeset during the build"
    assert "<mjx-assistive-mml" in page, "a MathML copy for screen readers"
    assert "a^2 + b^2" not in page, "raw TeX left for a script to typeset"
    sources = scripts_of(page)
    assert any("pydata-sphinx-theme.js" in src for src in sources), (
        sources
    )  # all are found
    remote = [src for src in sources if re.match(r"(https?:)?//", src)]
    assert not remote, f"the page loads scripts from elsewhere: {remote}"
    math = [src for src in sources if re.search(r"mathjax|katex", src, re.I)]
    assert not math, f"a math script is still loaded: {math}"
    assert 'mjx-container[jax="SVG"]' in styles_of(page), (
        "the equations' stylesheet, in the page"
    )


def test_the_book_builds_with_its_speed_switch_off(tmp_path):
    book = make_book(
        tmp_path,
        "# Math\n\n" + MATH + CELL % "print('ran')",
        fast=False,
        index=CONDITIONAL,
    )
    result = build(book)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[parallel_execution]" not in result.stdout and "ran" in html(book)
    assert "<mjx-container" not in html(book) and "a^2 + b^2" in html(
        book
    )  # MathJax, in the browser


def test_a_failing_chapter_executed_side_by_side_still_fails_the_build(tmp_path):
    book = make_book(
        tmp_path, "# Fine\n\n" + CELL % "print('fine')", "# Broken\n\n" + CELL % "1 / 0"
    )
    result = build(book)
    assert result.returncode != 0
    assert "[parallel_execution] book/chapter2 failed" in result.stdout
    assert "[parallel_execution] book/chapter executed" in result.stdout
    assert "ZeroDivisionError" in result.stdout + result.stderr


PROBE_CELL = (
    CELL
    % "import sys\nsys.path.insert(0, '../code')\nimport probe\nprint('probe says', probe.value())"
)
# The changed package: value() signals that a chapter is executing, then waits while ``hold`` exists.
HOLDING_PROBE = """import os, time
HERE = os.path.dirname(os.path.abspath(__file__))

def value():
    open(os.path.join(HERE, "started"), "w").close()
    while os.path.exists(os.path.join(HERE, "hold")):
        time.sleep(0.1)
    return "second"
"""


def _like_a_terminal():
    """In the child: its own process group, and Ctrl-C raising KeyboardInterrupt even when
    this test runs where SIGINT is ignored (a background job of a script)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_build_leaves_no_page_of_the_old_package(tmp_path):
    names = ["chapter", "chapter2", "chapter3"]
    book = make_book(tmp_path, *(f"# {name}\n\n{PROBE_CELL}" for name in names))
    first = build(book)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert all("probe says first" in html(book, name) for name in names)

    code = book / "code"
    (code / "hold").touch()
    (code / "probe.py").write_text(HOLDING_PROBE)
    interrupted = subprocess.Popen(
        [str(JUPYTER_BOOK), "build", str(book), "-W", "-n", "--keep-going"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_like_a_terminal,  # noqa: PLW1509 - pytest runs no threads here
    )
    try:
        deadline = time.monotonic() + 120
        while not (code / "started").exists():  # a chapter executes the new package
            assert interrupted.poll() is None and time.monotonic() < deadline, (
                "no chapter started"
            )
            time.sleep(0.2)
        os.killpg(interrupted.pid, signal.SIGINT)  # Ctrl-C
        time.sleep(1)
        (code / "hold").unlink()  # let the running chapters end
        assert interrupted.wait(timeout=120) != 0
    finally:
        (code / "hold").unlink(missing_ok=True)
        if interrupted.poll() is None:
            os.killpg(interrupted.pid, signal.SIGKILL)

    again = build(book)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    for name in names:
        page = html(book, name)
        assert "probe says second" in page and "probe says first" not in page, name


def test_a_dead_kernel_or_a_timeout_is_reported_as_that_chapters_failure(tmp_path):
    book = make_book(
        tmp_path,
        "# Fine\n\n" + CELL % "print('fine')",
        "# Dies\n\n" + CELL % "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "# Slow\n\n" + CELL % "import time\ntime.sleep(60)",
    )
    slow = book / "book" / "chapter3.md"  # a 2-second limit in its front matter
    slow.write_text(
        slow.read_text().replace(
            "kernelspec:", "execution:\n  timeout: 2\nkernelspec:", 1
        )
    )
    result = build(book)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "[parallel_execution] book/chapter executed" in output
    assert "[parallel_execution] book/chapter2 failed (DeadKernelError: " in output, (
        output[-3000:]
    )
    assert "[parallel_execution] book/chapter3 failed (CellTimeoutError: " in output, (
        output[-3000:]
    )
    assert "parallel_execution.py" not in output  # no traceback through the extension

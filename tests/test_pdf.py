"""The PDF edition, as a reader sees its text: every chapter is there, and no raw TeX or MyST.

It reads the PDF that the README's pdf-command builds, so like every test of what a build left in
_build/ it carries the marker ``built_book``: ``.ci/run`` runs those after the build, and after a
build ``pytest -m built_book`` runs them by hand. Without the PDF it fails at once."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
PDF = (
    ROOT
    / "_build"
    / "latex"
    / Path(CONFIG["latex"]["latex_documents"]["targetname"]).with_suffix(".pdf")
)
LEAKS = {
    "display math delimiters": r"\$\$",
    "a TeX command": r"\\(frac|begin|end|mathbf|partial|sum|left|right)\b",
    "a MyST role": r"\{(doc|ref|cite|glue|eq|numref|math)(:\w+)?\}`",
    "a MyST directive": r"(`{3,}|:{3,})\{\w",
    "a MyST target": r"^\([\w-]+\)=$",
}
pytestmark = pytest.mark.built_book


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [
        c["file"] for part in toc["parts"] for c in part["chapters"]
    ]


def title(file: str) -> str:
    return re.search(
        r"^# (.+)$", (ROOT / f"{file}.md").read_text(encoding="utf-8"), re.MULTILINE
    )[1]


@pytest.fixture(scope="module")
def text():
    if not PDF.is_file():
        pytest.fail(
            f"{PDF.relative_to(ROOT)} missing: build it with README's pdf-command"
        )
    assert shutil.which("pdftotext"), "pdftotext missing: bash .ci/install-pdf-tools"
    assert PDF.stat().st_mtime >= max(
        p.stat().st_mtime for p in (ROOT / "book").glob("*.md")
    ), "the PDF is older than a chapter: build it again"
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(PDF), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def test_every_chapter_title_is_there(text):
    words = " ".join(text.split())  # titles may wrap across lines
    missing = [title(f) for f in toc_files() if " ".join(title(f).split()) not in words]
    assert missing == []


@pytest.mark.parametrize("kind", LEAKS)
def test_no_raw_tex_or_myst_leaked(text, kind):
    leaks = [m.group(0) for m in re.finditer(LEAKS[kind], text, re.MULTILINE)]
    assert leaks == [], f"{kind} in the PDF's text: {leaks[:5]}"

"""The Colab notebooks beside the chapters are generated, and the committed ones are current."""

from pathlib import Path

import colab_notebooks  # book/_ext, on sys.path via conftest
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
CHAPTERS = [p for p in sorted((ROOT / "book").glob("*.md")) if colab_notebooks.is_notebook(p)]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_committed_twin_is_what_the_chapter_generates(chapter):
    twin = chapter.with_suffix(".ipynb")
    assert twin.is_file(), f"{twin.name} missing: run a build, then commit it"
    assert twin.read_text() == colab_notebooks.colab_notebook(chapter, REPOSITORY), \
        f"{twin.name} is stale: run a build (it regenerates the twins), then commit it"


def test_twin_installs_the_package_and_shows_the_code_it_includes():
    notebook = nbformat.reads(colab_notebooks.colab_notebook(ROOT / "book" / "scratch.md", REPOSITORY), 4)
    assert f"pip\", \"install -q git+{REPOSITORY}" in notebook.cells[0].source
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert "{literalinclude}" not in markdown
    assert "class CrossEntropyLoss:" in markdown and "def step(self, grads" in markdown
    nbformat.validate(notebook)

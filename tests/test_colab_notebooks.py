"""The Colab notebooks the build writes beside the chapters: plain Markdown, linked to the repository
the build derives, and runnable."""

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import colab_notebooks  # book/_ext, on sys.path via conftest
from chapters import is_notebook
from repository import Repository

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = Repository("https://github.com/someone/fork", "0123abc")
BOOK = colab_notebooks.Book.read(ROOT / "book", REPOSITORY)
CHAPTERS = [p for p in sorted((ROOT / "book").glob("*.md")) if is_notebook(p)]
MYST = re.compile(
    r"\{[a-z:-]+\}`|^`{3,}\{|^\([\w-]+\)=$|^:\w+:", re.MULTILINE
)  # roles, directives, targets


def twin(stem: str) -> nbformat.NotebookNode:
    return nbformat.reads(
        colab_notebooks.colab_notebook(ROOT / "book" / f"{stem}.md", BOOK), 4
    )


def markdown(notebook) -> str:
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_twin_is_a_valid_notebook_in_plain_markdown(chapter):
    notebook = twin(chapter.stem)
    nbformat.validate(notebook)
    assert MYST.findall(markdown(notebook)) == [], (
        "MyST syntax that Colab would show raw"
    )


def test_twin_installs_the_package_and_shows_the_code_it_includes():
    notebook = twin("scratch")
    assert (
        'pip", "install -q git+https://github.com/someone/fork@0123abc")'
        in notebook.cells[1].source
    )
    assert "class CrossEntropyLoss:" in markdown(
        notebook
    ) and "def step(self, grads" in markdown(notebook)


def test_twin_rewrites_references_citations_exercises_and_glued_numbers():
    colab = "https://colab.research.google.com/github/someone/fork"
    scratch, failures, softmax = (
        markdown(twin(s)) for s in ("scratch", "failure-modes", "softmax")
    )
    assert (
        f"[Backpropagation through the network]({colab}/blob/colab/book/backprop.ipynb)"
        in scratch
    )
    assert "Polyak (1964) and Sutskever et al. (2013)" in scratch
    assert re.search(r"## References\n\n(- .*\n)*- .*Polyak.*\n- .*Sutskever", scratch)
    exercise = "exercise “Warm-up: the ReLU in the backward pass”"
    assert f"[{exercise}]({colab}/blob/colab/book/backprop.ipynb)" in failures
    assert "> **Exercise: Core: the softmax derivative, case by case**" in softmax
    assert "<details>\n<summary><b>Solution</b></summary>" in softmax
    assert "Goodfellow et al. (2016)" in softmax
    assert "`jac_err_autograd`" in softmax and "{glue" not in softmax


def test_glue_prints_name_and_value_where_myst_nb_is_missing(monkeypatch, capsys):
    import torch

    from mnistbook.notebook import glue

    monkeypatch.setitem(
        sys.modules, "myst_nb", None
    )  # import myst_nb now raises ImportError
    glue("accuracy", torch.tensor(96.0712345))
    glue("errors", 393)
    assert capsys.readouterr().out == "accuracy = 96.0712\nerrors = 393\n"


def test_twin_runs_without_myst_nb_and_prints_every_number_its_prose_names():
    notebook = twin("scratch")
    notebook.cells.insert(
        0, nbformat.v4.new_code_cell("import sys\nsys.modules['myst_nb'] = None")
    )
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "book")}},
    ).execute()
    printed = "".join(
        o.get("text", "")
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    named = set(
        colab_notebooks.GLUE.findall((ROOT / "book" / "scratch.md").read_text())
    )
    assert named, "the chapter quotes no glued number"
    for name in named:
        assert re.search(rf"^{name} = \S", printed, re.MULTILINE), (
            f"{name} is quoted but never printed"
        )

"""The workbook pages: generated from the package and current, and, executed, every check says
"not implemented yet" with the skeletons untouched and passes with the book's solutions."""

import jupytext
import pytest
from nbclient import NotebookClient

from mnistbook import scratch
from mnistbook.workbook import pages

ROOT = pages.BOOK.parent


@pytest.mark.parametrize("page", pages.PAGES, ids=lambda p: p.stem)
def test_committed_page_is_what_the_generator_writes(page):
    path = pages.BOOK / f"{page.stem}.md"
    assert path.read_text(encoding="utf-8") == pages.render(page), \
        f"{path.name} is stale: run `python -m mnistbook.workbook.pages` and commit it"


def test_every_page_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for page in pages.PAGES:
        assert f"file: book/{page.stem}\n" in toc


def test_skeleton_keeps_signatures_and_docstrings_and_drops_the_code():
    linear = pages.skeleton(scratch, "Linear")
    assert " ".join(linear.split()).count(
        "def backward( self, grad_out: Tensor, input_grad: bool = True )") == 1
    assert '"""' + scratch.Linear.backward.__doc__.splitlines()[0] in linear
    assert linear.count('raise NotImplementedError("your code here")') == 3
    assert "linear_backward" not in linear and "validate" not in linear
    net = pages.skeleton(scratch, "Net")
    assert "def __call__(self, x: Tensor) -> Tensor:\n        return self.forward(x)" in net  # kept
    compile(linear + "\n" + net, "skeleton", "exec")


def test_solution_shows_the_package_source_with_what_it_calls():
    linear = next(p for p in pages.PAGES if p.stem == "workbook-linear")
    text = pages.render(linear)
    for name in ("linear", "linear_backward", "_cached", "Linear"):
        assert f":pyobject: {name}\n" in text
    assert "def linear_backward(" in pages.solution_code(linear)


def run_pages(solutions: bool) -> list[str]:
    """Every page's cells in one kernel (one start), the skeleton replaced by the solution if
    asked; returns the text each check cell displayed."""
    cells = []
    for page in pages.PAGES:
        code = [c for c in jupytext.read(pages.BOOK / f"{page.stem}.md", fmt="md:myst").cells
                if c.cell_type == "code"]
        setup, skeleton, check = code
        if solutions:
            skeleton.source = pages.solution_code(page)
        cells += [setup, skeleton, check]
    notebook = jupytext.reads("", fmt="md:myst")
    notebook.cells = cells
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(pages.BOOK)}}).execute()
    shown = []
    for cell in cells:
        for output in cell.outputs:
            assert output.output_type != "error", output
            assert not (output.output_type == "stream" and output.name == "stderr"), output.text
    for check in cells[2::3]:
        [output] = check.outputs
        assert "text/html" in output.data
        shown.append(output.data["text/plain"])
    return shown


def test_pages_with_the_skeletons_untouched_say_not_implemented_yet():
    for shown in run_pages(solutions=False):
        assert "○ not implemented yet" in shown and "✓" not in shown and "✗" not in shown, shown


def test_pages_with_the_solutions_filled_in_pass():
    """Includes the training check: the recipe on MNIST must reach the accuracy band."""
    for shown in run_pages(solutions=True):
        assert "✓ passed" in shown and "✗" not in shown and "○" not in shown, shown

"""The workbook pages: written from the registry of checks and current; their skeletons keep the
book's signatures and docstrings and nothing else; executed with the skeletons untouched, every
check says "not implemented yet". (That each folded solution, pasted as the built page shows it,
passes its check is tested on the built book: tests/test_built_solutions.py.)"""

import jupytext
import pytest
from nbclient import NotebookClient

from mnistbook import scratch
from mnistbook.workbook import EXERCISES

import workbook_pages as pages

ROOT = pages.BOOK.parent
PAGES = pages.by_page()


@pytest.mark.parametrize("page", PAGES)
def test_committed_page_is_what_the_generator_writes(page):
    path = pages.BOOK / f"{page}.md"
    assert path.read_text(encoding="utf-8") == pages.render(
        page, path.read_text(encoding="utf-8")
    ), f"{path.name} is stale: run `python book/_ext/workbook_pages.py` and commit it"


def test_the_instructors_table_lists_every_check():
    path = pages.BOOK / "workbook-instructors.md"
    text = path.read_text(encoding="utf-8")
    assert text == pages.render_instructors(text), (
        "run `python book/_ext/workbook_pages.py`"
    )
    for name in EXERCISES:
        assert f"`{name}(" in text


def test_every_page_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for page in PAGES:
        assert f"file: book/{page}\n" in toc


def test_skeleton_keeps_signatures_and_docstrings_and_drops_the_code():
    linear = pages.skeleton(scratch.Linear)
    assert (
        " ".join(linear.split()).count(
            "def backward( self, grad_out: Tensor, input_grad: bool = True )"
        )
        == 1
    )
    assert '"""' + scratch.Linear.backward.__doc__.splitlines()[0] in linear
    assert linear.count('raise NotImplementedError("your code here")') == 3
    assert (
        "linear_backward" not in linear
        and "guarded" not in linear
        and "validate" not in linear
    )
    net = pages.skeleton(scratch.Net)
    assert (
        "def __call__(self, x: Tensor) -> Tensor:\n        return self.forward(x)"
        in net
    )  # kept
    compile(linear + "\n" + net, "skeleton", "exec")


def test_a_solution_is_the_package_source_with_what_it_calls_and_no_input_checks():
    code = pages.solution_code(PAGES["workbook-linear"])
    for name in ("def linear(", "def linear_backward(", "class Linear:"):
        assert code.count(name) == 1
    assert "guarded" not in code and "validate" not in code
    assert code.index("def linear(") < code.index("class Linear:")  # callees first


def test_the_page_imports_what_its_solution_and_check_take_from_other_pages():
    assert pages.imports(PAGES["workbook-net"]) == [
        "from mnistbook.scratch import Linear, ReLU"
    ]
    assert pages.imports(PAGES["workbook-training"]) == [
        "from mnistbook.scratch import CrossEntropyLoss, Net, SGD"
    ]


def test_pages_with_the_skeletons_untouched_say_not_implemented_yet():
    """Every page's cells in one kernel (one start); the text each check cell displayed."""
    cells = []
    for page in PAGES:
        code = [
            c
            for c in jupytext.read(pages.BOOK / f"{page}.md", fmt="md:myst").cells
            if c.cell_type == "code"
        ]
        cells += code
    notebook = jupytext.reads("", fmt="md:myst")
    notebook.cells = cells
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(pages.BOOK)}},
    ).execute()
    for cell in cells:
        for output in cell.outputs:
            assert output.output_type != "error", output
            assert not (output.output_type == "stream" and output.name == "stderr"), (
                output.text
            )
    shown = [
        o.data["text/plain"]
        for c in cells
        if c.source.startswith(("check_", "summary("))
        for o in c.outputs
    ]
    assert len(shown) == len(PAGES)
    for text in shown:
        assert (
            "○ not implemented yet" in text and "✓" not in text and "✗" not in text
        ), text


def test_a_check_added_to_the_registry_is_exported_paged_tabled_and_benchmarked(
    monkeypatch, tmp_path
):
    import mnistbook.workbook as workbook
    from mnistbook.workbook import registry

    monkeypatch.setattr(registry, "EXERCISES", dict(registry.EXERCISES))
    monkeypatch.setattr(workbook, "EXERCISES", registry.EXERCISES)
    monkeypatch.setattr(pages, "EXERCISES", registry.EXERCISES)

    @registry.exercise(
        "workbook-relu",
        "relu",
        solution="mnistbook.functional:relu",
        contract=("`relu(z)` returns max(z, 0).",),
    )
    def check_relu_function(relu):
        return "fine"

    assert (
        "check_relu_function" in workbook.__all__
        and workbook.check_relu_function is check_relu_function
    )
    assert "check_relu_function" in dir(workbook)
    assert [e.name for e in pages.by_page()["workbook-relu"]] == [
        "check_relu",
        "check_relu_function",
    ]
    assert "### `check_relu_function`" in pages.table()
    page = pages.render(
        "workbook-relu", (pages.BOOK / "workbook-relu.md").read_text(encoding="utf-8")
    )
    assert (
        "check_relu_function(relu)" in page and "`relu(z)` returns max(z, 0)." in page
    )

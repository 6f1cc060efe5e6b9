"""The chapters as the build executed them: clean, and reproducible.

* no output of the build's execution shows a traceback or a warning (the build itself already
  fails on a cell that raises or writes to stderr);
* the numbers equal those of a second, independent execution of the same chapters: two
  executions, one model, the same numbers. Cells tagged ``timing`` report wall-clock times and
  are left out of that comparison.

These tests read what a build left in ``_build/``; they execute nothing. They carry the marker
``built_book``, which the default test command deselects; after a build and
``.ci/execute_again.py`` (``.ci/run`` does both), run them with ``pytest -m built_book``.
"""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from chapters import compared, executed  # book/_ext, on sys.path via conftest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"  # the build's executions
AGAIN = BUILD / "second-execution"  # written by .ci/execute_again.py

pytestmark = pytest.mark.built_book


def chapters() -> list[str]:
    """The executed chapters, from the book's one definition of them (book/_ext/chapters.py)."""
    return executed(ROOT)


def numbers(notebook) -> list[tuple[int, str, str]]:
    """Per cell not tagged ``timing``: everything it printed (streams joined, since the kernel
    may split one print across messages), and its text values, glued values included."""
    found = []
    for index, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        if "timing" in cell.metadata.get("tags", []):
            continue
        outputs = cell.get("outputs", [])
        printed = "".join(o.text for o in outputs if o.output_type == "stream")
        values = "\n".join(
            str(value)
            for o in outputs
            for mime, value in o.get("data", {}).items()
            if mime.endswith("text/plain")
        )
        found.append((index, printed, values))
    return found


def missing(what: str, how: str):
    pytest.fail(
        f"{what}: {how}, then run these tests again (`bash .ci/run` does everything)",
        pytrace=False,
    )


def built(name: str):
    """The build's execution of ``name`` (from its execution cache), made with the current
    package."""
    from jupyter_cache import get_cache

    from package_fingerprint import (
        STAMP,
        fingerprint,
    )  # book/_ext, on sys.path via conftest

    stamp = CACHE / STAMP
    if not stamp.is_file() or stamp.read_text() != fingerprint([ROOT / "code"]):
        missing(
            "no successful build of the current package in _build/",
            "build the book (README.md)",
        )
    source = jupytext.read(ROOT / f"{name}.md", fmt="md:myst")
    try:
        record = get_cache(str(CACHE)).match_cache_notebook(source)
    except KeyError:
        missing(
            f"the build's cache holds no execution of {name} as it is now",
            "build the book (README.md)",
        )
    return get_cache(str(CACHE)).get_cache_bundle(record.pk).nb


def executed_again(name: str):
    path = AGAIN / f"{name}.ipynb"
    if not path.is_file():
        missing(
            f"{path.relative_to(ROOT)} is missing",
            "run `.venv/bin/python .ci/execute_again.py`",
        )
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("name", chapters())
def test_the_build_shows_no_traceback_or_warning(name):
    for cell in (c for c in built(name).cells if c.cell_type == "code"):
        for output in cell.get("outputs", []):
            assert output.output_type != "error"
            assert not (output.output_type == "stream" and output.name == "stderr"), (
                output.text
            )
            text = output.get("text", "") + str(
                output.get("data", {}).get("text/plain", "")
            )
            assert not re.search(r"Traceback|Warning\b|Warning:", text), text


@pytest.mark.parametrize("name", compared(ROOT))
def test_a_second_execution_prints_the_same_numbers(name):
    first = built(name)
    second = executed_again(name)
    assert numbers(second) == numbers(first), (
        "the numbers differ from the build's execution of the same code"
    )


def test_the_dataloader_estimate_is_the_measured_speed_times_the_steps():
    """The PyTorch chapter's estimate of the whole run fed by the DataLoader is glued from the
    DataLoader's measured time per step and the number of steps, nothing else."""
    glued = BUILD / "jupyter_execute" / "book" / "pytorch.glue.json"
    if not glued.is_file():
        missing("the PyTorch chapter's glued values", "build the book")
    import json

    values = {
        name: float(v["data"]["text/plain"])
        for name, v in json.loads(glued.read_text()).items()
        if name in ("loader_estimate", "loader_ms_per_step", "train_steps")
    }
    assert values["loader_estimate"] == pytest.approx(
        values["loader_ms_per_step"] / 1000 * values["train_steps"], rel=1e-9
    )

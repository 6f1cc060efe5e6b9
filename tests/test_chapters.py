"""Execute every chapter listed in _toc.yml, as the build does, and hold it to the book's rules.

* every cell runs without error;
* no cell writes to stderr or prints a warning or a traceback;
* the numbers equal those of the last build's execution (from its cache), if a build of the
  current package exists: two executions, one model, the same numbers. Cells tagged ``timing``
  report wall-clock times and are left out of that comparison.
"""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"


def chapters() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    paths = [ROOT / f"{name}.md" for name in files]
    return [p for p in paths if "kernelspec:" in p.read_text().split("\n---", 1)[0]]


def numbers(notebook) -> list[tuple[int, str, str]]:
    """Per cell not tagged ``timing``: everything it printed (streams joined, since the kernel
    may split one print across messages), and its text values, glued values included."""
    found = []
    for index, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        if "timing" in cell.metadata.get("tags", []):
            continue
        outputs = cell.get("outputs", [])
        printed = "".join(o.text for o in outputs if o.output_type == "stream")
        values = "\n".join(str(value) for o in outputs for mime, value in o.get("data", {}).items()
                           if mime.endswith("text/plain"))
        found.append((index, printed, values))
    return found


def cached_build_execution(notebook):
    """The build's executed copy of this chapter, if the cache holds one made with this package."""
    from package_fingerprint import STAMP, fingerprint  # book/_ext, on sys.path via conftest

    stamp = CACHE / STAMP
    if not stamp.is_file() or stamp.read_text() != fingerprint([ROOT / "code"]):
        return None
    from jupyter_cache import get_cache

    try:
        record = get_cache(str(CACHE)).match_cache_notebook(notebook)
    except KeyError:
        return None
    return get_cache(str(CACHE)).get_cache_bundle(record.pk).nb


@pytest.mark.parametrize("chapter", chapters(), ids=lambda p: p.stem)
def test_chapter_executes_cleanly_and_reproducibly(chapter):
    notebook = jupytext.read(chapter, fmt="md:myst")
    before = cached_build_execution(notebook)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(chapter.parent)}}).execute()
    for cell in (c for c in notebook.cells if c.cell_type == "code"):
        for output in cell.get("outputs", []):
            assert output.output_type != "error"
            assert not (output.output_type == "stream" and output.name == "stderr"), output.text
            text = output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
            assert not re.search(r"Traceback|Warning\b|Warning:", text), text
    if before is None:
        pytest.skip("executed cleanly; no build of the current package to compare numbers with")
    assert numbers(notebook) == numbers(nbformat.from_dict(before)), \
        "the numbers differ from the build's execution of the same code"

"""Which pages of the book are executed chapters, and in which order they execute.

One definition for the build (``parallel_execution``), the Colab twins (``colab_notebooks``), the
footer's execution status (``provenance``), the second execution (``.ci/execute_again.py``) and
the tests: a chapter executes when its front matter names a kernel (``kernelspec``), as myst-nb
decides; the chapters listed in ``parallel_execution_first`` in ``_config.yml`` (the longest) start
first, the others follow in the order of ``_toc.yml``.
"""

from pathlib import Path

import yaml


def is_notebook(path: Path) -> bool:
    """Whether the MyST file at ``path`` is executed: its front matter names a kernel."""
    text = Path(path).read_text(encoding="utf-8")
    return text.startswith("---") and "kernelspec:" in text.split("\n---", 1)[0]


def in_toc(root: Path) -> list[str]:
    """Every page of ``_toc.yml``, in its order, e.g. ``book/pytorch``."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8"))
    return [toc["root"]] + [
        c["file"] for part in toc.get("parts", [toc]) for c in part["chapters"]
    ]


def executed(root: Path) -> list[str]:
    """The chapters of ``_toc.yml`` that execute, in the order of ``_toc.yml``."""
    return [name for name in in_toc(root) if is_notebook(Path(root) / f"{name}.md")]


def compared(root: Path) -> list[str]:
    """The executed chapters whose outputs a second execution compares: all but the
    workbook's pages, whose outputs are the checks' fixed verdicts on the untouched
    skeletons, no computed number among them (``tests/test_workbook_pages.py`` checks
    those verdicts)."""
    return [
        name for name in executed(root) if not Path(name).stem.startswith("workbook-")
    ]


def in_execution_order(names: list[str], first: list[str]) -> list[str]:
    """``names`` with those of ``first`` at the front, in its order; the rest as they came."""
    return sorted(
        names, key=lambda name: first.index(name) if name in first else len(first)
    )


def execution_order(root: Path, names: list[str] | None = None) -> list[str]:
    """The executed chapters (or ``names``) in the order a build starts them."""
    first = sphinx_config(root).get("parallel_execution_first", [])
    return in_execution_order(executed(root) if names is None else names, first)


def sphinx_config(root: Path) -> dict:
    """The settings ``_config.yml`` gives Sphinx (``sphinx: config:``)."""
    config = yaml.safe_load((Path(root) / "_config.yml").read_text(encoding="utf-8"))
    return config.get("sphinx", {}).get("config", {})

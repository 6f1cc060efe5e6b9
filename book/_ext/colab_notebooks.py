"""Generate a Colab notebook beside every chapter, so the theme's launch button can open it.

Each ``book/<chapter>.md`` (a MyST notebook) becomes ``book/<chapter>.ipynb`` via jupytext, with
one setup cell in front that installs the book's package from the repository when it is
missing (as on Colab), and with every ``{literalinclude}`` of the package replaced by the code it
shows. The twins are generated, never edited by hand; ``tests/test_colab_notebooks.py`` checks
that the committed ones are current. The build excludes them (``book/**.ipynb``).
"""

import ast
import re
from pathlib import Path

import jupytext
import nbformat

INCLUDE = re.compile(r"```\{literalinclude\} (?P<path>\S+)\n(?P<options>(?::\w+:.*\n)*)```")


def _source_of(path: Path, name: str) -> str:
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            lines = source.splitlines()[node.lineno - 1 - len(node.decorator_list):node.end_lineno]
            return "\n".join(lines)
    raise LookupError(f"{name} not found in {path}")


def _expand_includes(markdown: str, folder: Path) -> str:
    def replace(match):
        options = dict(re.findall(r":(\w+):\s*(.*)", match["options"]))
        path = folder / match["path"]
        code = _source_of(path, options["pyobject"]) if "pyobject" in options else path.read_text()
        return f"```python\n{code}\n```"
    return INCLUDE.sub(replace, markdown)


def setup_cell(repository: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(
        "# Colab: install the book's package (skipped where it is already installed)\n"
        "import importlib.util\n"
        "if importlib.util.find_spec(\"mnistbook\") is None:\n"
        f"    get_ipython().run_line_magic(\"pip\", \"install -q git+{repository}\")"
    )


def colab_notebook(chapter: Path, repository: str) -> str:
    """The Colab twin of a MyST chapter, as notebook JSON text."""
    notebook = jupytext.read(chapter, fmt="md:myst")
    notebook.cells.insert(0, setup_cell(repository))
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            cell.source = _expand_includes(cell.source, chapter.parent)
        cell.id = f"{chapter.stem}-{number}"  # stable, so a rebuild rewrites nothing
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["colab"] = {"provenance": []}
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return nbformat.writes(notebook, version=4) + "\n"


def is_notebook(chapter: Path) -> bool:
    text = chapter.read_text(encoding="utf-8")
    return text.startswith("---") and "kernelspec:" in text.split("\n---", 1)[0]


def write_twins(app, config) -> None:
    repository = config.html_theme_options.get("repository_url", "")
    for chapter in sorted(Path(app.srcdir, "book").glob("*.md")):
        if not is_notebook(chapter):
            continue
        twin, text = chapter.with_suffix(".ipynb"), colab_notebook(chapter, repository)
        if not twin.is_file() or twin.read_text(encoding="utf-8") != text:
            twin.write_text(text, encoding="utf-8")


def setup(app):
    app.connect("config-inited", write_twins)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Generate a Colab notebook beside every chapter, so the theme's launch button can open it.

Each ``book/<chapter>.md`` (a MyST notebook) becomes ``book/<chapter>.ipynb`` via jupytext, with
a note and a setup cell in front that installs the book's package from the repository when it is
missing (as on Colab). Colab renders plain Markdown, not MyST, so the markdown is rewritten:
``{literalinclude}`` becomes the code it shows, admonitions become block quotes, solutions
collapse under ``<details>``, ``{doc}`` and ``{ref}`` become links to the other twins, ``{cite}``
becomes author-year text with a reference list at the end, and a glued number becomes its name
(``glue`` prints ``name = value`` where myst-nb is absent). The twins are generated, never edited
by hand nor committed (git ignores them): the build writes them for the repository that
``repository.py`` derives, and the deploy workflow publishes them to that repository's Colab
branch, where the launch buttons and the twins' own links open them. The build excludes them
(``book/**.ipynb``); without a repository none are written. The book is read once per build
(titles, exercise labels, bibliography), each chapter once.

Why a converter of its own rather than QuantEcon's sphinx-tojupyter (0.6.0, read for this)? That
is a Sphinx builder: the twins would need a second build of every page (``-b jupyter``), and it
translates the doctree, in which myst-nb has already replaced each glued number by the value the
build computed, where a twin must compute it in Colab and name it (its hidden glue cells print
``name = value``); by default it also drops the solutions. myst-nb's own reader yields the cells,
not the rewriting of MyST into Markdown Colab renders, which is what this module adds to jupytext.
"""

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import pybtex.database
import yaml
from pybtex.plugin import find_plugin

from chapters import is_notebook
from repository import Repository

INCLUDE = re.compile(
    r"```\{literalinclude\} (?P<path>\S+)\n(?P<options>(?::\w+:.*\n)*)```"
)
# a directive: from its opening fence to its closing one
BLOCK = re.MULTILINE | re.DOTALL
OPTIONS = r"(?P<options>(?::\w+:[^\n]*\n)*)\n?"  # [^\n], not ".", which crosses lines in a BLOCK
ADMONITION = re.compile(  # three backticks, or four around one that holds a code block
    r"^(?P<fence>````?)\{admonition\} (?P<title>[^\n]*)\n"
    + OPTIONS
    + r"(?P<body>.*?)\n(?P=fence)$",
    BLOCK,
)
EXERCISE = re.compile(
    r"^````\{exercise\} (?P<title>[^\n]*)\n" + OPTIONS + r"(?P<body>.*?)\n````$", BLOCK
)
SOLUTION = re.compile(
    r"^````\{solution\} \S+\n" + OPTIONS + r"(?P<body>.*?)\n````$", BLOCK
)
TARGET = re.compile(r"^\([\w-]+\)=\n", re.MULTILINE)
GLUE = re.compile(r"\{glue(?::text)?\}`(?P<name>[^`:]+)(?::[^`]*)?`")
DOC = re.compile(
    r"\{doc\}`(?:(?P<text>[^`<]+?)\s*<(?P<target>[^`>]+)>|(?P<bare>[^`]+))`"
)
REF = re.compile(
    r"\{ref\}`(?:(?P<text>[^`<]+?)\s*<(?P<target>[^`>]+)>|(?P<label>[^`]+))`"
)
SECTION = re.compile(r"^\((?P<label>[\w-]+)\)=\n#+ (?P<title>.+)$", re.MULTILINE)
CITE = re.compile(r"\{cite(?::(?P<kind>[tp]))?\}`(?P<keys>[^`]+)`")


@dataclass
class Book:
    """What the rewriting needs to know about the whole book."""

    repository: Repository
    title: str  # the book's, from _config.yml
    titles: dict[str, str]  # chapter stem -> its title
    exercises: dict[str, tuple[str, str]]  # exercise label -> (chapter stem, title)
    sections: dict[str, tuple[str, str]]  # section label -> (chapter stem, heading)
    bibliography: pybtex.database.BibliographyData

    @classmethod
    def read(cls, folder: Path, repository: Repository) -> "Book":
        titles, exercises, sections = {}, {}, {}
        for chapter in sorted(folder.glob("*.md")):
            text = chapter.read_text(encoding="utf-8")
            title = re.search(r"^# (.+)$", text, re.MULTILINE)
            titles[chapter.stem] = title[1] if title else chapter.stem
            for match in EXERCISE.finditer(text):
                label = re.search(r":label:\s*(\S+)", match["options"])[1]
                exercises[label] = (chapter.stem, match["title"])
            for match in SECTION.finditer(text):
                sections[match["label"]] = (chapter.stem, match["title"].strip())
        config = yaml.safe_load(
            (folder.parent / "_config.yml").read_text(encoding="utf-8")
        )
        return cls(
            repository,
            config["title"],
            titles,
            exercises,
            sections,
            pybtex.database.parse_file(folder / "references.bib"),
        )

    def colab_url(self, stem: str) -> str:
        # the path the theme links to
        return self.repository.colab_url(f"book/{stem}.ipynb")

    def cited(self, key: str) -> tuple[str, str]:
        """(authors as cited, year), e.g. ("Goodfellow et al.", "2016")."""
        entry = self.bibliography.entries[key]
        names = [" ".join(p.last_names) for p in entry.persons["author"]]
        if len(names) > 2 or "others" in names:
            authors = f"{names[0]} et al."
        else:
            authors = " and ".join(names)
        return authors, entry.fields["year"]

    def references(self, keys: list[str]) -> str:
        style = find_plugin("pybtex.style.formatting", "plain")()
        entries = style.format_entries([self.bibliography.entries[k] for k in keys])
        items = (e.text.render_as("markdown").replace("\n", " ") for e in entries)
        return "## References\n\n" + "\n".join(f"- {item}" for item in items)


def _source_of(path: Path, name: str) -> str:
    """The source of ``name`` in the file, a function or class, or ``Class.method``, as Sphinx's
    ``:pyobject:`` finds it (decorators included)."""
    source = path.read_text(encoding="utf-8")
    scope = ast.parse(source).body
    node = None
    for part in name.split("."):
        node = next(
            (
                n
                for n in scope
                if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part
            ),
            None,
        )
        if node is None:
            raise LookupError(f"{name} not found in {path}")
        scope = node.body
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    lines = source.splitlines()[first - 1 : node.end_lineno]
    return textwrap.dedent("\n".join(lines))


def _expand_include(match, folder: Path) -> str:
    options = dict(re.findall(r":(\w+):\s*(.*)", match["options"]))
    path = folder / match["path"]
    code = (
        _source_of(path, options["pyobject"])
        if "pyobject" in options
        else path.read_text()
    )
    return f"```python\n{code}\n```"


def _quote(title: str, body: str) -> str:
    lines = [f"**{title}**", ""] + body.strip("\n").split("\n")
    return "\n".join(f"> {line}".rstrip() for line in lines)


def _citation(match, book: Book) -> str:
    cited = [book.cited(key.strip()) for key in match["keys"].split(",")]
    if match["kind"] == "t":
        return ", ".join(f"{authors} ({year})" for authors, year in cited)
    return "(" + "; ".join(f"{authors}, {year}" for authors, year in cited) + ")"


def _reference(match, book: Book, stem: str) -> str:
    """A ``{ref}`` to an exercise or a labelled section: its words, linked to the other twin."""
    label = match["target"] or match["label"]
    if label in book.exercises:
        chapter, title = book.exercises[label]
        text = match["text"] or f"exercise “{title}”"
    elif label in book.sections:
        chapter, title = book.sections[label]
        text = match["text"] or f"section “{_plain(title)}”"
    else:
        raise LookupError(
            f"{{ref}}`{label}` in {stem}.md: no exercise or labelled section has that label"
        )
    return text if chapter == stem else f"[{text}]({book.colab_url(chapter)})"


def _plain(title: str) -> str:
    """A heading's words as plain text (its math and code marks dropped)."""
    return re.sub(r"[$`]", "", title).replace("\\mathbf{y}", "y")


def plain_markdown(markdown: str, chapter: Path, book: Book) -> str:
    """A chapter's MyST markdown cell as the plain Markdown Colab renders."""
    # included code first: an admonition may hold it
    markdown = INCLUDE.sub(lambda m: _expand_include(m, chapter.parent), markdown)
    markdown = ADMONITION.sub(lambda m: _quote(m["title"], m["body"]), markdown)
    markdown = EXERCISE.sub(
        lambda m: _quote(f"Exercise: {m['title']}", m["body"]), markdown
    )
    markdown = SOLUTION.sub(
        lambda m: (
            "<details>\n<summary><b>Solution</b></summary>\n\n"
            f"{m['body'].strip()}\n\n</details>"
        ),
        markdown,
    )
    markdown = TARGET.sub("", markdown)
    markdown = GLUE.sub(r"`\g<name>`", markdown)
    markdown = DOC.sub(
        lambda m: (
            f"[{m['text'] or book.titles[m['target'] or m['bare']]}]"
            f"({book.colab_url(m['target'] or m['bare'])})"
        ),
        markdown,
    )
    markdown = REF.sub(lambda m: _reference(m, book, chapter.stem), markdown)
    return CITE.sub(lambda m: _citation(m, book), markdown)


def note_cell(chapter: Path, book: Book) -> nbformat.NotebookNode:
    note = (
        f"*A chapter of the book [{book.title}]({book.repository.url}), as a Colab notebook. "
        "Run the cells from the top."
    )
    glued = GLUE.search(chapter.read_text(encoding="utf-8"))
    if glued:
        note += (
            " A number the book's text quotes appears here as its name, like "
            f"`{glued['name']}`; the cell that computes it prints `{glued['name']} = …`."
        )
    return nbformat.v4.new_markdown_cell(note + "*")


def setup_cell(repository: Repository) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(
        "# Colab: install the book's package (skipped where it is already installed)\n"
        "import importlib.util\n"
        'if importlib.util.find_spec("mnistbook") is None:\n'
        f'    get_ipython().run_line_magic("pip", "install -q {repository.pip_url}")\n'
        "# the workbook's messages link to the published book\n"
        f'get_ipython().run_line_magic("env", "MNISTBOOK_BOOK_URL={repository.pages_url}")'
    )


def colab_notebook(chapter: Path, book: Book) -> str:
    """The Colab twin of a MyST chapter, as notebook JSON text."""
    repository = book.repository
    notebook = jupytext.read(chapter, fmt="md:myst")
    cited = list(
        dict.fromkeys(
            key.strip()
            for cell in notebook.cells
            if cell.cell_type == "markdown"
            for match in CITE.finditer(cell.source)
            for key in match["keys"].split(",")
        )
    )
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = plain_markdown(cell.source, chapter, book)
    notebook.cells[:0] = [note_cell(chapter, book), setup_cell(repository)]
    if cited:
        notebook.cells.append(nbformat.v4.new_markdown_cell(book.references(cited)))
    for number, cell in enumerate(notebook.cells):
        cell.id = f"{chapter.stem}-{number}"  # stable, so a rebuild rewrites nothing
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["colab"] = {"provenance": []}
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return nbformat.writes(notebook, version=4) + "\n"


def write_twins(app, config) -> None:
    repository = config.book_repository  # derived by repository.py
    if repository is None:
        return
    folder = Path(app.srcdir, "book")
    book = Book.read(folder, repository)
    for chapter in sorted(folder.glob("*.md")):
        if not is_notebook(chapter):
            continue
        twin, text = chapter.with_suffix(".ipynb"), colab_notebook(chapter, book)
        if not twin.is_file() or twin.read_text(encoding="utf-8") != text:
            twin.write_text(text, encoding="utf-8")


def setup(app):
    app.setup_extension("repository")  # derives config.book_repository first
    app.connect("config-inited", write_twins)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Say on every page what it was built from, and when its outputs were computed.

The HTML footer reads like "built from commit abc1234 on 2026-11-29 01:30 UTC, torch 2.14.1; the
outputs of this chapter were computed by this build", the commit linked to the repository where
one is known; a checkout with uncommitted changes says so. A chapter's outputs come from myst-nb's
execution records: executed by this build, or taken from the execution cache, where an earlier
build left them for the same code cells, the same package and the same versions of Python, torch,
torchvision, numpy and matplotlib (``package_fingerprint`` drops them otherwise). The "Build report"
page tabulates those records (the ``execution-record`` directive). The PDF's title page carries
the build line.
"""

import datetime
import html
import importlib.metadata
import os
import re
from dataclasses import dataclass
from pathlib import Path

from docutils import nodes
from myst_nb.sphinx_ import NbMetadataCollector
from sphinx.util.docutils import SphinxDirective

from _versions import require
from chapters import is_notebook
from repository import git


@dataclass(frozen=True)
class Source:
    """The checkout a build reads."""

    commit: str | None  # full sha, or None outside git
    dirty: bool
    built: datetime.datetime
    torch: str

    @classmethod
    def of(cls, root: Path, environ: dict) -> "Source":
        commit = environ.get("GITHUB_SHA") or git(root, "rev-parse", "HEAD")
        dirty = bool(git(root, "status", "--porcelain")) if commit else False
        return cls(
            commit,
            dirty,
            datetime.datetime.now(datetime.timezone.utc),
            importlib.metadata.version("torch"),
        )

    def describe(self, commit: str | None = None) -> str:
        """'built from commit abc1234 on …, torch …'; ``commit`` replaces the short sha (say, by a link)."""
        if self.commit is None:
            origin = "built outside a git checkout"
        else:
            origin = f"built from commit {commit or self.commit[:7]}"
            origin += " with uncommitted changes" if self.dirty else ""
        return f"{origin} on {self.built:%Y-%m-%d %H:%M} UTC, torch {self.torch}"


@dataclass(frozen=True)
class Execution:
    """When one chapter's outputs were computed."""

    chapter: str
    at: datetime.datetime | None  # None: never executed (execution off)
    seconds: float | None
    this_build: bool
    succeeded: bool

    @property
    def by(self) -> str:
        if self.at is None:
            return "not executed"
        return "this build" if self.this_build else "an earlier build (execution cache)"


def executions(env, built: datetime.datetime) -> list[Execution]:
    """The execution record of every executed chapter, in the order of the table of contents."""
    found = []
    for name in env.found_docs:
        if not is_notebook(env.doc2path(name)):
            continue
        record = NbMetadataCollector.get_exec_data(env, name) or {}
        at = (
            datetime.datetime.fromtimestamp(record["mtime"], datetime.timezone.utc)
            if record.get("mtime")
            else None
        )
        # a minute's slack: the cache stamps a chapter when its execution started
        this_build = at is not None and at >= built - datetime.timedelta(minutes=1)
        found.append(
            Execution(
                name,
                at,
                record.get("runtime"),
                this_build,
                bool(record.get("succeeded")),
            )
        )
    order = {
        name: i
        for i, name in enumerate(env.toctree_includes.get(env.config.root_doc, []))
    }
    return sorted(found, key=lambda e: (order.get(e.chapter, len(order)), e.chapter))


def execution_line(execution: Execution | None) -> str:
    """What a page's footer says of its outputs."""
    if execution is None:
        return "no code runs on this page"
    if execution.at is None:
        return "this chapter was not executed"
    return (
        f"the outputs of this chapter were computed on {execution.at:%Y-%m-%d %H:%M} UTC, "
        f"by {execution.by}"
    )


class ExecutionRecordNode(nodes.General, nodes.Element):
    """Replaced by the table of executions once every chapter has been read."""


class ExecutionRecord(SphinxDirective):
    """``{execution-record}``: a table of when each chapter's outputs were computed."""

    def run(self):
        return [ExecutionRecordNode()]


def fill_record(app, doctree, docname) -> None:
    for placeholder in list(doctree.findall(ExecutionRecordNode)):
        rows = [("chapter", "outputs computed (UTC)", "by", "seconds", "succeeded")]
        for e in executions(app.env, app.book_source.built):
            title = (
                app.env.titles[e.chapter].astext()
                if e.chapter in app.env.titles
                else e.chapter
            )
            rows.append(
                (
                    title,
                    f"{e.at:%Y-%m-%d %H:%M}" if e.at else "—",
                    e.by,
                    f"{e.seconds:.0f}" if e.seconds is not None else "—",
                    "yes" if e.succeeded else "no",
                )
            )
        placeholder.replace_self(_table(rows))


def _table(rows: list[tuple[str, ...]]) -> nodes.table:
    table = nodes.table(classes=["execution-record"])
    group = nodes.tgroup(cols=len(rows[0]))
    table += group
    group += [nodes.colspec(colwidth=1) for _ in rows[0]]
    head, body = nodes.thead(), nodes.tbody()
    group += [head, body]
    for part, cells in ((head, [rows[0]]), (body, rows[1:])):
        for cells_of_row in cells:
            row = nodes.row()
            for text in cells_of_row:
                row += nodes.entry("", nodes.paragraph(text=text))
            part += row
    return table


def record(app, config) -> None:
    source = Source.of(Path(app.srcdir), dict(os.environ))
    app.book_source = source
    line = source.describe()
    # TeX-escaped
    title_date = re.sub(r"([{}_%&#$])", r"\\\1", line[0].upper() + line[1:])
    # the title page's date line; \AtBeginDocument runs after the template's own \date
    config.latex_elements["preamble"] = (
        config.latex_elements.get("preamble", "")
        + f"\n\\AtBeginDocument{{\\date{{{title_date}}}}}\n"
    )


def add_footer(app, pagename, templatename, context, doctree) -> None:
    source, repository = app.book_source, app.config.book_repository
    commit = f"<code>{source.commit[:7]}</code>" if source.commit else None
    if commit and repository:
        commit = f'<a href="{html.escape(repository.url)}/commit/{source.commit}">{commit}</a>'
    execution = next(
        (e for e in executions(app.env, source.built) if e.chapter == pagename), None
    )
    line = f"{source.describe(commit)}; {execution_line(execution)}"
    context["theme_extra_footer"] = (
        context.get("theme_extra_footer") or ""
    ) + f'<p class="provenance">{line}</p>'


def setup(app):
    require("provenance")
    app.setup_extension("repository")
    app.add_node(ExecutionRecordNode)
    app.add_directive("execution-record", ExecutionRecord)
    app.connect("config-inited", record)
    app.connect("doctree-resolved", fill_record)
    app.connect("html-page-context", add_footer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Say on every page what the book was built from: commit, date, torch, and whether it all ran.

The HTML footer reads like "built from commit abc1234 on 2026-11-29 01:30 UTC, torch 2.14.1,
every chapter executed", the commit linked to the repository where one is known; a checkout with
uncommitted changes says so. "Executed" comes from myst-nb's execution records (run now or taken
from the execution cache, which the package fingerprint keeps current), the same records the
"Build report" page tabulates. The PDF's title page carries the same line, less the execution
status, which is known only once every chapter is read.
"""

import datetime
import html
import importlib.metadata
import os
import re
from dataclasses import dataclass
from pathlib import Path

from myst_nb.sphinx_ import NbMetadataCollector
from repository import git


@dataclass(frozen=True)
class Source:
    """The checkout a build reads."""

    commit: str | None   # full sha, or None outside git
    dirty: bool
    built: datetime.datetime
    torch: str

    @classmethod
    def of(cls, root: Path, environ: dict) -> "Source":
        commit = environ.get("GITHUB_SHA") or git(root, "rev-parse", "HEAD")
        dirty = bool(git(root, "status", "--porcelain")) if commit else False
        return cls(commit, dirty, datetime.datetime.now(datetime.timezone.utc),
                   importlib.metadata.version("torch"))

    def describe(self, commit: str | None = None) -> str:
        """'built from commit abc1234 on …, torch …'; ``commit`` replaces the short sha (say, by a link)."""
        if self.commit is None:
            origin = "built outside a git checkout"
        else:
            origin = f"built from commit {commit or self.commit[:7]}"
            origin += " with uncommitted changes" if self.dirty else ""
        return f"{origin} on {self.built:%Y-%m-%d %H:%M} UTC, torch {self.torch}"


def execution_status(env) -> str:
    """'every chapter executed', or how many of the notebooks were executed."""
    chapters = [name for name in env.found_docs if "kernelspec" in env.metadata.get(name, {})]
    runs = [NbMetadataCollector.get_exec_data(env, name) for name in chapters]
    executed = sum(1 for run in runs if run and run["succeeded"])
    if executed == len(chapters):
        return "every chapter executed"
    return f"{executed} of {len(chapters)} chapters executed"


def record(app, config) -> None:
    source = Source.of(Path(app.srcdir), dict(os.environ))
    app.book_source = source
    line = source.describe()
    title_date = re.sub(r"([{}_%&#$])", r"\\\1", line[0].upper() + line[1:])  # TeX-escaped
    # the title page's date line; \AtBeginDocument runs after the template's own \date
    config.latex_elements["preamble"] = (config.latex_elements.get("preamble", "")
                                         + f"\n\\AtBeginDocument{{\\date{{{title_date}}}}}\n")


def add_footer(app, pagename, templatename, context, doctree) -> None:
    source, repository = app.book_source, app.config.book_repository
    commit = f"<code>{source.commit[:7]}</code>" if source.commit else None
    if commit and repository:
        commit = f'<a href="{html.escape(repository.url)}/commit/{source.commit}">{commit}</a>'
    line = source.describe(commit)
    context["theme_extra_footer"] = f'<p class="provenance">{line}, {execution_status(app.env)}</p>'


def setup(app):
    app.setup_extension("repository")
    app.connect("config-inited", record)
    app.connect("html-page-context", add_footer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

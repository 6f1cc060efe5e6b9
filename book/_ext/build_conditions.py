"""Text that matches what the build produced: a link to the PDF edition only where the PDF was
built, Colab buttons promised only where the build knows the book's repository.

    ```{if-built} pdf            (or: no pdf, repository, no repository)
    Text for that case.
    ```

A condition is decided when the page is read: ``pdf``, that the PDF edition exists in
``_build/latex`` (for the PDF itself, always); ``repository``, that ``repository.py`` found the
book's GitHub repository. A page that uses a condition is read again when it changes — the PDF
built since the last build, say — so a page never keeps a dead link or misses a live one. The HTML
build copies the PDF edition into the site, where its link points.
"""

import shutil
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def pdf_of(app) -> Path:
    """Where the PDF edition is: the LaTeX build's output, beside the HTML's."""
    target = (
        app.config.latex_documents[0][1] if app.config.latex_documents else "book.tex"
    )
    return Path(app.outdir).parent / "latex" / Path(target).with_suffix(".pdf").name


def conditions(app) -> dict[str, bool]:
    return {
        "pdf": app.builder.format == "latex" or pdf_of(app).is_file(),
        "repository": app.config.book_repository is not None,
    }


class IfBuilt(SphinxDirective):
    has_content = True
    required_arguments = 1
    optional_arguments = 1

    def run(self):
        words = self.arguments
        negated = words[0] == "no"
        name = words[-1]
        app = self.env.app
        known = conditions(app)
        if name not in known or len(words) > 2 or (len(words) == 2 and not negated):
            raise self.error(
                f"if-built: expected one of {sorted(known)}, or 'no' and one of them; "
                f"got {' '.join(words)!r}"
            )
        self.env.build_conditions.setdefault(self.env.docname, {})[name] = known[name]
        if known[name] == negated:
            return []
        container = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, container)
        return container.children


def _init(app, env, docnames) -> None:
    if not hasattr(env, "build_conditions"):
        env.build_conditions = {}


def _outdated(app, env, added, changed, removed) -> list[str]:
    """Pages whose conditions changed since they were read."""
    now = conditions(app)
    return [
        doc
        for doc, used in getattr(env, "build_conditions", {}).items()
        if any(now[name] != value for name, value in used.items())
        and doc in env.found_docs
    ]


def _purge(app, env, docname) -> None:
    getattr(env, "build_conditions", {}).pop(docname, None)


def _merge(app, env, docnames, other) -> None:
    env.build_conditions.update(getattr(other, "build_conditions", {}))


def _copy_pdf(app, exception) -> None:
    if exception is None and app.builder.format == "html" and pdf_of(app).is_file():
        shutil.copy(pdf_of(app), Path(app.outdir) / pdf_of(app).name)


def setup(app):
    app.setup_extension("repository")
    app.add_directive("if-built", IfBuilt)
    app.connect("env-before-read-docs", _init)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    # before the links are checked
    app.connect("build-finished", _copy_pdf, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}

"""Every link of the built site to a file of the site points at a file the build wrote.

Sphinx's nitpicky mode (``-n``) checks the references it resolves, not links written as raw HTML
or added by an extension (the PDF edition, the favicon, a page's scripts). At the end of an HTML
build each page's ``href`` and ``src`` values that name a path of the site are looked up in the
output folder; one that is missing is a warning, an error under ``-W``.
"""

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sphinx.util import logging

logger = logging.getLogger(__name__)
LINK = re.compile(r'\b(?:href|src)="([^"]+)"')


def missing_links(outdir: Path) -> list[tuple[str, str]]:
    """(page, link) for each link to a path of the site that names no file the build wrote."""
    found = []
    for page in sorted(outdir.rglob("*.html")):
        if page.relative_to(outdir).parts[0].startswith("_"):
            continue  # templates and scripts' own files
        for link in LINK.findall(page.read_text(encoding="utf-8")):
            parts = urlsplit(link)
            if (
                parts.scheme
                or parts.netloc
                or not parts.path
                or link.startswith(("#", "data:", "javascript:"))
            ):
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                found.append((str(page.relative_to(outdir)), link))
    return found


def _check(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page, link in missing_links(Path(app.outdir)):
        logger.warning(
            f"{page}: the link {link!r} points at no file of the built site",
            type="local_links",
            subtype="missing",
        )


def setup(app):
    app.connect("build-finished", _check, priority=950)  # after the pages' last rewrite
    return {"parallel_read_safe": True, "parallel_write_safe": True}

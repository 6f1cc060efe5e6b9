"""Each page carries its stylesheets in its own head, cut to the rules the site can use.

A page's first paint waits for every stylesheet it links; on a slow phone link each one is
another round trip, and the theme's own (Bootstrap included) is 300 KB of rules this book
mostly does not use. At the end of an HTML build, the stylesheets a page links (in order,
``@import`` resolved) are parsed with tinycss2 and a rule is kept when some selector of it can
match: every class and id it names occurs in the site's pages or in a string of its scripts,
which create elements (tooltips, dialogs) and toggle state classes. ``url()`` references are
rewritten relative to the page, but small web fonts (the theme's icons, cut down to the few the
book shows) come inline as ``data:`` URLs, a request saved; the page gets one ``<style>`` in
place of its links. The stylesheet files stay in ``_static`` for anything else that reads them.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import tinycss2

from _versions import require

LINK = re.compile(
    r'[ \t]*<link (?=[^>]*rel="stylesheet")[^>]*href="([^"]+)"[^>]*/?>\n?'
)
IMPORT = re.compile(r'@import\s+(?:url\()?["\']?([^"\')]+)["\']?\)?\s*;')
URL = re.compile(r'url\((["\']?)([^"\')]+)\1\)')
NAMES = re.compile(r"[.#](-?[_a-zA-Z][\w-]*)")
# pseudo-classes, attributes
NOT_NAMES = re.compile(r"::?[\w-]+(\([^)]*\))?|\[[^\]]*\]")
WORD = re.compile(r"-?[_a-zA-Z][\w-]*")
STRING = re.compile(r"""(["'`])((?:(?!\1)[^\n\\]|\\.){1,300})\1""")
GROUPS = {"media", "supports", "layer", "container"}
INLINE_FONT_BYTES = 4096  # .woff2 files this small travel inside the page


def _site_names(outdir: Path, pages: list[Path]) -> set[str]:
    """Class and id names the site can show: in the pages, and in its scripts' strings."""
    names: set[str] = set()
    scripts = [
        path.read_text(encoding="utf-8", errors="ignore")
        for path in outdir.rglob("*.js")
    ]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for attribute in re.findall(r'\b(?:class|id)="([^"]*)"', text):
            names.update(attribute.split())
        scripts += re.findall(r"<script[^>]*>(.*?)</script>", text, flags=re.DOTALL)
    for script in scripts:
        for _, string in STRING.findall(script):
            names.update(WORD.findall(string))
    return names


def _can_match(selector: str, names: set[str]) -> bool:
    return all(name in names for name in NAMES.findall(NOT_NAMES.sub("", selector)))


def _kept(rules, names: set[str]) -> str:
    out = []
    for rule in rules:
        if rule.type == "qualified-rule":
            selectors = [s.strip() for s in tinycss2.serialize(rule.prelude).split(",")]
            used = [s for s in selectors if _can_match(s, names)]
            if used:
                out.append(
                    ",".join(used) + "{" + tinycss2.serialize(rule.content) + "}"
                )
        elif (
            rule.type == "at-rule"
            and rule.content is not None
            and rule.lower_at_keyword in GROUPS
        ):
            inner = _kept(
                tinycss2.parse_rule_list(
                    rule.content, skip_comments=True, skip_whitespace=True
                ),
                names,
            )
            if inner:
                out.append(
                    f"@{rule.at_keyword}{tinycss2.serialize(rule.prelude)}{{{inner}}}"
                )
        elif rule.type == "at-rule":  # @font-face, @keyframes, @charset, …: kept whole
            out.append(tinycss2.serialize([rule]))
    return "".join(out)


class _Styles:
    """The cut stylesheets of one build, each cut once."""

    def __init__(self, names: set[str]):
        self.names, self.cut = names, {}

    def _sheet(self, path: Path) -> str:
        """One stylesheet, cut, with url()s as absolute file paths (made relative later)."""
        if path in self.cut:
            return self.cut[path]

        def absolute(match: re.Match, base: Path) -> str:
            target = match.group(2)
            if target.startswith(("data:", "http:", "https:", "#", "/")):
                return match.group(0)
            # suffix: ?query#hash
            name, suffix = re.match(r"([^?#]*)(.*)", target).groups()
            file = (base / name).resolve()
            if (
                file.suffix == ".woff2"
                and file.is_file()
                and file.stat().st_size <= INLINE_FONT_BYTES
            ):
                data = base64.b64encode(file.read_bytes()).decode()
                return f'url("data:font/woff2;base64,{data}")'
            return f'url("{file}{suffix}")'

        def resolved(sheet: Path) -> str:
            text = sheet.read_text(encoding="utf-8")
            text = URL.sub(lambda m: absolute(m, sheet.parent), text)
            return IMPORT.sub(
                lambda m: resolved((sheet.parent / m.group(1)).resolve()), text
            )

        rules = tinycss2.parse_stylesheet(
            resolved(path), skip_comments=True, skip_whitespace=True
        )
        self.cut[path] = _kept(rules, self.names)
        return self.cut[path]

    def for_page(self, page: Path, sheets: list[Path]) -> str:
        css = "".join(self._sheet(sheet) for sheet in sheets)
        folder = page.parent
        return re.sub(
            r'url\("(/[^"]+)"\)',
            lambda m: f'url("{os.path.relpath(m.group(1), folder)}")',
            css,
        )


def _inline(page: Path, styles: _Styles) -> None:
    text = page.read_text(encoding="utf-8")
    links = [
        m for m in LINK.finditer(text) if not m.group(1).startswith(("http:", "https:"))
    ]
    if not links:
        return
    sheets = [(page.parent / m.group(1).split("?")[0]).resolve() for m in links]
    style = f"<style>{styles.for_page(page, sheets)}</style>\n"
    pieces, last = [], 0
    for index, match in enumerate(links):
        pieces += [text[last : match.start()], style if index == 0 else ""]
        last = match.end()
    page.write_text("".join(pieces) + text[last:], encoding="utf-8")


def _finish(app, exception) -> None:
    if exception or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    pages = [
        page
        for page in sorted(outdir.rglob("*.html"))  # not templates in _static
        if not page.relative_to(outdir).parts[0].startswith("_")
    ]
    styles = _Styles(_site_names(outdir, pages))
    for page in pages:
        _inline(page, styles)


def setup(app):
    require("inline_styles")
    # after the other extensions have written their stylesheets (static_math, lean_pages)
    app.connect("build-finished", _finish, priority=800)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

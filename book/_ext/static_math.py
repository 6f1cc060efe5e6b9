"""Typeset every equation while the book is built, so a reader's browser runs no math script.

MathJax 3 (the files of the pinned ``django-static-mathjax`` wheel) runs inside V8 (PyPI's
``mini-racer``) during the build and turns each formula into SVG, with a visually hidden MathML
copy that screen readers read. Pages then need one small stylesheet and no fonts. Numbered
equations and ``{eq}`` references keep Sphinx's own markup (the same as ``sphinx.ext.mathjax``).
A formula MathJax cannot parse fails the build with a warning naming the page. Each glyph's
outline is sent once per page (``share_glyphs``), which keeps a derivation page's HTML small.

Reaches into MathJax's internal module tree (``MathJax._``), written for the MathJax of the
django-static-mathjax release ``_versions.py`` lists; ``setup`` checks it.
"""

from __future__ import annotations

import atexit
import html
import re
from functools import lru_cache
from pathlib import Path

from docutils import nodes
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

from _versions import require

COMPONENTS = [
    "loader.js",
    "core.js",
    "adaptors/liteDOM.js",
    "input/tex-full.js",
    "output/svg.js",
    "output/svg/fonts/tex.js",
    "a11y/assistive-mml.js",
]
STYLESHEET = "static-math.css"
logger = logging.getLogger(__name__)

SETUP_JS = r"""
var _ = MathJax._;
var adaptor = _.adaptors.liteAdaptor.liteAdaptor();
var handler = _.handlers.html_ts.RegisterHTMLHandler(adaptor);
_.a11y['assistive-mml'].AssistiveMmlHandler(handler);
var tex = new _.input.tex_ts.TeX({
  // every package but the proof trees and 'noundefined' (which would hide a misspelt macro)
  packages: _.input.tex.AllPackages.AllPackages.filter(function (p) {
    return p !== 'bussproofs' && p !== 'noundefined'; }),
  formatError: function (jax, error) { throw new Error(error.message); }
});
// fontCache 'local': each formula defines its glyphs once; share_glyphs() then pools them per page
var svg = new _.output.svg_ts.SVG({fontCache: 'local', font: new _.output.svg.fonts.tex_ts.TeXFont()});
var doc = _.mathjax.mathjax.document('', {InputJax: tex, OutputJax: svg});
function render(source, display) { return adaptor.outerHTML(doc.convert(source, {display: display})); }
function styles() { return adaptor.textContent(svg.styleSheet(doc)); }
"""

# a wide display equation scrolls on its own on a phone instead of widening the page
EXTRA_CSS = """
mjx-container[jax="SVG"][display="true"] { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
"""


class MathError(Exception):
    """MathJax refused a formula."""


def _mathjax_es5() -> Path:
    import mathjax  # the django-static-mathjax distribution

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


@lru_cache(maxsize=1)
def _engine():
    """V8 with MathJax loaded: about 0.3 s, once per build process."""
    from py_mini_racer import MiniRacer

    es5 = _mathjax_es5()
    context = MiniRacer()
    context.eval("var window = globalThis; var MathJax = {loader: {load: []}};")
    for component in COMPONENTS:
        context.eval((es5 / component).read_text(encoding="utf-8"))
    context.eval(SETUP_JS)
    # Closed at exit while Python still runs V8's event-loop thread: left to MiniRacer's
    # __del__ during the interpreter's teardown, the close waits for that thread, which
    # Python 3.13 no longer runs then, and the build never exits.
    atexit.register(context.close)
    return context


@lru_cache(maxsize=None)
def render(source: str, display: bool) -> str:
    """The SVG (with hidden MathML) for one TeX formula."""
    if not isinstance(source, str):
        raise TypeError(
            f"render expects TeX source as str, got {type(source).__name__}"
        )
    from py_mini_racer import JSEvalException

    try:
        return _engine().call("render", source, display)
    except JSEvalException as error:
        message = str(error).splitlines()[0] if str(error) else repr(error)
        raise MathError(f"cannot typeset {source!r}: {message}") from None


GLYPH_DEFS = re.compile(
    r'<defs>((?:<path id="MJX-\d+-[^"]+" d="[^"]*"></path>)*)</defs>'
)
GLYPH = re.compile(r'<path id="MJX-\d+-([^"]+)" d="([^"]*)"></path>')
GLYPH_USE = re.compile(r'xlink:href="#MJX-\d+-([^"]+)"')


def share_glyphs(html_body: str) -> str:
    """One copy of every glyph outline on a page: the formulas' own <defs> move into one hidden
    <svg> at the top, and each formula's <use> points there (ids lose the formula's number)."""
    glyphs: dict[str, str] = {}

    def pool(match: re.Match) -> str:
        for name, outline in GLYPH.findall(match.group(1)):
            if glyphs.setdefault(name, outline) != outline:
                raise MathError(f"two outlines for the glyph {name}: cannot share them")
        return ""

    html_body = GLYPH_DEFS.sub(pool, html_body)
    if not glyphs:
        return html_body
    html_body = GLYPH_USE.sub(lambda m: f'xlink:href="#MJX-{m.group(1)}"', html_body)
    paths = "".join(
        f'<path id="MJX-{name}" d="{outline}"></path>'
        for name, outline in glyphs.items()
    )
    return (
        '<svg class="mjx-glyphs" aria-hidden="true" focusable="false" width="0" height="0" '
        f'style="position: absolute"><defs>{paths}</defs></svg>\n' + html_body
    )


def _share_page_glyphs(app, pagename, templatename, context, doctree) -> None:
    if "body" in context:
        context["body"] = share_glyphs(context["body"])


def stylesheet() -> str:
    return _engine().call("styles") + EXTRA_CSS


def _typeset(translator, node, source: str, display: bool) -> str:
    try:
        return render(source, display)
    except MathError as error:
        logger.warning(str(error), location=node)
        return f'<code class="math-error">{html.escape(source)}</code>'


def visit_math(self, node: nodes.math) -> None:
    self.body.append(
        self.starttag(node, "span", "", CLASS="math notranslate nohighlight")
    )
    self.body.append(_typeset(self, node, node.astext(), False) + "</span>")
    raise nodes.SkipNode


def _display_source(node: nodes.math_block) -> str:
    """The TeX sphinx.ext.mathjax would hand MathJax: blank-line parts aligned, lines split."""
    if node["nowrap"]:
        return node.astext()
    parts = [part for part in node.astext().split("\n\n") if part.strip()]
    parts = [rf"\begin{{split}}{p}\end{{split}}" if r"\\" in p else p for p in parts]
    if len(parts) > 1:
        return r"\begin{aligned}" + r"\\".join(parts) + r"\end{aligned}"
    return parts[0] if parts else ""


def visit_displaymath(self, node: nodes.math_block) -> None:
    self.body.append(self.starttag(node, "div", CLASS="math notranslate nohighlight"))
    if node["number"] and not node["nowrap"]:
        self.body.append(f'<span class="eqno">({get_node_equation_number(self, node)})')
        self.add_permalink_ref(node, _("Link to this equation"))
        self.body.append("</span>")
    self.body.append(_typeset(self, node, _display_source(node), True) + "</div>\n")
    raise nodes.SkipNode


def _use_renderer(app, config) -> None:
    config.html_math_renderer = "static_math"


def _add_stylesheet(app) -> None:
    if app.builder.format == "html":
        app.add_css_file(STYLESHEET)


def _write_stylesheet(app, exception) -> None:
    if exception or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / STYLESHEET
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(stylesheet(), encoding="utf-8")


def setup(app):
    require("static_math")
    app.add_html_math_renderer(
        "static_math", (visit_math, None), (visit_displaymath, None)
    )
    app.connect("config-inited", _use_renderer)
    app.connect("builder-inited", _add_stylesheet)
    app.connect("html-page-context", _share_page_glyphs)
    app.connect("build-finished", _write_stylesheet)
    # V8 does not survive a fork: with -j, pages are written in this one process
    return {"parallel_read_safe": True, "parallel_write_safe": False}

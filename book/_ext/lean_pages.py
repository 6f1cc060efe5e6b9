"""Pages that load only what they use, with no console errors, and a description for search engines.

What the theme stack would otherwise send with every page, and what is done instead:

- FontAwesome as a 1.5 MB script: dropped. The icons come from the theme's own FontAwesome
  webfonts, cut down at the end of the build to the few glyphs the pages and stylesheets use,
  and the theme stylesheet keeps only the icon rules of those (a third of its weight).
- thebe (live code in the page; this book launches Colab instead): its scripts, including the
  configuration that ``sphinx-thebe`` emits twice (a ``SyntaxError`` in every page), are dropped.
- the search index and its tools on every page (the theme's search-as-you-type, which is off):
  kept on the search page only.
- other scripts: fetched only once the page has loaded, in their order, so that nothing but
  the HTML stands between a reader and the first paint (but on the search page, whose
  results are the scripts' work). Until togglebutton.js has given a solution its button,
  ``book.css`` keeps the solution folded. The small ``documentation_options.js`` that
  inline scripts read is inlined, and sphinx-design's tab script is dropped from pages
  without tabs.
- images: loaded lazily, as the reader scrolls to them.
- ``Got invalid theme mode``: the theme's ``default_mode`` is set (to ``auto``), and a line in the
  head turns ``auto`` into the reader's light or dark preference before the first paint.
- a ``robots.txt`` and a ``<meta name="description">`` (the page's first paragraph) for SEO, and
  a ``favicon.ico`` for pages without an icon link (the root redirect), so nothing 404s.

Reaches into theme internals (template markup, asset names, webfont files) and Sphinx's
private asset record: written for the releases ``_versions.py`` lists, which ``setup`` checks.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from docutils import nodes

from _versions import require

DESCRIPTION_CHARS = 155
ALWAYS_KEPT_ICONS = {"xmark"}  # created by the theme's script for its banners
SEARCH_ONLY = ("_static/searchtools.js", "_static/language_data.js", "searchindex.js")
OPTIONS = "_static/documentation_options.js"  # inline scripts read what it defines


# the theme's head script copies default_mode ("auto") into data-theme, which its CSS does not know
RESOLVE_AUTO_THEME = (
    'if (document.documentElement.dataset.theme === "auto") '
    "document.documentElement.dataset.theme = matchMedia("
    '"(prefers-color-scheme: dark)").matches ? "dark" : "light";'
)


def _set_default_mode(app, config) -> None:
    config.html_context.setdefault("default_mode", "auto")


def _description(doctree) -> str:
    """The page's first paragraph, cut at a word before DESCRIPTION_CHARS."""
    for paragraph in doctree.findall(nodes.paragraph):
        text = " ".join(paragraph.astext().split())
        if len(text) > 40:
            if len(text) > DESCRIPTION_CHARS:
                text = text[:DESCRIPTION_CHARS].rsplit(" ", 1)[0] + "…"
            return text
    return ""


def _is_thebe(script) -> bool:
    return "thebe" in (
        script.filename or ""
    ) or "THEBE_JS_URL" in script.attributes.get("body", "")


def _lean_context(app, pagename, templatename, context, doctree) -> None:
    from sphinx.builders.html._assets import _JavaScript  # Sphinx 7.4's asset record

    body = context.get("body", "")
    scripts, seen_bodies = [], set()
    for script in context.get("script_files", []):
        inline = script.attributes.get("body")
        if _is_thebe(script) or (inline and inline in seen_bodies):
            continue
        if (
            script.filename
            and script.filename.endswith("design-tabs.js")
            and "sd-tab-set" not in body
        ):
            continue
        if inline:
            seen_bodies.add(inline)
        elif script.filename and script.filename != OPTIONS and pagename != "search":
            # (the search page's own searchtools.js runs at once and needs doctools.js)
            attributes = {k: v for k, v in script.attributes.items() if k != "async"}
            script = _JavaScript(
                script.filename, priority=script.priority, **attributes, defer="defer"
            )
        scripts.append(script)
    context["script_files"] = scripts
    context["css_files"] = [
        css
        for css in context.get("css_files", [])
        if "thebe" not in (css.filename or "")
    ]

    text = _description(doctree) if doctree is not None else ""
    title = context.get("title") or pagename.replace("-", " ").capitalize()
    text = text or f"{title} — {app.config.html_title or app.config.project}"
    context["metatags"] = (
        context.get("metatags", "")
        + f'\n<meta name="description" content="{html.escape(text)}" />'
    )


DEFERRED = re.compile(r'\s*<script defer(?:="defer")? src="([^"]+)"></script>')


def _after_load(sources: list[str]) -> str:
    """A script that, once the page has loaded, adds the scripts in order (``async = false``
    keeps it) and marks ``<html data-scripts-loaded>`` when the last has run."""
    return (
        '<script>addEventListener("load", () => { let script; '
        f"for (const src of {json.dumps(sources)}) {{ "
        'script = Object.assign(document.createElement("script"), {src, async: false}); '
        "document.head.append(script); } "
        'script.addEventListener("load", () => '
        'document.documentElement.dataset.scriptsLoaded = ""); });</script>'
    )


def _rewrite_page(page: Path, outdir: Path, options: str) -> None:
    """Remove the theme's hard-coded FontAwesome script and script preloads; inline
    documentation_options.js (its ``options``); on every page but the search page, drop the
    search scripts and fetch the deferred scripts once the page has loaded; load images
    lazily."""
    text = original = page.read_text(encoding="utf-8")
    text = re.sub(
        r'\s*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>',
        "",
        text,
    )
    # the theme preloads its two deferred scripts: that bandwidth belongs to the first paint
    text = re.sub(
        r'\s*<link rel="preload" as="script" href="[^"]*_static/scripts/[^"]*" />',
        "",
        text,
    )
    text = re.sub(
        rf'<script src="[^"]*{re.escape(OPTIONS)}[^"]*"></script>',
        lambda _: f"<script>{options}</script>",
        text,
    )
    if page != outdir / "search.html":
        for name in SEARCH_ONLY:
            text = re.sub(
                rf'\s*<script src="[^"]*{re.escape(name)}"></script>', "", text
            )
        late = [m.group(1) for m in DEFERRED.finditer(text)]
        if late:
            text = DEFERRED.sub("", text)
            text = text.replace("</head>", _after_load(late) + "\n</head>", 1)
    text = re.sub(r"<img (?![^>]*\bloading=)", '<img loading="lazy" ', text)
    if text != original:
        page.write_text(text, encoding="utf-8")


THEME_CSS = "styles/pydata-sphinx-theme.css"
ICON_RULE = re.compile(r'((?:\.fa-[\w-]+:+before,?)+)\{content:"[^"]*"\}')


def _theme_static() -> Path:
    import pydata_sphinx_theme

    return (
        Path(pydata_sphinx_theme.__file__).parent
        / "theme"
        / "pydata_sphinx_theme"
        / "static"
    )


def _stylesheets(outdir: Path):
    """Text of every stylesheet in the output; the theme's own from its package, untrimmed."""
    for css in (outdir / "_static").rglob("*.css"):
        source = (
            _theme_static() / THEME_CSS
            if css == outdir / "_static" / THEME_CSS
            else css
        )
        yield source.read_text(encoding="utf-8", errors="ignore")


def _used_icons(pages: list[Path]) -> set[str]:
    used = set(ALWAYS_KEPT_ICONS)
    for page in pages:
        used.update(re.findall(r"\bfa-([\w-]+)", page.read_text(encoding="utf-8")))
    return used


def _trim_icon_rules(outdir: Path, used: set[str]) -> None:
    """The theme stylesheet without the class rules of the ~2000 icons no page uses."""

    def keep(rule: re.Match) -> str:
        return (
            rule.group(0)
            if used & set(re.findall(r"\.fa-([\w-]+):", rule.group(1)))
            else ""
        )

    source = (_theme_static() / THEME_CSS).read_text(encoding="utf-8")
    (outdir / "_static" / THEME_CSS).write_text(
        ICON_RULE.sub(keep, source), encoding="utf-8"
    )


def _icon_codepoints(outdir: Path, used: set[str]) -> set[int]:
    """Glyphs the site shows: icon classes used in the pages, and icons the stylesheets name."""
    mapped, named = {}, set()
    rule = re.compile(r"([^{}]+)\{([^{}]*)\}")
    escape = re.compile(r'"\\([0-9a-f]{2,5})"')
    for text in _stylesheets(outdir):
        for selectors, declarations in rule.findall(text):
            codes = [int(code, 16) for code in escape.findall(declarations)]
            names = re.findall(r"\.fa-([\w-]+):+before", selectors)
            if (
                names and len(names) == selectors.count(",") + 1
            ):  # a class-to-glyph rule: keep if used
                for name in names:
                    mapped.setdefault(name, set()).update(codes)
            else:
                named.update(code for code in codes if code >= 0xE000)
    return named.union(*(mapped.get(name, set()) for name in used))


def _subset_webfonts(outdir: Path, codepoints: set[int]) -> None:
    """Replace the theme's webfonts in the output by subsets (always cut from the theme's copy)."""
    from fontTools import subset

    source = _theme_static() / "vendor" / "fontawesome" / "webfonts"
    target = outdir / "_static" / "vendor" / "fontawesome" / "webfonts"
    if not target.is_dir():
        return
    for font in sorted(source.glob("*")):
        if font.suffix not in {".woff2", ".ttf"}:
            continue
        options = subset.Options()
        options.flavor = "woff2" if font.suffix == ".woff2" else None
        options.layout_features = ["*"]
        loaded = subset.load_font(str(font), options)
        mapped = set(loaded.getBestCmap())
        # a font none of whose glyphs the site shows keeps one: a font without any is not a
        # valid font, and the browser says so on every page that declares it
        kept = (codepoints & mapped) or {min(mapped)}
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=kept)
        subsetter.subset(loaded)
        subset.save_font(loaded, str(target / font.name), options)


def _write_favicon_ico(target: Path, colour: str) -> None:
    """A plain square in ``colour`` (the SVG favicon's background), drawn by Pillow."""
    from PIL import Image  # installed with matplotlib

    Image.new("RGBA", (32, 32), colour).save(target, format="ICO", sizes=[(32, 32)])


def _finish(app, exception) -> None:
    if exception or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    pages = sorted(outdir.rglob("*.html"))
    options = (outdir / OPTIONS).read_text(encoding="utf-8").strip()
    for page in pages:
        _rewrite_page(page, outdir, options)
    used = _used_icons(pages)
    _subset_webfonts(outdir, _icon_codepoints(outdir, used))
    _trim_icon_rules(outdir, used)
    (outdir / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    _write_favicon_ico(outdir / "favicon.ico", app.config.favicon_ico_colour)


def declare_settings(app) -> None:
    """The settings of ``_config.yml`` this extension reads (also declared by ``speed`` when the
    extension is off, so that they stay valid settings)."""
    # the favicon.ico for pages without an icon link: a square of the SVG favicon's background
    app.add_config_value("favicon_ico_colour", "#ffffff", "html")


def setup(app):
    require("lean_pages")
    declare_settings(app)
    app.connect("config-inited", _set_default_mode)
    app.add_js_file(None, body=RESOLVE_AUTO_THEME, priority=1)
    app.connect("html-page-context", _lean_context, priority=900)
    app.connect("build-finished", _finish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

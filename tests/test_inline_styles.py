"""book/_ext/inline_styles.py on a small site: a page gets its stylesheets inline, in order,
``@import`` resolved, ``url()`` relative to the page (small fonts inline), and only rules the
site can use."""

import re
from pathlib import Path
from types import SimpleNamespace

import inline_styles  # book/_ext, on sys.path via conftest


def site(root: Path) -> Path:
    static = root / "_static"
    (static / "styles").mkdir(parents=True)
    (static / "fonts").mkdir()
    (static / "fonts" / "icons.woff2").write_bytes(b"font")  # small: inlined
    (static / "fonts" / "text.woff2").write_bytes(
        bytes(inline_styles.INLINE_FONT_BYTES + 1)
    )
    (static / "base.css").write_text(".used-in-page { margin: 0 }\n")
    (static / "styles" / "theme.css").write_text(
        '@import "../base.css";\n'
        '@font-face { font-family: icons; src: url("../fonts/icons.woff2") }\n'
        "@font-face { font-family: text; src: url(../fonts/text.woff2) }\n"
        ".used-in-page > .never-anywhere, .used-in-page:hover { color: red }\n"
        ".never-anywhere { color: blue }\n"
        "@media (min-width: 60em) { .added-by-script { display: none } .gone { top: 0 } }\n"
        "html[data-theme=dark] .used-in-page::before { content: 'x' }\n"
    )
    (static / "late.css").write_text("p { line-height: 1.5 }\n")
    (static / "tool.js").write_text('el.classList.add("added-by-script");\n')
    (root / "book").mkdir()
    (root / "book" / "page.html").write_text(
        '<html><head>\n<link href="../_static/styles/theme.css?digest=1" rel="stylesheet" />\n'
        '<link rel="stylesheet" type="text/css" href="../_static/late.css?v=2" />\n'
        '</head><body><p class="used-in-page">text</p></body></html>\n'
    )
    return root


def test_a_page_carries_its_stylesheets_cut_to_what_the_site_uses(tmp_path):
    root = site(tmp_path)
    inline_styles._finish(
        SimpleNamespace(outdir=str(root), builder=SimpleNamespace(format="html")), None
    )
    page = (root / "book" / "page.html").read_text()
    assert "<link" not in page
    [style] = re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL)
    kept = [
        ".used-in-page{",
        "icons",
        "text.woff2",
        ".used-in-page:hover{",
        ".added-by-script{",
        "html[data-theme=dark] .used-in-page::before{",
        "p{",
    ]
    positions = [style.index(rule) for rule in kept]
    assert positions == sorted(positions), "the rules keep their order, @import first"
    assert 'url("../_static/fonts/text.woff2")' in style, "url() relative to the page"
    assert 'url("data:font/woff2;base64,Zm9udA==")' in style, "a small font inline"
    assert "never-anywhere" not in style and ".gone" not in style
    assert (root / "_static" / "late.css").is_file(), "the stylesheet files stay"

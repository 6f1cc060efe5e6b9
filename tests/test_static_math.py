"""The build-time math renderer (book/_ext/static_math.py), without Sphinx or a browser."""

import subprocess
import sys
from pathlib import Path

import pytest
from docutils import nodes

import static_math


def test_formula_becomes_svg_with_hidden_mathml():
    out = static_math.render(r"\frac{\partial L}{\partial z_i} = p_i - y_i", True)
    assert out.startswith("<mjx-container") and "<svg" in out
    assert (
        "<mjx-assistive-mml" in out and "<mfrac>" in out
    )  # what a screen reader reads


def test_environments_and_macros_the_book_uses():
    for source in [
        r"\begin{aligned} a &= b \\ c &= d \end{aligned}",
        r"f(x) = \begin{cases} 1 & x > 0 \\ 0 & \text{otherwise} \end{cases}",
        r"\operatorname{softmax}(\mathbf z) \odot \tilde{\ell} \oslash \mathbb{R}",
    ]:
        assert 'data-mml-node="merror"' not in static_math.render(source, True)


def test_bad_tex_is_an_error_naming_the_formula():
    with pytest.raises(static_math.MathError, match="Missing close brace"):
        static_math.render(r"\frac{a", False)
    with pytest.raises(static_math.MathError, match="Undefined control sequence"):
        static_math.render(r"\misspelt x", False)


def test_non_string_input_is_refused():
    with pytest.raises(TypeError, match="TeX source as str, got int"):
        static_math.render(3, False)


def test_display_source_matches_sphinx_mathjax():
    """Blank-line parts are aligned and multi-line parts split, as sphinx.ext.mathjax does."""
    block = nodes.math_block(
        "a = b\n\nc = d \\\\ e = f", "a = b\n\nc = d \\\\ e = f", nowrap=False
    )
    assert static_math._display_source(block) == (
        r"\begin{aligned}a = b\\\begin{split}c = d \\ e = f\end{split}\end{aligned}"
    )
    raw = nodes.math_block("", r"\begin{align}x\end{align}", nowrap=True)
    assert static_math._display_source(raw) == r"\begin{align}x\end{align}"


def test_stylesheet_has_the_svg_rules():
    css = static_math.stylesheet()
    assert 'mjx-container[jax="SVG"]' in css and "mjx-assistive-mml" in css


def test_glyphs_are_sent_once_per_page():
    """Every outline moves into one hidden <svg>; each formula's <use> still finds its glyph."""
    import re

    one, two = static_math.render("a + b", False), static_math.render("a + c", True)
    page = static_math.share_glyphs(f"<p>{one}</p><p>{two}</p><p>{one}</p>")
    ids = re.findall(r'<path id="([^"]+)"', page)
    uses = set(re.findall(r'xlink:href="#([^"]+)"', page))
    assert page.startswith('<svg class="mjx-glyphs"') and page.count("<defs>") == 1
    assert len(ids) == len(set(ids)) and uses <= set(ids)
    assert sorted(ids) == sorted(
        {"MJX-TEX-I-1D44E", "MJX-TEX-I-1D44F", "MJX-TEX-I-1D450", "MJX-TEX-N-2B"}
    )
    assert static_math.share_glyphs("<p>no math</p>") == "<p>no math</p>"


def test_a_process_that_rendered_math_exits():
    """V8 is closed at exit while Python still runs its thread (Python 3.13 otherwise hangs
    in MiniRacer's __del__, and a build never ends)."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(static_math.__file__).parent)!r}); "
        "import static_math; print(len(static_math.render('x^2', False)) > 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout == "True\n", done.stderr

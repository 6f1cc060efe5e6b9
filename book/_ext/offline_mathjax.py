"""Serve MathJax 3 from the built site instead of a CDN, so the book reads offline.

The files come from the ``django-static-mathjax`` wheel (a plain copy of MathJax 3); only
what the CHTML renderer of TeX needs is copied into ``_static/mathjax/``.
"""

import shutil
from pathlib import Path

NEEDED = ["tex-mml-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions"]


def _mathjax_source() -> Path:
    import mathjax  # the django-static-mathjax distribution

    return Path(mathjax.__file__).parent / "static" / "mathjax"


def _set_path(app, config) -> None:
    config.mathjax_path = "mathjax/tex-mml-chtml.js"  # relative to _static/


def _copy(app, exception) -> None:
    if exception or app.builder.format != "html":
        return
    source, target = _mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for item in NEEDED:
        src, dst = source / "es5" / item, target / item
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dst)
    shutil.copyfile(source / "LICENSE", target / "LICENSE")


def setup(app):
    app.connect("config-inited", _set_path)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

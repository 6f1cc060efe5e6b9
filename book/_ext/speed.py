"""One switch for the extensions that make the book fast, none of which a correct book needs.

``static_math`` typesets the equations during the build, ``lean_pages`` sends each page only
what it uses, ``inline_styles`` puts each page's stylesheets in its head, and
``parallel_execution`` executes the chapters side by side. With ``fast_book: false`` in
``_config.yml`` (``sphinx: config:``) none of them is loaded: MathJax typesets in the browser
(from its CDN), pages load the theme's default assets, and myst-nb executes the chapters one
after another. Everything the book says and checks stays the same, so an upgrade that breaks one
of them can ship with the switch off while that extension is fixed.
"""

import importlib

from _versions import require

FAST = ("static_math", "lean_pages", "inline_styles", "parallel_execution")


def setup(app):
    require("speed")
    app.add_config_value("fast_book", True, "env")
    # Config._overrides and Config._raw_config: the values given to the build (Jupyter Book passes
    # _config.yml's as overrides) and conf.py's, before extensions declare theirs (Sphinx 7.4).
    # The switch decides which extensions load, so it is read before they would be set up.
    given = {**app.config._raw_config, **app.config._overrides}
    if str(given.get("fast_book", True)).lower() not in ("false", "0", "no"):
        for name in FAST:
            app.setup_extension(name)
    else:  # their settings in _config.yml stay valid, unused
        for name in FAST:
            declare = getattr(importlib.import_module(name), "declare_settings", None)
            if declare:
                declare(app)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

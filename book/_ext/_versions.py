"""The one table of the library releases the book's extensions were written for.

The extensions in ``book/_ext`` reach into parts of Sphinx, myst-nb, jupyter-cache, the theme
and MathJax that are not promised to stay the same between releases. A silent change there could
make a build show stale pages, skip a chapter or break a page; a clear error at ``setup()`` turns
an upgrade into a decision. Each extension calls ``require("<its name>")`` first thing in
``setup``, which checks every distribution :data:`USES` lists for it against :data:`WRITTEN_FOR`.
``tests/test_versions.py`` holds this table against the pins of ``requirements.txt``.
"""

from importlib.metadata import PackageNotFoundError, version

from packaging.specifiers import SpecifierSet
from sphinx.errors import ExtensionError

#: Distribution -> the releases it was checked with, and what the extensions use of it.
WRITTEN_FOR = {
    # env-before-read-docs / env-get-outdated as parallel_execution and package_fingerprint use
    # them; sphinx.builders.html._assets._JavaScript (lean_pages); Config._raw_config (speed)
    "sphinx": "~=7.4.0",
    # myst_nb.core.read.create_nb_reader and env.mystnb_config (parallel_execution,
    # package_fingerprint); NbMetadataCollector.get_exec_data (provenance); the execution
    # table's nodes (pdf_edition)
    "myst-nb": "~=1.4.0",
    # jupyter_cache.executors.utils.single_nb_execution and the cache records (parallel_execution,
    # package_fingerprint)
    "jupyter-cache": "~=1.0.0",
    # a manager keeps a provisioner set before start; what LocalProvisioner uses of its process
    # (warm_kernels, through parallel_execution)
    "jupyter-client": "~=8.10.0",
    # template markup, asset names, webfonts (lean_pages) and the stylesheets' layout
    # (inline_styles)
    "pydata-sphinx-theme": "~=0.17.0",
    "sphinx-book-theme": "~=1.3.0",
    # the thebe configuration script it emits (lean_pages drops it)
    "sphinx-thebe": "~=0.3.0",
    # its nodes and sphinx_exercise_registry (pdf_edition)
    "sphinx-exercise": "~=1.0",
    # MathJax 3.2.2's internal module layout, MathJax._ (static_math)
    "django-static-mathjax": "==3.2.2.1",
}

#: Extension -> the distributions whose internals it touches.
USES = {
    "parallel_execution": ("sphinx", "myst-nb", "jupyter-cache", "jupyter-client"),
    "package_fingerprint": ("sphinx", "myst-nb", "jupyter-cache"),
    "provenance": ("myst-nb",),
    "lean_pages": (
        "sphinx",
        "pydata-sphinx-theme",
        "sphinx-book-theme",
        "sphinx-thebe",
    ),
    "inline_styles": ("pydata-sphinx-theme", "sphinx-book-theme"),
    "pdf_edition": ("sphinx-exercise",),
    "static_math": ("django-static-mathjax",),
    "speed": ("sphinx",),
}


def require(extension: str) -> None:
    """Raise ``ExtensionError`` unless every distribution ``extension`` uses is installed in a
    release :data:`WRITTEN_FOR` allows."""
    wrong = []
    for name in USES[extension]:
        try:
            found = version(name)
        except PackageNotFoundError:
            found = "not installed"
        if found == "not installed" or found not in SpecifierSet(WRITTEN_FOR[name]):
            wrong.append(f"{name} {WRITTEN_FOR[name]} (found {found})")
    if wrong:
        raise ExtensionError(
            f"book/_ext/{extension}.py was written for {', '.join(wrong)}. "
            "It relies on parts of these libraries that may change between releases: check "
            "it against the installed ones, then update book/_ext/_versions.py; or install "
            "the locked versions with `pip install -r requirements.txt`."
        )

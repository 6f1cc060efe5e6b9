"""Stop a build at once when a library an extension reaches into is not the release it was written for.

The extensions in ``book/_ext`` use parts of myst-nb, jupyter-cache and Sphinx that are not
promised to stay the same between releases. A silent change there could make a build show stale
pages or skip a chapter; a clear error at ``setup()`` turns an upgrade into a decision. Call
``require`` first thing in ``setup``::

    require("parallel_execution", {"myst-nb": "~=1.4.0", "jupyter-cache": "~=1.0.0"})
"""

from importlib.metadata import PackageNotFoundError, version

from packaging.specifiers import SpecifierSet
from sphinx.errors import ExtensionError


def require(extension: str, written_for: dict[str, str]) -> None:
    """Raise ``ExtensionError`` unless every distribution's installed version is in its range.

    ``written_for`` maps a distribution name to a version specifier, e.g. ``"~=1.4.0"``.
    """
    wrong = []
    for name, specifier in written_for.items():
        try:
            found = version(name)
        except PackageNotFoundError:
            found = "not installed"
        if found == "not installed" or found not in SpecifierSet(specifier):
            wrong.append(f"{name} {specifier} (found {found})")
    if wrong:
        raise ExtensionError(
            f"book/_ext/{extension}.py was written for {', '.join(wrong)}. "
            "It relies on parts of these libraries that may change between releases: check "
            "it against the installed ones, then update the versions in its setup(); or "
            "install the locked versions with `pip install -r requirements.txt`."
        )

"""Re-execute the chapters that import the book's package whenever the package changes.

myst-nb's execution cache keys a notebook on the text of its code cells, so editing a function
in ``code/`` (or upgrading torch) would leave every cached chapter showing outputs of the old
code. This extension fingerprints the package's sources together with the versions of Python,
torch, torchvision, numpy and matplotlib. When the fingerprint differs from the one stored beside the cache,
it drops the cached executions of the chapters that import the package and asks Sphinx to read
them again. The new fingerprint is stored only when a build finishes without error: a build
interrupted half-way (Ctrl-C) leaves the old one, so the next build re-executes those chapters
again instead of keeping pages of the old code. Prose-only edits keep hitting the cache.
"""

import hashlib
import platform
import re
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from jupyter_cache import get_cache
from sphinx.util import logging

from _versions import require

logger = logging.getLogger(__name__)
STAMP = "package-fingerprint.txt"
#: distributions whose release changes what the chapters compute
DISTRIBUTIONS = ("torch", "torchvision", "numpy", "matplotlib")


def fingerprint(paths: Iterable, distributions: Iterable[str] = DISTRIBUTIONS) -> str:
    """sha256 over every .py file under ``paths`` (relative path and bytes), the Python version
    and the installed version of each of ``distributions``."""
    digest = hashlib.sha256(f"python {platform.python_version()}\0".encode())
    for name in distributions:
        try:
            found = version(name)
        except PackageNotFoundError:
            found = "not installed"
        digest.update(f"{name} {found}\0".encode())
    for root in map(Path, paths):
        for file in sorted(root.rglob("*.py")):
            relative = str(file.relative_to(root)).encode()
            digest.update(relative + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _stamp(env) -> Path:
    # env.mystnb_config: myst-nb's parsed configuration, an attribute it sets on the environment
    return Path(env.mystnb_config.execution_cache_path) / STAMP


def _outdated(app, env, added, changed, removed):
    srcdir = Path(app.srcdir)
    current = fingerprint(srcdir / p for p in app.config.package_fingerprint_paths)
    app.package_fingerprint = current  # recorded by _record once the build succeeds
    stamp = _stamp(env)
    if stamp.is_file() and stamp.read_text() == current:
        return []
    package = app.config.package_fingerprint_package
    imports = re.compile(rf"^\s*(from|import)\s+{package}\b", re.MULTILINE)
    dependents = {
        name
        for name in env.found_docs
        if imports.search(Path(env.doc2path(name)).read_text(encoding="utf-8"))
    }
    if stamp.parent.exists():
        cache = get_cache(str(stamp.parent))
        paths = {str(Path(env.doc2path(name)).resolve()) for name in dependents}
        for record in cache.list_cache_records():
            if str(Path(record.uri).resolve()) in paths:
                cache.remove_cache(record.pk)
    stale = sorted(dependents - set(added) - set(changed))
    if stale:
        logger.info(
            f"[package_fingerprint] package changed: re-executing {', '.join(stale)}"
        )
    return stale


def _record(app, exception):
    """Store the fingerprint the chapters were executed with, if the build succeeded."""
    current = getattr(app, "package_fingerprint", None)
    if exception is not None or current is None:
        return
    stamp = _stamp(app.env)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(current)


def setup(app):
    require("package_fingerprint")
    app.add_config_value("package_fingerprint_paths", ["code"], "env")
    app.add_config_value(
        "package_fingerprint_package", "", "env"
    )  # _config.yml names it
    app.connect("env-get-outdated", _outdated)
    app.connect("build-finished", _record)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

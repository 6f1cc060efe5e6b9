"""Re-execute the chapters that import the book's package whenever the package changes.

myst-nb's execution cache keys a notebook on the text of its code cells, so editing a function
in ``code/`` would leave every cached chapter showing outputs of the old code. This extension
fingerprints the package's sources; when the fingerprint differs from the one stored beside the
cache, it drops the cached executions of the chapters that mention the package and asks Sphinx
to read them again. Prose-only edits keep hitting the cache.
"""

import hashlib
import re
from pathlib import Path

from jupyter_cache import get_cache
from sphinx.util import logging

logger = logging.getLogger(__name__)
STAMP = "package-fingerprint.txt"


def fingerprint(paths) -> str:
    """sha256 over the relative path and bytes of every .py file under ``paths``."""
    digest = hashlib.sha256()
    for root in map(Path, paths):
        for file in sorted(root.rglob("*.py")):
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _outdated(app, env, added, changed, removed):
    srcdir = Path(app.srcdir)
    cache_dir = Path(env.mystnb_config.execution_cache_path)
    current = fingerprint(srcdir / p for p in app.config.package_fingerprint_paths)
    stamp = cache_dir / STAMP
    if stamp.is_file() and stamp.read_text() == current:
        return []
    imports = re.compile(rf"^\s*(from|import)\s+{app.config.package_fingerprint_package}\b", re.MULTILINE)
    dependents = {name for name in env.found_docs
                  if imports.search(Path(env.doc2path(name)).read_text(encoding="utf-8"))}
    if cache_dir.exists():
        cache = get_cache(str(cache_dir))
        paths = {str(Path(env.doc2path(name)).resolve()) for name in dependents}
        for record in cache.list_cache_records():
            if str(Path(record.uri).resolve()) in paths:
                cache.remove_cache(record.pk)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(current)
    stale = sorted(dependents - set(added) - set(changed))
    if stale:
        logger.info(f"[package_fingerprint] package changed: re-executing {', '.join(stale)}")
    return stale


def setup(app):
    app.add_config_value("package_fingerprint_paths", ["code"], "env")
    app.add_config_value("package_fingerprint_package", "mnistbook", "env")
    app.connect("env-get-outdated", _outdated)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Execute the chapters that miss the execution cache side by side, one per CPU core.

myst-nb executes notebooks one after another while Sphinx reads them, and a chapter that
trains keeps one core busy while the others wait. Before Sphinx reads, this extension finds the
chapters whose code cells have no entry in the cache, executes them concurrently the way
myst-nb's cache mode does (same working folder, timeout and error policy, the same jupyter-cache
call) and stores the results; myst-nb then finds them in the cache. A chapter that fails here
(a cell raises or times out, its kernel dies, anything else goes wrong) is logged with the cause
and not stored, so myst-nb executes it once more and reports the error as it always does.
"""

import os
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from pathlib import Path, PurePosixPath
from tempfile import TemporaryDirectory

from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

# jupyter-cache's own executors and myst-nb's cache mode both run a notebook with this function;
# it is not part of jupyter-cache's documented API.
from jupyter_cache.executors.utils import single_nb_execution
from jupyter_client.manager import AsyncKernelManager

# myst-nb's reader for a source file (MyST markdown or .ipynb); internal to myst-nb.
from myst_nb.core.read import create_nb_reader
from sphinx.util import logging
from traitlets import default

from _versions import require
from chapters import in_execution_order
from warm_kernels import with_warm_kernels

logger = logging.getLogger(__name__)


class SocketFileKernelManager(AsyncKernelManager):
    """A kernel reached through Unix socket files instead of TCP ports.

    Each kernel's ports are picked free by its manager and bound by the kernel a moment
    later; kernels started at the same moment by other processes (a second execution, the
    tests) can pick the same port in between ("Address already in use"). Socket files under
    a name of their own cannot collide."""

    @default("transport")
    def _socket_files(self):
        return "ipc"

    @default("ip")
    def _unique_prefix(self):  # the socket files are <prefix>-<n>; removed at shutdown
        return os.path.join(tempfile.gettempdir(), f"kernel-{uuid.uuid4().hex[:12]}")


# socket files where the platform has them (not on Windows), else TCP
KERNEL_MANAGER = AsyncKernelManager if os.name == "nt" else SocketFileKernelManager


def kernel_manager(preload: list[str]) -> type:
    """The kernel manager for the chapters: kernels forked from a process that has imported
    the modules ``preload`` (``warm_kernels``), if any."""
    return with_warm_kernels(KERNEL_MANAGER, preload) if preload else KERNEL_MANAGER


def _uncached(env, docnames, cache):
    """(docname, path, notebook) per document to read that is a notebook missing from the cache."""
    # env.mystnb_config and env.myst_config: myst-nb's parsed configuration, set on the env
    nb_config = env.mystnb_config
    for name in docnames:
        path = Path(env.doc2path(name))
        text = path.read_text(encoding="utf-8")
        reader = create_nb_reader(str(path), env.myst_config, nb_config, text)
        excluded = any(
            PurePosixPath(path.as_posix()).match(pattern)
            for pattern in nb_config.execution_excludepatterns
        )
        if reader is None or excluded:
            continue
        notebook = reader.read(text)
        try:
            cache.match_cache_notebook(notebook)
        except KeyError:
            yield name, path, notebook


def _cause(error: BaseException) -> str:
    """One line naming what went wrong: the cell's exception, a timeout, a dead kernel, …"""
    # nbclient's CellExecutionError: the cell's exception
    if getattr(error, "ename", None):
        return f"{error.ename}: {error.evalue}"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _execute(path: Path, notebook, nb_config, kernel_manager):
    """Run every cell of ``notebook`` in a fresh kernel, as myst-nb's cache mode would.

    Returns (seconds, None) on success, (None, cause) on failure; never raises an Exception.
    """
    workdir = (
        TemporaryDirectory()
        if nb_config.execution_in_temp
        else nullcontext(str(path.parent))
    )
    try:
        with workdir as cwd:
            result = single_nb_execution(
                notebook,
                cwd=os.path.abspath(cwd),
                allow_errors=nb_config.execution_allow_errors,
                timeout=nb_config.execution_timeout,
                meta_override=True,
                kernel_manager_class=kernel_manager,
            )
    except Exception as error:  # noqa: BLE001 - e.g. DeadKernelError, which jupyter-cache lets through
        return None, _cause(error)
    if result.err is not None:
        return None, _cause(result.err)
    return result.time, None


def _execute_uncached(app, env, docnames):
    nb_config = env.mystnb_config
    workers = app.config.parallel_execution_workers or os.cpu_count() or 1
    if nb_config.execution_mode != "cache" or workers < 2:
        return
    cache = get_cache(nb_config.execution_cache_path or ".jupyter_cache")
    uncached = {
        name: (name, path, notebook)
        for name, path, notebook in _uncached(env, docnames, cache)
    }
    pending = [
        uncached[name]
        for name in in_execution_order(
            list(uncached), app.config.parallel_execution_first
        )
    ]
    if len(pending) < 2:
        return
    logger.info(
        f"[parallel_execution] executing {len(pending)} chapters, {workers} at a time"
    )
    manager = kernel_manager(app.config.parallel_execution_preload)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {  # each chapter is (name, path, notebook)
            pool.submit(_execute, *chapter[1:], nb_config, manager): chapter
            for chapter in pending
        }
        for future in as_completed(futures):
            name, path, notebook = futures[future]
            seconds, cause = future.result()
            if cause is not None:
                logger.info(
                    f"[parallel_execution] {name} failed ({cause}); "
                    "it runs again to report the error"
                )
                continue
            cache.cache_notebook_bundle(
                CacheBundleIn(notebook, str(path), data={"execution_seconds": seconds}),
                check_validity=False,
                overwrite=True,
            )
            logger.info(f"[parallel_execution] {name} executed in {seconds:.0f} s")
    finally:  # on Ctrl-C, start no more chapters
        pool.shutdown(wait=True, cancel_futures=True)


def declare_settings(app) -> None:
    """The settings of ``_config.yml`` this extension reads (also declared by ``speed`` when the
    extension is off, so that they stay valid settings)."""
    # None: one per CPU core
    app.add_config_value("parallel_execution_workers", None, "env")
    # longest chapters, to start first
    app.add_config_value("parallel_execution_first", [], "env")
    # modules every chapter imports, loaded once for all kernels (warm_kernels)
    app.add_config_value("parallel_execution_preload", [], "env")


def setup(app):
    require("parallel_execution")
    declare_settings(app)
    app.connect("env-before-read-docs", _execute_uncached)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

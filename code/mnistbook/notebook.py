"""Helpers for the chapters themselves: glue numbers into the prose, time a call."""

import time


def glue(name: str, value, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the book's prose (myst-nb).

    Outside a book build, where myst-nb is not installed (Colab), it does nothing.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


def timed(function, *args, **kwargs):
    """(function(*args, **kwargs), seconds it took by the wall clock)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start

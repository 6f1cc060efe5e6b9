"""Helpers for the chapters themselves: glue numbers into the prose, time a call."""

import time


def glue(name: str, value, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the book's prose (myst-nb).

    Where myst-nb is not installed (Colab), print ``name = value`` instead: the Colab
    notebooks show the glued numbers of the prose by name, so this is where the reader
    finds their values."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if getattr(value, "ndim", None) == 0:  # a 0-dim tensor or a numpy scalar
            value = value.item()
        shown = f"{value:.6g}" if isinstance(value, float) else value
        print(f"{name} = {shown}")
        return
    myst_glue(name, value, display=display)


def timed(function, *args, **kwargs):
    """(function(*args, **kwargs), seconds it took by the wall clock)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start

"""The workbook's checks: call one on your code and read what it says.

Each ``check_*`` runs the learner's function or class on random and edge-case inputs, compares
with torch in float64 (values, autograd, finite differences), and returns a
:class:`~mnistbook.workbook.result.Result`: ``.passed``, and a ``.message`` that names the
quantity that is off, by how much, and the likely mistake with a link to the book. A check never
raises because of the code it checks. Every check is registered in
:data:`~mnistbook.workbook.registry.EXERCISES` with the name it checks and the page that asks
for it; this module exports them all.
"""

# each module registers its checks as it is imported, so they come in page order  # isort: skip
from . import loss, layers, network, optimizer, train, engine  # noqa: F401  # isort: skip
from .links import book_url as book_url
from .registry import EXERCISES
from .result import Result as Result
from .result import summary as summary


def __getattr__(name: str):
    """Every registered check, as ``mnistbook.workbook.check_linear``; ``__all__`` lists them,
    checks registered after this module was imported included."""
    if name == "__all__":
        return ["EXERCISES", "Result", "book_url", "summary", *EXERCISES]
    if name in EXERCISES:
        return EXERCISES[name].check
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *EXERCISES])

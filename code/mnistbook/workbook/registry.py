"""Every workbook check in one table: the name it checks, the page that asks for it, and its
contract.

A check is registered by decorating it with :func:`exercise`; the package's ``__all__``, the
workbook pages, the instructors' table, the grader, the tests and the benchmark all read
:data:`EXERCISES`, so adding a check touches the check and its page, nothing else.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .probe import checker
from .result import Result

#: Seconds a quick check may take: far above what any correct answer needs (milliseconds),
#: short enough that an endless loop is reported, not waited for.
QUICK = 20.0


@dataclass(frozen=True)
class Exercise:
    check: Callable[..., Result]  # e.g. check_linear; its first argument is the subject
    subject: str  # the name the learner defines, e.g. "Linear"
    page: str  # the workbook page that asks for it: book/<page>.md
    # what the check requires of the subject, shown on the page
    contract: tuple[str, ...]
    solution: str  # the book's answer, "module:name", shown folded on the page

    @property
    def name(self) -> str:
        return self.check.__name__

    @property
    def time_limit(self) -> float:
        """Seconds the whole check may take."""
        return self.check.time_limit


#: Check name -> Exercise, in the order the pages come in the book.
EXERCISES: dict[str, Exercise] = {}


def exercise(
    page: str,
    subject: str,
    contract: tuple[str, ...] = (),
    time_limit: float = QUICK,
    solution: str = "",
):
    """Register the decorated function as the check of ``subject`` on ``page``, whose answer in
    the book is ``solution`` ("mnistbook.scratch:Linear").

    The function raises :class:`~mnistbook.workbook.probe.Failure` or returns its pass
    message; the registered check returns a :class:`~mnistbook.workbook.result.Result`. The
    check never imports the solution: it judges the learner's code by independent references."""

    def register(function) -> Callable[..., Result]:
        check = checker(function, subject, time_limit)
        EXERCISES[check.__name__] = Exercise(
            check, subject, page, tuple(contract), solution
        )
        return check

    return register

"""Running the learner's code safely: every way it can go wrong becomes a :class:`Failure`.

A check calls the learner's code only through :func:`call`, looks at what came back with
:func:`tensor_like` and compares it with :func:`compare`, which names a known :class:`Mistake`
when the learner's numbers are the ones that mistake produces; :func:`checker` turns the outcome
into a :class:`~mnistbook.workbook.result.Result`, so a check never raises because of the code it
checks, and never runs longer than its time limit.
"""

import contextlib
import functools
import signal
import threading
import traceback
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import gradcheck
from .links import SECTIONS, Section
from .result import Result


@dataclass(frozen=True)
class Mistake:
    """A known mistake: what it is and how to put it right, and where the book explains it."""

    explanation: str
    sections: tuple[Section, ...] = ()


class Failure(Exception):
    """The learner's code did something wrong: the message, the sections that explain it, and
    the known mistake it is, if it is one."""

    def __init__(
        self, message: str, *sections: Section | str, mistake: Mistake | None = None
    ):
        super().__init__(message)
        self.message, self.mistake = message, mistake
        found = tuple(SECTIONS[s] if isinstance(s, str) else s for s in sections)
        self.sections = tuple(
            dict.fromkeys(found + (mistake.sections if mistake else ()))
        )


class NotImplementedYet(Exception):
    """The learner's code still raises NotImplementedError."""


#: What the pages' skeletons raise; a NotImplementedError with another message comes from
#: something the learner's code called (torch refuses some operations so), and is reported
#: as the error it is.
STUB_MESSAGES = ("your code here", "")


class TimedOut(BaseException):
    """The time limit of a check ran out (a BaseException, so that no ``except Exception`` of the
    learner's code swallows it)."""


def checker(function, subject: str = "", time_limit: float | None = None):
    """Make a check out of ``function``: its Failure (or a pass message) becomes a Result.

    ``subject`` names what the learner passes (a class if capitalised, else a function), so a
    call with nothing, an instance or a computed value is answered with a message; the whole
    check must finish within ``time_limit`` seconds (where a timer can be set, see
    :func:`deadline`)."""
    name = function.__name__

    @functools.wraps(function)
    def check(*args, **kwargs) -> Result:
        wrongly = _called_wrongly(name, subject, args)
        if wrongly:
            return Result(name, False, wrongly)
        time_limit = check.time_limit
        try:
            with deadline(time_limit):
                message = function(*args, **kwargs)
        except NotImplementedYet as pending:
            return Result(name, False, str(pending), pending=True)
        except Failure as failure:
            return Result(
                name, False, failure.message, failure.sections, mistake=failure.mistake
            )
        except TimedOut:
            return Result(
                name,
                False,
                f"the check did not finish within {time_limit:g} s: your code "
                "runs, but far slower than it needs to",
            )
        # the learner's object lacks a method or attribute
        except AttributeError as error:
            return Result(
                name,
                False,
                f"the check needs something your code does not have: {error}",
            )
        return Result(name, True, message)

    check.time_limit = (
        time_limit  # seconds; an attribute, so that a caller may change it
    )
    return check


def _called_wrongly(name: str, subject: str, args: tuple) -> str:
    """A message when a check is handed nothing, an instance for a class or a value for a
    function."""
    if not subject:
        return ""
    if not args:
        return f"{name} needs your {subject}: call {name}({subject})"
    given, is_class = args[0], subject[0].isupper()
    if is_class and not isinstance(given, type):
        what = (
            "an instance of it" if type(given).__name__ == subject else _plainly(given)
        )
        return (
            f"{name} takes the class {subject} itself, not {what}: call {name}({subject}), "
            f"without parentheses after {subject}; the check creates its own instances"
        )
    if not is_class and not callable(given):
        return (
            f"{name} takes the function {subject} itself, not {_plainly(given)} (its result?): "
            f"call {name}({subject}), without parentheses after {subject}"
        )
    return ""


def _plainly(value) -> str:
    return "None" if value is None else describe(value)


_limit = 0.0  # the running check's time limit, for call()'s message


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Raise :class:`TimedOut` in the main thread once ``seconds`` have passed.

    Uses SIGALRM, as a Jupyter kernel, Colab and a plain interpreter run cells in the main
    thread; elsewhere (a thread, Windows) there is no limit. A pure-Python loop is interrupted at
    once, a long call into torch when it returns."""
    if (
        not seconds
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def expire(signum, frame):
        raise TimedOut

    global _limit
    previous = signal.signal(signal.SIGALRM, expire)
    _limit = seconds
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


#: Added to every seed the checks draw their inputs with; the grader's ``--seed`` changes it, so
#: that answers hard-coded for the pages' inputs fail.
_seed_offset = 0


def generator(seed: int) -> torch.Generator:
    """The random stream ``seed`` of the checks' inputs (moved by :func:`inputs_seed`)."""
    return torch.Generator().manual_seed(_seed_offset + seed)


def seed_offset() -> int:
    return _seed_offset


@contextlib.contextmanager
def inputs_seed(offset: int):
    """Draw the checks' random inputs from other seeds while the block runs."""
    global _seed_offset
    previous, _seed_offset = _seed_offset, offset
    try:
        yield
    finally:
        _seed_offset = previous


def _learner_frame(error: BaseException) -> str:
    """' (line N of your cell: `code`)' for the innermost frame outside torch and this package."""
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not _in(f, "torch") and not _in(f, "mnistbook")
    ]
    if not frames:
        return ""
    frame = frames[-1]
    name = frame.filename.rsplit("/", 1)[-1]
    # ipykernel cells
    where = (
        "your cell"
        if name.removesuffix(".py").isdigit() or name.startswith("<")
        else name
    )
    return f" (line {frame.lineno} of {where}: `{frame.line}`)" if frame.line else ""


def _in(frame: traceback.FrameSummary, package: str) -> bool:
    return f"/{package}/" in frame.filename.replace("\\", "/")


def snapshot(args) -> list:
    return [
        a.detach().clone()
        if isinstance(a, Tensor)
        else {k: v.detach().clone() for k, v in a.items() if isinstance(v, Tensor)}
        if isinstance(a, dict)
        else None
        for a in args
    ]


def changed(arg, old) -> bool:
    """Whether ``arg`` differs from its :func:`snapshot` ``old``."""
    if isinstance(old, dict):
        return any(changed(arg.get(k), v) for k, v in old.items())
    return not isinstance(arg, Tensor) or (
        not torch.equal(arg.detach(), old) and not _same_nans(arg, old)
    )


def call(what: str, function, *args, may_change: tuple[int, ...] = (), **kwargs):
    """``function(*args, **kwargs)``; any exception from it, or a tensor argument changed in
    place (other than those at the positions ``may_change``), is a Failure."""
    before = snapshot(args)
    try:
        value = function(*args, **kwargs)
    except NotImplementedError as error:
        if str(error) not in STUB_MESSAGES:
            raise Failure(
                f"{what} raised NotImplementedError: {error}{_learner_frame(error)}"
            ) from None
        raise NotImplementedYet(
            f"{what} raises NotImplementedError — replace its body with your code"
        ) from None
    except TimedOut as timed_out:
        raise Failure(
            f"your function did not return within {_limit:g} s: {what} was still running "
            f"(an endless loop?){_learner_frame(timed_out)}"
        ) from None
    # anything the learner's code raises is reported, never re-raised
    except Exception as error:
        mistake = known_error(error)
        raise Failure(
            f"{what} raised {type(error).__name__}: {error}{_learner_frame(error)}"
            + (f"\n{mistake.explanation}" if mistake else ""),
            mistake=mistake,
        ) from None
    for index, (arg, old) in enumerate(zip(args, before)):
        if index not in may_change and old is not None and changed(arg, old):
            raise Failure(
                f"{what} changed its argument {index + 1} in place; it must leave that input "
                "as it is (compute into a new tensor, or clone first)"
            )
    return value


def _same_nans(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(
        torch.equal(torch.nan_to_num(a.detach()), torch.nan_to_num(b))
    )


SHADOWED_LOSS = Mistake(
    "That is torch's Tensor.backward, not your loss's: was the loss object replaced by its own value "
    "(`loss = loss(...)`, as in the original notebook)? Name the object `criterion`.",
    (SECTIONS["bug-shadowed-loss"],),
)
SHAPES_OF_LINEAR = Mistake(
    "With W of shape (out, in), a linear layer computes Z = X Wᵀ + b, and its backward ∂L/∂X = G W, "
    "∂L/∂W = Gᵀ X: the shapes in the message say which product was formed another way.",
    (SECTIONS["linear"],),
)


NO_DTYPE_ARGUMENT = Mistake(
    "The check creates your object in float64, for exact comparisons, through the arguments "
    "dtype= and device= of the page's skeleton: keep them in __init__'s signature "
    "(dtype=torch.float32, device=None) and create the tensors with them."
)


def known_error(error: BaseException) -> Mistake | None:
    """The known mistake an exception is the symptom of, if one is certain from it alone."""
    if isinstance(error, TypeError) and "unexpected keyword argument 'dtype'" in str(
        error
    ):
        return NO_DTYPE_ARGUMENT
    frames = traceback.extract_tb(error.__traceback__)
    # Reads torch's stack: Tensor.backward is a function named `backward` inside the torch package
    # (torch/_tensor.py in torch 2.x, the version this was written for); the shadowed-loss test in
    # tests/test_workbook.py fails if a later torch changes that.
    if any(_in(f, "torch") and f.name == "backward" for f in frames):
        return SHADOWED_LOSS
    if "shapes cannot be multiplied" in str(error):
        return SHAPES_OF_LINEAR
    return None


def describe(value) -> str:
    if value is None:
        return "None (is a `return` missing?)"
    if isinstance(value, Tensor):
        return f"a {dtype_name(value.dtype)} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def tensor_like(
    value,
    what: str,
    shape: tuple,
    dtype: torch.dtype | None = None,
    transposed_hint: str | None = None,
) -> Tensor:
    """``value`` is a floating-point tensor of ``shape`` (and ``dtype``), or a Failure."""
    if not isinstance(value, Tensor):
        raise Failure(
            f"{what} should be a tensor of shape {shape}, got {describe(value)}"
        )
    if not value.is_floating_point():
        raise Failure(
            f"{what} should be a floating-point tensor, got {describe(value)}"
        )
    if tuple(value.shape) != tuple(shape):
        if transposed_hint and tuple(value.shape) == tuple(reversed(shape)):
            raise Failure(
                f"{what} has shape {tuple(value.shape)}, the shape of its transpose; "
                f"expected {tuple(shape)}. {transposed_hint}",
                "linear",
            )
        raise Failure(
            f"{what} should have shape {tuple(shape)}, got shape {tuple(value.shape)}"
        )
    if dtype is not None and value.dtype != dtype:
        raise Failure(
            f"{what} should keep the dtype of the input, {dtype_name(dtype)}, "
            f"got {dtype_name(value.dtype)}: compute it from the inputs (torch keeps their dtype), "
            "and create new tensors with dtype=... of the input"
        )
    return value


def finite(value: Tensor, what: str, *sections: Section | str, why: str = "") -> None:
    if not torch.isfinite(value).all():
        bad = (~torch.isfinite(value)).sum().item()
        entries = "entry" if bad == 1 else "entries"
        raise Failure(
            f"{what} has {bad} non-finite {entries} (inf or nan){why}", *sections
        )


TOLERANCE = 1e-6


def error(got: Tensor, expected: Tensor) -> float:
    """Relative error ‖got − expected‖ / max(‖got‖, ‖expected‖), as the book's gradient checks."""
    return gradcheck.relative_error(got, expected)


def matches(got: Tensor, prediction: Tensor, tolerance: float = TOLERANCE) -> bool:
    return (
        isinstance(prediction, Tensor)
        and tuple(got.shape) == tuple(prediction.shape)
        and error(got, prediction) < tolerance
    )


def compare(
    got: Tensor,
    expected: Tensor,
    what: str,
    mistakes: dict | None = None,
    tolerance: float = TOLERANCE,
    on: str = "",
) -> None:
    """Failure unless got ≈ expected; names the known mistake whose prediction ``got`` matches.

    ``mistakes`` maps each :class:`Mistake` to the value it would produce on the same inputs.
    When the numbers fit several, the message says so and lists them all.
    """
    e = error(got, expected)
    if e < tolerance:
        return
    where = f" {on}" if on else ""
    fitting = [
        m
        for m, prediction in (mistakes or {}).items()
        if matches(got, prediction, max(tolerance, 1e-4))
    ]
    if len(fitting) == 1:
        raise Failure(
            f"{what} is off{where} (relative error {e:.2g}): {fitting[0].explanation}",
            mistake=fitting[0],
        )
    if fitting:
        candidates = "\n".join(f"  – {m.explanation}" for m in fitting)
        raise Failure(
            f"{what} is off{where} (relative error {e:.2g}), and on these inputs the numbers "
            f"fit each of these mistakes:\n{candidates}",
            *[s for m in fitting for s in m.sections],
        )
    largest = (got - expected).abs().argmax().item()
    index = (
        tuple(int(i) for i in torch.unravel_index(torch.tensor(largest), got.shape))
        if got.dim()
        else ()
    )
    at = f" at index {index}" if index else ""
    raise Failure(
        f"{what} is off{where}: relative error {e:.2g} (should be below {tolerance:g}); "
        f"the largest difference{at}: got {got.reshape(-1)[largest].item():.6g}, "
        f"expected {expected.reshape(-1)[largest].item():.6g}"
    )

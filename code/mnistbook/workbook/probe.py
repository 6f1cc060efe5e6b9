"""Running the learner's code safely: every way it can go wrong becomes a :class:`Failure`.

A check calls the learner's code only through :func:`call`, looks at what came back with
:func:`tensor_like` and compares it with :func:`compare`; :func:`checker` turns the
outcome into a :class:`~mnistbook.workbook.result.Result`, so a check never raises because of
the code it checks.
"""

import functools
import traceback

import torch
from torch import Tensor

from .. import gradcheck
from .links import SECTIONS
from .result import Result


class Failure(Exception):
    """The learner's code did something wrong; ``hints`` name the sections that explain it."""

    def __init__(self, message: str, *hints: str):
        super().__init__(message)
        self.message, self.hints = message, hints


class NotImplementedYet(Exception):
    """The learner's code still raises NotImplementedError."""


def checker(function):
    """Make a check out of ``function``: its Failure (or a pass message) becomes a Result."""
    name = function.__name__

    @functools.wraps(function)
    def check(*args, **kwargs) -> Result:
        try:
            message = function(*args, **kwargs)
        except NotImplementedYet as pending:
            return Result(name, False, str(pending), pending=True)
        except Failure as failure:
            return Result(name, False, failure.message, tuple(SECTIONS[h] for h in failure.hints))
        except AttributeError as error:  # the learner's object lacks a method or attribute
            return Result(name, False, f"the check needs something your code does not have: {error}")
        return Result(name, True, message)

    return check


def _learner_frame(error: BaseException) -> str:
    """' (at line N of your cell: `code`)' for the innermost frame outside torch and this package."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not _in(f, "torch") and not _in(f, "mnistbook/workbook")]
    if not frames:
        return ""
    frame = frames[-1]
    name = frame.filename.rsplit("/", 1)[-1]
    where = "your cell" if name.removesuffix(".py").isdigit() or name.startswith("<") else name  # ipykernel cells
    return f" (line {frame.lineno} of {where}: `{frame.line}`)" if frame.line else ""


def _in(frame: traceback.FrameSummary, package: str) -> bool:
    return f"/{package}/" in frame.filename.replace("\\", "/")


def snapshot(args) -> list:
    return [a.detach().clone() if isinstance(a, Tensor)
            else {k: v.detach().clone() for k, v in a.items() if isinstance(v, Tensor)} if isinstance(a, dict)
            else None for a in args]


def _changed(arg, old) -> bool:
    if isinstance(old, dict):
        return any(_changed(arg.get(k), v) for k, v in old.items())
    return not isinstance(arg, Tensor) or (not torch.equal(arg.detach(), old) and not _same_nans(arg, old))


def call(what: str, function, *args):
    """``function(*args)``; any exception from it, or a changed tensor argument, is a Failure."""
    before = snapshot(args)
    try:
        value = function(*args)
    except NotImplementedError:
        raise NotImplementedYet(f"{what} raises NotImplementedError — replace its body with your code") from None
    except Exception as error:  # anything the learner's code raises is reported, never re-raised
        explanation, hints = known_error(error)
        raise Failure(f"{what} raised {type(error).__name__}: {error}{_learner_frame(error)}"
                      + (f"\n{explanation}" if explanation else ""), *hints) from None
    for index, (arg, old) in enumerate(zip(args, before)):
        if old is not None and _changed(arg, old):
            raise Failure(f"{what} changed its argument {index + 1} in place; it must leave its inputs "
                          "as they are (compute into a new tensor, or clone first)")
    return value


def _same_nans(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(torch.equal(torch.nan_to_num(a.detach()), torch.nan_to_num(b)))


def known_error(error: BaseException) -> tuple[str, tuple[str, ...]]:
    """(explanation, section keys) for an exception whose symptom is a known mistake, else ("", ())."""
    text = str(error)
    frames = traceback.extract_tb(error.__traceback__)
    # Reads torch's stack: Tensor.backward is a function named `backward` inside the torch package
    # (torch/_tensor.py in torch 2.x, the version this was written for); the shadowed-loss test in
    # tests/test_workbook.py fails if a later torch changes that.
    if any(_in(f, "torch") and f.name == "backward" for f in frames):
        return ("That is torch's Tensor.backward, not your loss's: was the loss object replaced by its own "
                "value (`loss = loss(...)`, as in the original notebook)? Name the object `criterion`.",
                ("bug-shadowed-loss",))
    if ("120" in text and "256" in text) or "shared by two layers" in text:
        return ("The first hidden layer's gradient (width 120) met the second layer's mask (width 256): is one "
                "ReLU shared by two layers? Each layer needs its own ReLU, which remembers its own input.",
                ("bug-shared-relu",))
    if "grad_out must have shape" in text:
        return ("A layer's backward was handed something other than the gradient of its output: each backward "
                "takes the gradient the layer above returned.", ("bug-activations", "network"))
    if "shapes cannot be multiplied" in text:
        return ("With W of shape (out, in), the layer computes Z = X Wᵀ + b, and backward ∂L/∂X = G W, "
                "∂L/∂W = Gᵀ X.", ("linear",))
    return "", ()


def describe(value) -> str:
    if value is None:
        return "None (is a `return` missing?)"
    if isinstance(value, Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def tensor_like(value, what: str, shape: tuple, dtype: torch.dtype | None = None,
                transposed_hint: str | None = None) -> Tensor:
    """``value`` is a finite floating-point tensor of ``shape`` (and ``dtype``), or a Failure."""
    if not isinstance(value, Tensor):
        raise Failure(f"{what} should be a tensor of shape {shape}, got {describe(value)}")
    if not value.is_floating_point():
        raise Failure(f"{what} should be a floating-point tensor, got {describe(value)}")
    if tuple(value.shape) != tuple(shape):
        if transposed_hint and tuple(value.shape) == tuple(reversed(shape)):
            raise Failure(f"{what} has shape {tuple(value.shape)}, the shape of its transpose; "
                          f"expected {tuple(shape)}. {transposed_hint}", "linear")
        raise Failure(f"{what} should have shape {tuple(shape)}, got shape {tuple(value.shape)}")
    if dtype is not None and value.dtype != dtype:
        raise Failure(f"{what} should keep the dtype of the input, {str(dtype).removeprefix('torch.')}, "
                      f"got {str(value.dtype).removeprefix('torch.')}")
    return value


def finite(value: Tensor, what: str, *hints: str, why: str = "") -> None:
    if not torch.isfinite(value).all():
        bad = (~torch.isfinite(value)).sum().item()
        entries = "entry" if bad == 1 else "entries"
        raise Failure(f"{what} has {bad} non-finite {entries} (inf or nan){why}", *hints)


TOLERANCE = 1e-6


def error(got: Tensor, expected: Tensor) -> float:
    """Relative error ‖got − expected‖ / max(‖got‖, ‖expected‖), as the book's gradient checks."""
    return gradcheck.relative_error(got, expected)


def matches(got: Tensor, prediction: Tensor, tolerance: float = TOLERANCE) -> bool:
    return tuple(got.shape) == tuple(prediction.shape) and error(got, prediction) < tolerance


def compare(got: Tensor, expected: Tensor, what: str, mistakes: dict | None = None,
            tolerance: float = TOLERANCE, on: str = "") -> None:
    """Failure unless got ≈ expected; names the known mistake whose prediction ``got`` matches.

    ``mistakes`` maps an explanation to (the value that mistake would produce, section keys).
    """
    e = error(got, expected)
    if e < tolerance:
        return
    where = f" {on}" if on else ""
    for explanation, (prediction, hints) in (mistakes or {}).items():
        if matches(got, prediction, max(tolerance, 1e-4)):
            raise Failure(f"{what} is off{where} (relative error {e:.2g}): {explanation}", *hints)
    largest = (got - expected).abs().argmax().item()
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(largest), got.shape)) if got.dim() else ()
    at = f" at index {index}" if index else ""
    raise Failure(f"{what} is off{where}: relative error {e:.2g} (should be below {tolerance:g}); "
                  f"the largest difference{at}: got {got.reshape(-1)[largest].item():.6g}, "
                  f"expected {expected.reshape(-1)[largest].item():.6g}")

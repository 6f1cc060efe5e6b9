"""Checks of the loss: its value, its gradient, and the softmax Jacobian behind it.

References are torch's own functions in float64 and autograd, never the book's code, so a
learner's function is compared with an independent computation.
"""

import torch
import torch.nn.functional as TF
from torch import Tensor

from . import links
from .probe import Failure, Mistake, call, compare, finite, generator, tensor_like
from .registry import exercise


def _cases(seed: int) -> dict[str, tuple[Tensor, Tensor]]:
    """Logits and labels: a batch of 6, a batch of 1, and a batch of 3 with logits of ±1000."""
    g = generator(seed)
    return {
        "on a batch of 6": (
            3 * torch.randn(6, 10, generator=g, dtype=torch.float64),
            torch.randint(0, 10, (6,), generator=g),
        ),
        "on a batch of 1": (
            3 * torch.randn(1, 10, generator=g, dtype=torch.float64),
            torch.randint(0, 10, (1,), generator=g),
        ),
        # the labels' probabilities: 1, e⁻¹/(1 + e⁻¹) and e⁻²⁰⁰⁰, which underflows to 0
        "on logits of ±1000": (
            torch.tensor(
                [
                    [1000.0, -1000.0, 0.0],
                    [-1000.0, 1000.0, 999.0],
                    [1000.0, 0.0, -1000.0],
                ],
                dtype=torch.float64,
            ),
            torch.tensor([0, 2, 2]),
        ),
    }


def _name(fn) -> str:
    """How to call ``fn`` in a message: its name, ``Class()`` for a callable object, else fn."""
    name = getattr(fn, "__name__", None) or f"{type(fn).__name__}()"
    return "fn" if name == "<lambda>" else name


OVERFLOW = (
    "but was finite on ordinary logits: exp(z) overflows once z passes about 709 (88.7 in "
    "float32). Subtract the largest logit first, and take log-softmax as z − z_max − "
    "log Σ exp(z − z_max) rather than the log of a probability that may be 0"
)
LOG_OF_ZERO = (
    "but was finite on ordinary logits, and stays infinite on the same logits shifted down by their "
    "maximum, where no exp can overflow: it is the log of a probability that rounded to 0 (here "
    "one label's probability is e⁻²⁰⁰⁰). Take log-softmax as z − z_max − log Σ exp(z − z_max) "
    "instead of the log of the softmax"
)


def _why(fn, z: Tensor, y: Tensor, value, case: str) -> str:
    """Why a result stopped being finite on the logits of ±1000: tried again on the same logits
    shifted down by their maximum (the same softmax, no exp above 1), it is finite if an exp
    overflowed, and not if a probability rounded to 0 was logged."""
    if "1000" not in case or not isinstance(value, Tensor) or value.isfinite().all():
        return ""
    shifted = call(
        f"{_name(fn)}(logits − max, labels)", fn, z - z.amax(1, keepdim=True), y
    )
    recovered = isinstance(shifted, Tensor) and bool(shifted.isfinite().all())
    return " " + (OVERFLOW if recovered else LOG_OF_ZERO)


INPUTS_TRIED = (
    "Tried on a batch of 6 and a batch of 1 with 10 classes (random logits), and on a "
    "batch of 3 with 3 classes and logits of ±1000."
)

SUM = Mistake(
    "it is B times the mean — the sum over the batch. The loss is the mean, −(1/B) Σ log p_y",
    (links.MEAN, links.BUG_NOT_DIVIDED),
)
LABELS_AS_COLUMNS = Mistake(
    "log p[:, y] picks, in every row, the columns of all B labels (a B × B block), and the mean "
    "runs over all of them: pick one entry per row, log p[torch.arange(B), y] or "
    "log_p.gather(1, y[:, None])",
    (links.MEAN,),
)
LOSS_SIGN = Mistake(
    "its sign is flipped: the loss is −log p_y, which is never negative", (links.MEAN,)
)
LOGITS_AS_LOG_PROBABILITIES = Mistake(
    "it equals −mean(z_y): the logits were used as log-probabilities, as torch's NLLLoss expects them; "
    "take the log-softmax of the logits first",
    (links.MEAN,),
)
LOSS_SOFTMAX_OVER_BATCH = Mistake(
    "the softmax runs over the batch (dim 0): each row of the logits is one example's, so normalise "
    "along the classes, dim=1 (or dim=-1)",
    (links.MEAN,),
)
LOSS_OVER_CLASSES = Mistake(
    "it is the mean over all B·K entries of Y ⊙ log P, K times too small: average over the B examples "
    "only (sum over the classes, then divide by B)",
    (links.MEAN,),
)

NOT_DIVIDED = Mistake(
    "it is B times too large — the gradient of the summed loss. For the mean loss it is "
    "(P − Y)/B: the original notebook's p − y lacks the 1/B",
    (links.BUG_NOT_DIVIDED, links.MEAN),
)
GRADIENT_SIGN = Mistake(
    "its sign is flipped: it is (P − Y)/B, not (Y − P)/B", (links.LOSS_GRADIENT,)
)
NO_ONE_HOT = Mistake(
    "the one-hot labels are missing: it is (P − Y)/B, not P/B", (links.LOSS_GRADIENT,)
)
NO_CHAIN = Mistake(
    "it is −Y/(B p_y) at the label only: the chain through the softmax is missing; multiplied "
    "by the softmax Jacobian it becomes (P − Y)/B",
    (links.LOSS_GRADIENT,),
)
GRADIENT_SOFTMAX_OVER_BATCH = Mistake(
    "P is a softmax over the batch (dim 0): each row of the logits is one example's, so normalise "
    "along the classes, dim=1 (or dim=-1)",
    (links.LOSS_GRADIENT,),
)
DIVIDED_BY_K = Mistake(
    "it is (P − Y)/K: divided by the number of classes K, not by the batch size B",
    (links.MEAN, links.LOSS_GRADIENT),
)
DIVIDED_BY_BK = Mistake(
    "it is (P − Y)/(B K), the gradient of a mean over all B·K entries: divide by the "
    "batch size B only",
    (links.MEAN, links.LOSS_GRADIENT),
)

NO_OUTER_TERM = Mistake(
    "the −p_i p_j term is missing: ∂p_i/∂z_j = p_i (δ_ij − p_j)", (links.JACOBIAN,)
)
NO_DIAGONAL_TERM = Mistake(
    "the diagonal term δ_ij p_i is missing: ∂p_i/∂z_j = p_i (δ_ij − p_j)",
    (links.JACOBIAN,),
)
JACOBIAN_SIGN = Mistake("its sign is flipped: it is diag(p) − p pᵀ", (links.JACOBIAN,))
DIAGONAL_ONLY = Mistake(
    "only the diagonal p_i (1 − p_i) is there; off the diagonal ∂p_i/∂z_j = −p_i p_j",
    (links.JACOBIAN,),
)
DOT_FOR_OUTER = Mistake(
    "it is diag(p) minus one number, pᵀp, in every entry: for a vector p, `p @ p` is the dot product "
    "Σ p_i², a scalar. The outer product p pᵀ is torch.outer(p, p), or p[:, None] * p[None, :]",
    (links.JACOBIAN,),
)
SQUARES_FOR_OUTER = Mistake(
    "it is diag(p) minus p ⊙ p, the squares p_j² repeated down every row: for a vector p, `p * p` is "
    "elementwise. The outer product p pᵀ, with entries p_i p_j, is torch.outer(p, p), or "
    "p[:, None] * p[None, :]",
    (links.JACOBIAN,),
)
NO_DELTA = Mistake(
    "it is p_i (1 − p_j) for every pair: the δ_ij is essential — off the diagonal "
    "∂p_i/∂z_j = −p_i p_j",
    (links.JACOBIAN,),
)


@exercise(
    "workbook-loss",
    "cross_entropy",
    solution="mnistbook.functional:cross_entropy",
    contract=(
        "`cross_entropy(logits, labels)` takes logits, a float tensor (B, K) with one row per example, and "
        "labels, an int64 tensor (B,) of class indices in [0, K).",
        "It returns the mean cross-entropy of the batch, a 0-dim tensor of the logits' dtype (float64 in, "
        "float64 out), finite for logits as large as ±1000.",
        "It leaves logits and labels unchanged.",
        INPUTS_TRIED,
    ),
)
def check_cross_entropy(fn) -> str:
    """fn(logits (B, K), labels (B,) int64) → the mean cross-entropy, a 0-dim tensor."""
    for case, (z, y) in _cases(0).items():
        B, K = z.shape
        got = call(f"{_name(fn)}(logits, labels)", fn, z, y)
        if isinstance(got, Tensor) and tuple(got.shape) == (B,) and B > 1:
            raise Failure(
                f"the loss has shape ({B},) {case}: one loss per example. The loss of a "
                "mini-batch is their mean, a single number (0-dim)",
                links.MEAN,
            )
        tensor_like(got, f"the loss {case}", (), z.dtype)
        finite(
            got,
            f"the loss {case}",
            links.OVERFLOW,
            links.BUG_UNSHIFTED,
            why=_why(fn, z, y, got, case),
        )
        expected = TF.cross_entropy(z, y)
        compare(
            got,
            expected,
            "the loss",
            on=case,
            mistakes={
                SUM: B * expected,
                LOSS_SIGN: -expected,
                LOGITS_AS_LOG_PROBABILITIES: -z.gather(1, y[:, None]).mean(),
                LOSS_SOFTMAX_OVER_BATCH: -torch.log_softmax(z, 0)
                .gather(1, y[:, None])
                .mean(),
                LOSS_OVER_CLASSES: expected / K,
                LABELS_AS_COLUMNS: -torch.log_softmax(z, 1)[:, y].mean(),
            },
        )
    return "the mean cross-entropy matches torch, for batches of 6 and 1 and for logits of ±1000"


@exercise(
    "workbook-loss",
    "cross_entropy_grad",
    solution="mnistbook.functional:cross_entropy_grad",
    contract=(
        "`cross_entropy_grad(logits, labels)` takes the same arguments as `cross_entropy`.",
        "It returns ∂L/∂logits of the mean loss, a tensor (B, K) of the logits' dtype, finite for logits "
        "as large as ±1000.",
        "It leaves logits and labels unchanged.",
        INPUTS_TRIED,
    ),
)
def check_cross_entropy_grad(fn) -> str:
    """fn(logits (B, K), labels (B,) int64) → ∂L/∂logits of the mean cross-entropy, (B, K)."""
    for case, (z, y) in _cases(1).items():
        B, K = z.shape
        got = call(f"{_name(fn)}(logits, labels)", fn, z, y)
        tensor_like(
            got,
            f"the gradient {case}",
            (B, K),
            z.dtype,
            transposed_hint="A row per example, a column per class, as the logits.",
        )
        finite(
            got,
            f"the gradient {case}",
            links.OVERFLOW,
            links.BUG_UNSHIFTED,
            why=_why(fn, z, y, got, case),
        )
        leaf = z.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(TF.cross_entropy(leaf, y), leaf)
        p, onehot = torch.softmax(z, 1), TF.one_hot(y, K).double()
        compare(
            got,
            expected,
            "the gradient",
            on=case,
            mistakes={
                NOT_DIVIDED: B * expected,
                GRADIENT_SIGN: -expected,
                NO_ONE_HOT: p / B,
                NO_CHAIN: -onehot / (B * p.clamp_min(1e-300)),
                GRADIENT_SOFTMAX_OVER_BATCH: (torch.softmax(z, 0) - onehot) / B,
                DIVIDED_BY_K: B * expected / K,
                DIVIDED_BY_BK: expected / K,
            },
        )
    return "∂L/∂logits matches autograd, for batches of 6 and 1 and for logits of ±1000"


@exercise(
    "workbook-softmax-jacobian",
    "softmax_jacobian",
    solution="mnistbook.functional:softmax_jacobian",
    contract=(
        "`softmax_jacobian(p)` takes the probabilities of one example, a float tensor (K,).",
        "It returns the Jacobian J[i, j] = ∂p_i/∂z_j, a tensor (K, K) of p's dtype. (Handling a batch "
        "(B, K) as well is welcome, not required.)",
        "It leaves p unchanged.",
        "Tried on 10 random probabilities, on p = (1, 0, 0) from logits (1000, 0, −1000), and on a single "
        "class, p = (1,).",
    ),
)
def check_softmax_jacobian(fn) -> str:
    """fn(p (K,)) → the Jacobian ∂p_i/∂z_j, (K, K)."""
    g = generator(2)
    cases = {
        "for 10 classes": 2 * torch.randn(10, generator=g, dtype=torch.float64),
        "for p = (1, 0, 0), from logits (1000, 0, −1000)": torch.tensor(
            [1000.0, 0, -1000], dtype=torch.float64
        ),
        "for a single class": torch.zeros(1, dtype=torch.float64),
    }
    for case, z in cases.items():
        p = torch.softmax(z, 0)
        K = len(p)
        got = call(f"{_name(fn)}(p)", fn, p)
        tensor_like(got, f"the Jacobian {case}", (K, K), p.dtype)
        finite(got, f"the Jacobian {case}")
        expected = torch.autograd.functional.jacobian(lambda v: torch.softmax(v, 0), z)
        compare(
            got,
            expected,
            "the Jacobian",
            on=case,
            mistakes={
                NO_OUTER_TERM: torch.diag(p),
                NO_DIAGONAL_TERM: -torch.outer(p, p),
                JACOBIAN_SIGN: torch.outer(p, p) - torch.diag(p),
                DIAGONAL_ONLY: torch.diag(p * (1 - p)),
                DOT_FOR_OUTER: torch.diag(p) - p @ p,
                SQUARES_FOR_OUTER: torch.diag(p) - p * p,
                NO_DELTA: p[:, None] * (1 - p[None, :]),
            },
        )
    return "diag(p) − p pᵀ, as autograd finds it, for 10 classes, a certain prediction and one class"

"""Checks of the loss: its value, its gradient, and the softmax Jacobian behind it.

References are torch's own functions in float64 and autograd, never the book's code, so a
learner's function is compared with an independent computation.
"""

import torch
import torch.nn.functional as TF
from torch import Tensor

from .probe import Failure, call, checker, compare, finite, tensor_like


def _cases(seed: int = 0) -> dict[str, tuple[Tensor, Tensor]]:
    """Logits and labels: a batch of 6, a batch of 1, and a batch of 3 with logits of ±1000."""
    g = torch.Generator().manual_seed(seed)
    return {
        "on a batch of 6": (3 * torch.randn(6, 10, generator=g, dtype=torch.float64),
                            torch.randint(0, 10, (6,), generator=g)),
        "on a batch of 1": (3 * torch.randn(1, 10, generator=g, dtype=torch.float64),
                            torch.randint(0, 10, (1,), generator=g)),
        # the labels' probabilities: 1, e⁻¹/(1 + e⁻¹) and e⁻²⁰⁰⁰, which underflows to 0
        "on logits of ±1000": (torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0],
                                             [1000.0, 0.0, -1000.0]], dtype=torch.float64),
                               torch.tensor([0, 2, 2])),
    }


def _name(fn) -> str:
    """How to call ``fn`` in a message: its name, ``Class()`` for a callable object, else fn."""
    name = getattr(fn, "__name__", None) or f"{type(fn).__name__}()"
    return "fn" if name == "<lambda>" else name


OVERFLOW = ("but was finite on ordinary logits: exp(z) overflows once z passes about 709 (88.7 in "
            "float32). Subtract the largest logit first, and take log-softmax as z − m − log Σ exp(z − m) "
            "rather than the log of a probability that may be 0")


@checker
def check_cross_entropy(fn) -> str:
    """fn(logits (B, K), labels (B,) int64) → the mean cross-entropy, a 0-dim tensor."""
    for case, (z, y) in _cases().items():
        B = len(y)
        got = call(f"{_name(fn)}(logits, labels)", fn, z, y)
        if isinstance(got, Tensor) and tuple(got.shape) == (B,) and B > 1:
            raise Failure(f"the loss has shape ({B},) {case}: one loss per example. The loss of a "
                          "mini-batch is their mean, a single number (0-dim)", "mean")
        tensor_like(got, f"the loss {case}", (), z.dtype)
        finite(got, f"the loss {case}", "overflow", "bug-unshifted",
               why=" " + OVERFLOW if "1000" in case else "")
        expected = TF.cross_entropy(z, y)
        compare(got, expected, "the loss", on=case, mistakes={
            f"it is {B} times the mean — the sum over the batch. The loss is the mean, −(1/B) Σ log p_y":
                (B * expected, ("mean", "bug-not-divided")),
            "its sign is flipped: the loss is −log p_y, which is never negative": (-expected, ("mean",)),
            "it equals −mean(z_y): the logits were used as log-probabilities, as torch's NLLLoss "
            "expects them; take the log-softmax of the logits first":
                (-z.gather(1, y[:, None]).mean(), ("mean",)),
        })
    return "the mean cross-entropy matches torch, for batches of 6 and 1 and for logits of ±1000"


@checker
def check_cross_entropy_grad(fn) -> str:
    """fn(logits (B, K), labels (B,) int64) → ∂L/∂logits of the mean cross-entropy, (B, K)."""
    for case, (z, y) in _cases(1).items():
        B, K = z.shape
        got = call(f"{_name(fn)}(logits, labels)", fn, z, y)
        tensor_like(got, f"the gradient {case}", (B, K), z.dtype,
                    transposed_hint="A row per example, a column per class, as the logits.")
        finite(got, f"the gradient {case}", "overflow", "bug-unshifted",
               why=" " + OVERFLOW if "1000" in case else "")
        leaf = z.clone().requires_grad_(True)
        expected, = torch.autograd.grad(TF.cross_entropy(leaf, y), leaf)
        p, onehot = torch.softmax(z, 1), TF.one_hot(y, K).double()
        compare(got, expected, "the gradient", on=case, mistakes={
            f"it is {B} times too large — the gradient of the summed loss. For the mean loss it is "
            "(P − Y)/B: the original notebook's p − y lacks the 1/B": (B * expected, ("bug-not-divided", "mean")),
            "its sign is flipped: it is (P − Y)/B, not (Y − P)/B": (-expected, ("loss-gradient",)),
            "the one-hot labels are missing: it is (P − Y)/B, not P/B": (p / B, ("loss-gradient",)),
            "it is −Y/(B p_y) at the label only: the chain through the softmax is missing; multiplied "
            "by the softmax Jacobian it becomes (P − Y)/B": (-onehot / (B * p.clamp_min(1e-300)), ("loss-gradient",)),
        })
    return "∂L/∂logits matches autograd, for batches of 6 and 1 and for logits of ±1000"


@checker
def check_softmax_jacobian(fn) -> str:
    """fn(p (K,)) → the Jacobian ∂p_i/∂z_j, (K, K)."""
    g = torch.Generator().manual_seed(2)
    cases = {"for 10 classes": 2 * torch.randn(10, generator=g, dtype=torch.float64),
             "for p = (1, 0, 0), from logits (1000, 0, −1000)": torch.tensor([1000.0, 0, -1000], dtype=torch.float64),
             "for a single class": torch.zeros(1, dtype=torch.float64)}
    for case, z in cases.items():
        p = torch.softmax(z, 0)
        K = len(p)
        got = call(f"{_name(fn)}(p)", fn, p)
        tensor_like(got, f"the Jacobian {case}", (K, K), p.dtype)
        finite(got, f"the Jacobian {case}")
        expected = torch.autograd.functional.jacobian(lambda v: torch.softmax(v, 0), z)
        compare(got, expected, "the Jacobian", on=case, mistakes={
            "the −p_i p_j term is missing: ∂p_i/∂z_j = p_i (δ_ij − p_j)": (torch.diag(p), ("jacobian",)),
            "the diagonal term δ_ij p_i is missing: ∂p_i/∂z_j = p_i (δ_ij − p_j)": (-torch.outer(p, p), ("jacobian",)),
            "its sign is flipped: it is diag(p) − p pᵀ": (torch.outer(p, p) - torch.diag(p), ("jacobian",)),
            "only the diagonal p_i (1 − p_i) is there; off the diagonal ∂p_i/∂z_j = −p_i p_j":
                (torch.diag(p * (1 - p)), ("jacobian",)),
        })
    return "diag(p) − p pᵀ, as autograd finds it, for 10 classes, a certain prediction and one class"

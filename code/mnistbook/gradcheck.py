"""Gradient checking: compare hand-derived gradients with torch autograd and finite
differences.

Two independent references, both best run in float64:

* torch autograd through torch's own functions (``F.linear``, ``F.relu``,
  ``F.cross_entropy``);
* centred finite differences (f(θ + ε) − f(θ − ε)) / 2ε of *our* forward pass, whose
  error is O(ε²) instead of the O(ε) of a one-sided difference.

Each comparison is measured two ways: norm-wise, ‖a − b‖ / max(‖a‖, ‖b‖), and entry by
entry, the largest |a_i − b_i| / max(|a_i|, |b_i|, floor), where the floor is the smallest
magnitude the reference resolves. The verdict takes the worse of the two, so that a single
wrong entry cannot hide in a large tensor. Thresholds after CS231n: above 1e-2 the gradient
is wrong; below 1e-7 it is right; up to 1e-4 is acceptable near a ReLU kink. Finite
differences whose perturbation switches a ReLU on or off measure no derivative; where the
network's on/off pattern is known, those entries are left out and counted."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as TF
from torch import Tensor

GOOD, ACCEPTABLE, WRONG = 1e-7, 1e-4, 1e-2

#: Unit roundoff of float64, 2⁻⁵³: the relative error of one rounding.
ROUNDOFF = 2.0**-53

#: Roundings a forward or backward pass may accumulate before its error exceeds what the
#: resolutions below allow for: generous, so that correct code never reads as wrong.
ROUNDINGS = 100


def relative_error(a: Tensor, b: Tensor) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖) in float64; 0 when both are zero."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    scale = max(a.norm().item(), b.norm().item())
    return 0.0 if scale == 0 else (a - b).norm().item() / scale


def largest_entry_error(a: Tensor, b: Tensor, floor: float = 0.0) -> float:
    """max_i |a_i − b_i| / max(|a_i|, |b_i|, floor) in float64, skipping entries where
    that denominator is 0: the entry-wise ratio CS231n states its thresholds for.

    ``floor`` keeps entries that are tiny next to what the reference can resolve from
    reading as wrong. With floor 0 it bounds the norm-wise error: relative_error ≤ √2 · r,
    and ≤ r / (1 − r) for r < 1; the converse does not hold."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    scale = torch.maximum(a.abs(), b.abs()).clamp_min(floor)
    nonzero = scale > 0
    if not nonzero.any():
        return 0.0
    return ((a - b).abs()[nonzero] / scale[nonzero]).max().item()


def autograd_floor(reference: Tensor) -> float:
    """Below this magnitude an entry's agreement with autograd is judged on an absolute
    scale: both sides carry rounding errors of about ROUNDINGS · u · max|reference|."""
    return ROUNDINGS * ROUNDOFF * reference.detach().abs().max().item() / GOOD


def finite_difference_floor(value: float, eps: float) -> float:
    """Below this magnitude a centred difference cannot resolve a derivative to GOOD: each
    f(θ ± ε) carries rounding errors of about ROUNDINGS · u · |f|, divided by 2ε."""
    return ROUNDINGS * ROUNDOFF * max(abs(value), 1.0) / (2 * eps) / GOOD


def verdict(error: float) -> str:
    """The CS231n reading of a relative error."""
    if error < GOOD:
        return "good"
    if error < ACCEPTABLE:
        return "acceptable near kinks"
    return "suspicious" if error < WRONG else "WRONG"


def finite_differences(
    f: Callable[[], Tensor],
    tensor: Tensor,
    indices: Tensor,
    eps: float = 1e-5,
    pattern: Callable[[], Tensor] | None = None,
) -> Tensor:
    """Centred differences of the scalar f() with respect to the given flat entries of
    ``tensor``.

    ``tensor`` is perturbed in place, one entry at a time, and restored exactly.
    ``pattern()``, if given, returns the ReLUs' on/off pattern of the last f() call; an
    entry whose perturbation changes it straddles a kink, where the difference measures
    no derivative: its value is NaN."""
    flat = tensor.detach().view(-1)
    out = torch.empty(len(indices), dtype=torch.float64)
    if pattern is not None:
        f()
        unperturbed = pattern().clone()
    for k, i in enumerate(indices.tolist()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = f().item()
        crossed = pattern is not None and not torch.equal(pattern(), unperturbed)
        flat[i] = old - eps
        minus = f().item()
        crossed = (
            crossed or pattern is not None and not torch.equal(pattern(), unperturbed)
        )
        flat[i] = old
        out[k] = float("nan") if crossed else (plus - minus) / (2 * eps)
    return out


def autograd_gradients(
    f: Callable[..., Tensor], tensors: dict[str, Tensor]
) -> dict[str, Tensor]:
    """∂f/∂t for every named tensor, by torch autograd on detached copies."""
    leaves = {
        name: t.detach().clone().requires_grad_(True) for name, t in tensors.items()
    }
    grads = torch.autograd.grad(f(**leaves), list(leaves.values()))
    return dict(zip(leaves, grads))


@dataclass
class Check:
    """One tensor's gradient against both references, norm-wise and entry-wise."""

    name: str
    shape: tuple
    vs_autograd: float
    vs_finite_differences: float
    entrywise_autograd: float
    entrywise_finite_differences: float
    samples: int
    at_kinks: int = (
        0  # sampled entries left out: their perturbation crossed a ReLU kink
    )

    @property
    def worst(self) -> float:
        return max(
            self.vs_autograd,
            self.vs_finite_differences,
            self.entrywise_autograd,
            self.entrywise_finite_differences,
        )


def check_gradients(
    analytic: dict[str, Tensor],
    reference: Callable[..., Tensor],
    ours: Callable[[], Tensor],
    tensors: dict[str, Tensor],
    samples: int | None = 30,
    eps: float = 1e-5,
    seed: int = 0,
    pattern: Callable[[], Tensor] | None = None,
) -> list[Check]:
    """Compare ``analytic[name]`` = ∂f/∂tensors[name] with autograd and finite
    differences.

    ``reference(**tensors)`` computes the scalar with torch functions (for autograd);
    ``ours()`` computes it with our forward pass, reading ``tensors`` in place (for
    finite differences, on ``samples`` random entries per tensor, or all if None);
    ``pattern()`` the ReLUs' on/off pattern of the last ``ours()``, if there are ReLUs.
    """
    expected = autograd_gradients(reference, tensors)
    fd_floor = finite_difference_floor(ours().item(), eps)
    generator = torch.Generator().manual_seed(seed)
    checks = []
    for name, tensor in tensors.items():
        n = tensor.numel()
        index = (
            torch.arange(n)
            if samples is None or samples >= n
            else torch.randperm(n, generator=generator)[:samples]
        )
        numeric = finite_differences(ours, tensor, index, eps, pattern)
        measured = ~numeric.isnan()
        ours_at_index = (
            analytic[name].detach().reshape(-1)[index.to(tensor.device)].cpu()
        )
        checks.append(
            Check(
                name,
                tuple(tensor.shape),
                relative_error(analytic[name], expected[name]),
                relative_error(ours_at_index[measured], numeric[measured]),
                largest_entry_error(
                    analytic[name], expected[name], autograd_floor(expected[name])
                ),
                largest_entry_error(
                    ours_at_index[measured], numeric[measured], fd_floor
                ),
                len(index),
                int((~measured).sum()),
            )
        )
    return checks


def report(checks: list[Check]) -> str:
    """A table, one line per tensor: both errors against each reference, how many entries
    the finite differences sampled and how many of them straddled a kink (left out), and
    the CS231n verdict of the worst error."""
    lines = [
        f"{'tensor':8s} {'shape':>11s} {'vs autograd':>17s} {'vs finite diff.':>17s} "
        f"{'entries':>7s} {'kinks':>5s}  verdict",
        f"{'':8s} {'':>11s} {'norm':>8s} {'entry':>8s} {'norm':>8s} {'entry':>8s}",
    ]
    for c in checks:
        lines.append(
            f"{c.name:8s} {c.shape!s:>11s} {c.vs_autograd:8.1e} "
            f"{c.entrywise_autograd:8.1e} {c.vs_finite_differences:8.1e} "
            f"{c.entrywise_finite_differences:8.1e} {c.samples:7d} {c.at_kinks:5d}  "
            f"{verdict(c.worst)}"
        )
    return "\n".join(lines)


# ---- the same check for each piece of the scratch network ----------------------------


def check_linear(layer, x: Tensor, upstream: Tensor, **kw) -> list[Check]:
    """Linear.backward vs ∂⟨G, X Wᵀ + b⟩ for a fixed upstream gradient G."""
    layer.forward(x)
    dx, dW, db = layer.backward(upstream)
    return check_gradients(
        {"X": dx, "W": dW, "b": db},
        lambda X, W, b: (upstream * TF.linear(X, W, b)).sum(),
        lambda: (upstream * layer.forward(x)).sum(),
        {"X": x, "W": layer.W, "b": layer.b},
        **kw,
    )


def check_relu(relu, z: Tensor, upstream: Tensor, **kw) -> list[Check]:
    """ReLU.backward vs ∂⟨G, max(z, 0)⟩."""
    relu.forward(z)
    dz = relu.backward(upstream)
    return check_gradients(
        {"z": dz},
        lambda z: (upstream * TF.relu(z)).sum(),
        lambda: (upstream * relu.forward(z)).sum(),
        {"z": z},
        pattern=lambda: relu.h > 0,
        **kw,
    )


def check_loss(criterion, logits: Tensor, labels: Tensor, **kw) -> list[Check]:
    """CrossEntropyLoss.backward vs ∂ mean cross-entropy / ∂ logits."""
    grad = criterion.backward(logits, labels)
    return check_gradients(
        {"z": grad},
        lambda z: TF.cross_entropy(z, labels),
        lambda: criterion.forward(logits, labels),
        {"z": logits},
        **kw,
    )


def check_net(net, criterion, images: Tensor, labels: Tensor, **kw) -> list[Check]:
    """Every gradient in ``net.grads`` vs the loss of the whole network on a batch."""
    logits = net.forward(images)
    net.backward(criterion.backward(logits, labels))
    x = images.reshape(len(images), -1)

    def reference(**p):
        h = TF.relu(TF.linear(x, p["fc1.W"], p["fc1.b"]))
        h = TF.relu(TF.linear(h, p["fc2.W"], p["fc2.b"]))
        return TF.cross_entropy(TF.linear(h, p["fc3.W"], p["fc3.b"]), labels)

    return check_gradients(
        dict(net.grads),
        reference,
        lambda: criterion.forward(net.forward(images), labels),
        net.parameters,
        pattern=lambda: relu_pattern(net),
        **kw,
    )


def relu_pattern(net) -> Tensor:
    """Which hidden units were on (h > 0) in ``net``'s last forward pass, both layers."""
    return torch.cat([(net.relu1.h > 0).flatten(), (net.relu2.h > 0).flatten()])

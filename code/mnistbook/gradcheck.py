"""Gradient checking: compare hand-derived gradients with torch autograd and finite differences.

Two independent references, both best run in float64:

* torch autograd through torch's own functions (``F.linear``, ``F.relu``, ``F.cross_entropy``);
* centred finite differences (f(θ + ε) − f(θ − ε)) / 2ε of *our* forward pass, whose error is
  O(ε²) instead of the O(ε) of a one-sided difference.

The error measure is ‖a − b‖ / max(‖a‖, ‖b‖). Thresholds after CS231n: above 1e-2 the
gradient is wrong; below 1e-7 it is right; up to 1e-4 is acceptable where a ReLU kink lies
within ε of a pre-activation.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as TF
from torch import Tensor

GOOD, ACCEPTABLE, WRONG = 1e-7, 1e-4, 1e-2


def relative_error(a: Tensor, b: Tensor) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖) in float64; 0 when both are zero."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    scale = max(a.norm().item(), b.norm().item())
    return 0.0 if scale == 0 else (a - b).norm().item() / scale


def largest_entry_error(a: Tensor, b: Tensor) -> float:
    """max_i |a_i − b_i| / max(|a_i|, |b_i|) in float64, entries that are both zero skipped:
    the entry-wise ratio CS231n states its thresholds for. It bounds the norm-wise error:
    relative_error(a, b) ≤ √2 · largest_entry_error(a, b)."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    scale = torch.maximum(a.abs(), b.abs())
    nonzero = scale > 0
    return ((a - b).abs()[nonzero] / scale[nonzero]).max().item() if nonzero.any() else 0.0


def verdict(error: float) -> str:
    """The CS231n reading of a relative error."""
    if error < GOOD:
        return "good"
    if error < ACCEPTABLE:
        return "acceptable near kinks"
    return "suspicious" if error < WRONG else "WRONG"


def finite_differences(f: Callable[[], Tensor], tensor: Tensor, indices: Tensor,
                       eps: float = 1e-5) -> Tensor:
    """Centred differences of the scalar f() with respect to the given flat entries of ``tensor``.

    ``tensor`` is perturbed in place, one entry at a time, and restored exactly.
    """
    flat = tensor.detach().view(-1)
    out = torch.empty(len(indices), dtype=torch.float64)
    for k, i in enumerate(indices.tolist()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = f().item()
        flat[i] = old - eps
        minus = f().item()
        flat[i] = old
        out[k] = (plus - minus) / (2 * eps)
    return out


def autograd_gradients(f: Callable[..., Tensor], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """∂f/∂t for every named tensor, by torch autograd on detached copies."""
    leaves = {name: t.detach().clone().requires_grad_(True) for name, t in tensors.items()}
    grads = torch.autograd.grad(f(**leaves), list(leaves.values()))
    return dict(zip(leaves, grads))


@dataclass
class Check:
    """One tensor's gradient against both references."""
    name: str
    shape: tuple
    vs_autograd: float
    vs_finite_differences: float
    samples: int

    @property
    def worst(self) -> float:
        return max(self.vs_autograd, self.vs_finite_differences)


def check_gradients(analytic: dict[str, Tensor], reference: Callable[..., Tensor],
                    ours: Callable[[], Tensor], tensors: dict[str, Tensor],
                    samples: int | None = 30, eps: float = 1e-5, seed: int = 0) -> list[Check]:
    """Compare ``analytic[name]`` = ∂f/∂tensors[name] with autograd and finite differences.

    ``reference(**tensors)`` computes the scalar with torch functions (for autograd);
    ``ours()`` computes it with our forward pass, reading ``tensors`` in place (for
    finite differences, on ``samples`` random entries per tensor, or all if None).
    """
    expected = autograd_gradients(reference, tensors)
    generator = torch.Generator().manual_seed(seed)
    checks = []
    for name, tensor in tensors.items():
        n = tensor.numel()
        index = (torch.arange(n) if samples is None or samples >= n
                 else torch.randperm(n, generator=generator)[:samples])
        numeric = finite_differences(ours, tensor, index, eps)
        ours_at_index = analytic[name].detach().reshape(-1)[index.to(tensor.device)].cpu()
        checks.append(Check(name, tuple(tensor.shape), relative_error(analytic[name], expected[name]),
                            relative_error(ours_at_index, numeric), len(index)))
    return checks


def report(checks: list[Check]) -> str:
    """A small table, one line per tensor: both relative errors, how many entries the finite
    differences sampled, and the CS231n verdict of the worse error."""
    lines = [f"{'tensor':8s} {'shape':>12s} {'vs autograd':>12s} {'vs finite diff.':>16s} "
             f"{'entries':>8s}  verdict"]
    for c in checks:
        lines.append(f"{c.name:8s} {c.shape!s:>12s} {c.vs_autograd:12.1e} "
                     f"{c.vs_finite_differences:16.1e} {c.samples:8d}  {verdict(c.worst)}")
    return "\n".join(lines)


# ---- the same check for each piece of the scratch network --------------------------------

def check_linear(layer, x: Tensor, upstream: Tensor, **kw) -> list[Check]:
    """Linear.backward vs ∂⟨G, X Wᵀ + b⟩ for a fixed upstream gradient G."""
    layer.forward(x)
    dx, dW, db = layer.backward(upstream)
    return check_gradients(
        {"X": dx, "W": dW, "b": db},
        lambda X, W, b: (upstream * TF.linear(X, W, b)).sum(),
        lambda: (upstream * layer.forward(x)).sum(),
        {"X": x, "W": layer.W, "b": layer.b}, **kw)


def check_relu(relu, z: Tensor, upstream: Tensor, **kw) -> list[Check]:
    """ReLU.backward vs ∂⟨G, max(z, 0)⟩."""
    relu.forward(z)
    dz = relu.backward(upstream)
    return check_gradients({"z": dz}, lambda z: (upstream * TF.relu(z)).sum(),
                           lambda: (upstream * relu.forward(z)).sum(), {"z": z}, **kw)


def check_loss(criterion, logits: Tensor, labels: Tensor, **kw) -> list[Check]:
    """CrossEntropyLoss.backward vs ∂ mean cross-entropy / ∂ logits."""
    grad = criterion.backward(logits, labels)
    return check_gradients({"z": grad}, lambda z: TF.cross_entropy(z, labels),
                           lambda: criterion.forward(logits, labels), {"z": logits}, **kw)


def check_net(net, criterion, images: Tensor, labels: Tensor, **kw) -> list[Check]:
    """Every gradient in ``net.grads`` vs the loss of the whole network on a batch."""
    logits = net.forward(images)
    net.backward(criterion.backward(logits, labels))
    x = images.reshape(len(images), -1)

    def reference(**p):
        h = TF.relu(TF.linear(x, p["fc1.W"], p["fc1.b"]))
        h = TF.relu(TF.linear(h, p["fc2.W"], p["fc2.b"]))
        return TF.cross_entropy(TF.linear(h, p["fc3.W"], p["fc3.b"]), labels)

    return check_gradients(dict(net.grads), reference,
                           lambda: criterion.forward(net.forward(images), labels),
                           net.parameters, **kw)

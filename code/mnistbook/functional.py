"""The formulas derived in the book, written once and reused by the from-scratch
network.

Conventions: a batch is rows. Logits ``z`` are (B, K); labels are B integers in [0, K);
a Linear layer maps X (B, in) to Z = X Wᵀ + b with W (out, in). No autograd is used
here; the book checks every function against torch autograd and finite differences."""

import torch
from torch import Tensor


def logsumexp(z: Tensor) -> Tensor:
    """log Σ_k exp z_k over the last dimension (kept): shifted by the maximum so no exp
    overflows."""
    z_max = z.amax(dim=-1, keepdim=True)
    return z_max + torch.log(torch.exp(z - z_max).sum(dim=-1, keepdim=True))


def log_softmax(z: Tensor) -> Tensor:
    """log p = (z − z_max) − log Σ_k exp(z_k − z_max): finite for any finite logits.

    Written with z − z_max rather than z − logsumexp(z), which would add z_max back and
    then subtract it, losing the digits of log p to rounding when the logits are large."""
    shifted = z - z.amax(dim=-1, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))


def softmax(z: Tensor) -> Tensor:
    """p_i = exp(z_i − z_max) / Σ_k exp(z_k − z_max): the same value as without the
    shift, and no exp overflows."""
    e = torch.exp(z - z.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def softmax_jacobian(p: Tensor) -> Tensor:
    """∂p_i/∂z_j = p_i (δ_ij − p_j), i.e. diag(p) − p pᵀ; (K,) → (K, K), (B, K) → (B, K,
    K)."""
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


def one_hot(labels: Tensor, num_classes: int, dtype=torch.float32) -> Tensor:
    """Rows e_y: 1 in column y, 0 elsewhere."""
    y = torch.zeros(len(labels), num_classes, dtype=dtype, device=labels.device)
    return y.scatter_(1, labels.unsqueeze(1), 1.0)


def cross_entropy(z: Tensor, labels: Tensor) -> Tensor:
    """Mean negative log-likelihood −(1/B) Σ_n log p_{n, y_n}, a 0-dim tensor."""
    return -log_softmax(z).gather(1, labels.unsqueeze(1)).mean()


def cross_entropy_grad(z: Tensor, labels: Tensor) -> Tensor:
    """∂L/∂z for the mean loss: (P − Y) / B."""
    return (softmax(z) - one_hot(labels, z.shape[1], z.dtype)) / z.shape[0]


def linear(x: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """Z = X Wᵀ + b (b broadcast over rows), computed as ``torch.nn.Linear`` computes
    it."""
    return torch.addmm(b, x, W.T)


def linear_backward(
    x: Tensor, W: Tensor, grad_y: Tensor, input_grad: bool = True
) -> tuple[Tensor | None, Tensor, Tensor]:
    """Given G = ∂L/∂Z: ∂L/∂X = G W, ∂L/∂W = Gᵀ X, ∂L/∂b = Gᵀ 1 (the column sums of
    G)."""
    return (grad_y @ W if input_grad else None), grad_y.T @ x, grad_y.sum(dim=0)


def relu(z: Tensor) -> Tensor:
    """max(z, 0) elementwise."""
    return z.clamp_min(0)


def relu_backward(h: Tensor, grad_h: Tensor) -> Tensor:
    """∂L/∂z = ∂L/∂h · 1[z > 0], read off the output h = max(z, 0).

    1[z > 0] = sign(h), which is 0 at z = 0: the derivative there is taken as 0, as
    torch does."""
    return grad_h * torch.sign(h)


# ---- the vector–Jacobian products the autograd engine adds --------------------------


def matmul_backward(
    a: Tensor, b: Tensor, grad: Tensor, a_grad: bool = True, b_grad: bool = True
) -> tuple[Tensor | None, Tensor | None]:
    """Given G = ∂L/∂C for C = A B: ∂L/∂A = G Bᵀ and ∂L/∂B = Aᵀ G; None where not
    asked for.

    The linear layer's ∂L/∂X = G W and ∂L/∂W = Gᵀ X are this rule with B = Wᵀ."""
    return (grad @ b.T if a_grad else None), (a.T @ grad if b_grad else None)


def sum_to_shape(grad: Tensor, shape: tuple) -> Tensor:
    """∂L/∂a for an ``a`` of ``shape`` that broadcasting stretched to grad's shape.

    Each entry of ``a`` was copied into every entry it was broadcast to, so its gradient
    is the sum of theirs: grad summed over the axes broadcasting added in front, and
    over those where ``a`` has size 1 (kept). For the bias of Z = X Wᵀ + b, (B, n) →
    (n,), that is ∂L/∂b = Gᵀ 1."""
    added = grad.dim() - len(shape)
    if added:
        grad = grad.sum(dim=tuple(range(added)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(dim=stretched, keepdim=True) if stretched else grad


def sum_backward(
    grad: Tensor, shape: tuple, dim: int | None = None, keepdim: bool = False
) -> Tensor:
    """∂L/∂a for s = Σ a over ``dim`` (every entry if None): each entry of ``a`` went
    into one sum with coefficient 1, so it gets that sum's gradient, copied back along
    ``dim``. Summing is the transpose of broadcasting (:func:`sum_to_shape`)."""
    if dim is not None and not keepdim:
        grad = grad.unsqueeze(dim)
    return grad.expand(shape)


def log_softmax_backward(log_p: Tensor, grad: Tensor) -> Tensor:
    """∂L/∂z for log p = log_softmax(z) over the last dimension, read off its output.

    ∂ log p_i / ∂z_j = δ_ij − p_j, so ∂L/∂z_j = ḡ_j − p_j Σ_i ḡ_i with ḡ = ∂L/∂log p
    and p = exp(log p)."""
    return grad - torch.exp(log_p) * grad.sum(dim=-1, keepdim=True)

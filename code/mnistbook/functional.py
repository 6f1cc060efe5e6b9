"""The formulas derived in the book, written once and reused by the from-scratch network.

Conventions: a batch is rows. Logits ``z`` are (B, K); labels are B integers in [0, K);
a Linear layer maps X (B, in) to Z = X Wᵀ + b with W (out, in). No autograd is used here;
the book checks every function against torch autograd and finite differences.
"""

import torch
from torch import Tensor


def logsumexp(z: Tensor) -> Tensor:
    """log Σ_k exp z_k over the last dimension (kept): shifted by the maximum so no exp overflows."""
    m = z.amax(dim=-1, keepdim=True)
    return m + torch.log(torch.exp(z - m).sum(dim=-1, keepdim=True))


def log_softmax(z: Tensor) -> Tensor:
    """log p = (z − m) − log Σ_k exp(z_k − m), m = max z: finite for any finite logits.

    Written with z − m rather than z − logsumexp(z), which would add m back and then subtract
    it, losing the digits of log p to rounding when the logits are large.
    """
    shifted = z - z.amax(dim=-1, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))


def softmax(z: Tensor) -> Tensor:
    """p_i = exp(z_i − m) / Σ_k exp(z_k − m) with m = max z: same value as without m, no overflow."""
    e = torch.exp(z - z.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def softmax_jacobian(p: Tensor) -> Tensor:
    """∂p_i/∂z_j = p_i (δ_ij − p_j), i.e. diag(p) − p pᵀ; (K,) → (K, K), (B, K) → (B, K, K)."""
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
    """Z = X Wᵀ + b (b broadcast over rows), computed as ``torch.nn.Linear`` computes it."""
    return torch.addmm(b, x, W.T)


def linear_backward(x: Tensor, W: Tensor, grad_y: Tensor,
                    input_grad: bool = True) -> tuple[Tensor | None, Tensor, Tensor]:
    """Given G = ∂L/∂Z: ∂L/∂X = G W, ∂L/∂W = Gᵀ X, ∂L/∂b = Gᵀ 1 (the column sums of G)."""
    return (grad_y @ W if input_grad else None), grad_y.T @ x, grad_y.sum(dim=0)


def relu(z: Tensor) -> Tensor:
    """max(z, 0) elementwise."""
    return z.clamp_min(0)


def relu_backward(h: Tensor, grad_h: Tensor) -> Tensor:
    """∂L/∂z = ∂L/∂h · 1[z > 0], read off the output h = max(z, 0).

    1[z > 0] = sign(h), which is 0 at z = 0: the derivative there is taken as 0, as torch does.
    """
    return grad_h * torch.sign(h)

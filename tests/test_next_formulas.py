"""Unit tests for the two formulas book/next.md derives: Adam as momentum's buffer divided by
the sum of its weights, and a convolution as the book's linear layer on patches, backward
included."""

import torch
import torch.nn.functional as TF

from mnistbook import functional as F
from mnistbook import gradcheck


def adam_step(theta, g, v, s, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
    v.mul_(beta1).add_(g)
    s.mul_(beta2).add_(g * g)
    mean_g = v / sum(beta1 ** (t - tau) for tau in range(1, t + 1))
    mean_g2 = s / sum(beta2 ** (t - tau) for tau in range(1, t + 1))
    theta.sub_(lr * mean_g / (mean_g2.sqrt() + eps))


def test_adam_as_momentum_buffer_over_sum_of_weights_is_torch_adam():
    generator = torch.Generator().manual_seed(0)
    theirs = torch.randn(
        5, 3, dtype=torch.float64, generator=generator
    ).requires_grad_()
    ours = theirs.detach().clone()
    v, s = torch.zeros_like(ours), torch.zeros_like(ours)
    optimizer = torch.optim.Adam([theirs], lr=0.01)
    for t in range(1, 101):
        g = torch.randn(5, 3, dtype=torch.float64, generator=generator)
        theirs.grad = g.clone()
        optimizer.step()
        adam_step(ours, g, v, s, t, lr=0.01)
    assert (ours - theirs.detach()).abs().max().item() < 1e-13


def test_convolution_is_the_linear_layer_on_patches():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(3, 2, 9, 9, dtype=torch.float64, generator=generator)
    W = torch.randn(4, 2, 3, 3, dtype=torch.float64, generator=generator)
    b = torch.randn(4, dtype=torch.float64, generator=generator)
    G_maps = torch.randn(3, 4, 7, 7, dtype=torch.float64, generator=generator)
    patches = TF.unfold(X, 3).transpose(1, 2).reshape(-1, 18)
    Z = (
        F.linear(patches, W.reshape(4, 18), b)
        .reshape(3, 49, 4)
        .transpose(1, 2)
        .reshape(3, 4, 7, 7)
    )
    assert gradcheck.relative_error(Z, TF.conv2d(X, W, b)) < 1e-14
    G = G_maps.reshape(3, 4, 49).transpose(1, 2).reshape(-1, 4)
    d_patches, dW, db = F.linear_backward(patches, W.reshape(4, 18), G)
    dX = TF.fold(d_patches.reshape(3, 49, 18).transpose(1, 2), (9, 9), 3)
    leaves = [t.clone().requires_grad_() for t in (X, W, b)]
    (G_maps * TF.conv2d(*leaves)).sum().backward()
    for ours, reference in zip((dX, dW.reshape(4, 2, 3, 3), db), leaves):
        assert gradcheck.relative_error(ours, reference.grad) < 1e-13
    dX_transposed = TF.conv_transpose2d(G_maps, W)
    dW_correlation = TF.conv2d(X.transpose(0, 1), G_maps.transpose(0, 1)).transpose(
        0, 1
    )
    assert gradcheck.relative_error(dX_transposed, leaves[0].grad) < 1e-13
    assert gradcheck.relative_error(dW_correlation, leaves[1].grad) < 1e-13

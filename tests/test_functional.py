"""Every derived formula against torch autograd, in float64, on random shapes."""

import pytest
import torch
import torch.nn.functional as TF

from mnistbook import functional as F

SHAPES = [(1, 10), (7, 10), (64, 3)]


def logits(shape, scale=3.0, seed=0):
    return (
        torch.randn(
            *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
        )
        * scale
    )


def labels_for(shape, seed=1):
    return torch.randint(
        0, shape[1], (shape[0],), generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_softmax_logsoftmax_and_loss_match_torch(shape, scale):
    z, y = logits(shape, scale), labels_for(shape)
    torch.testing.assert_close(
        F.softmax(z), torch.softmax(z, 1), rtol=1e-12, atol=1e-300
    )
    torch.testing.assert_close(
        F.log_softmax(z), torch.log_softmax(z, 1), rtol=1e-12, atol=1e-9
    )
    torch.testing.assert_close(F.logsumexp(z), torch.logsumexp(z, 1, keepdim=True))
    torch.testing.assert_close(F.cross_entropy(z, y), TF.cross_entropy(z, y))
    assert torch.isfinite(F.cross_entropy(z, y))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_p_minus_y_over_b_is_the_gradient_of_the_mean_loss(shape, scale):
    z, y = logits(shape, scale), labels_for(shape)
    leaf = z.clone().requires_grad_(True)
    TF.cross_entropy(leaf, y).backward()
    torch.testing.assert_close(
        F.cross_entropy_grad(z, y), leaf.grad, rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("k", [2, 10])
def test_softmax_jacobian_matches_autograd_single_and_batched(k):
    z = logits((5, k))
    expected = torch.stack(
        [
            torch.autograd.functional.jacobian(lambda v: torch.softmax(v, 0), row)
            for row in z
        ]
    )
    torch.testing.assert_close(F.softmax_jacobian(F.softmax(z)), expected)
    torch.testing.assert_close(F.softmax_jacobian(F.softmax(z[0])), expected[0])
    J = F.softmax_jacobian(F.softmax(z[0]))
    torch.testing.assert_close(
        J.sum(1), torch.zeros(k, dtype=torch.float64), rtol=0, atol=1e-15
    )


@pytest.mark.parametrize(
    "batch, n_in, n_out", [(1, 784, 120), (5, 120, 256), (3, 256, 10)]
)
def test_linear_backward_matches_autograd(batch, n_in, n_out):
    g = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, n_in, dtype=torch.float64, generator=g)
    W = torch.randn(n_out, n_in, dtype=torch.float64, generator=g)
    b = torch.randn(n_out, dtype=torch.float64, generator=g)
    G = torch.randn(batch, n_out, dtype=torch.float64, generator=g)
    torch.testing.assert_close(F.linear(x, W, b), TF.linear(x, W, b))
    leaves = [t.clone().requires_grad_(True) for t in (x, W, b)]
    (G * TF.linear(*leaves)).sum().backward()
    for ours, leaf in zip(F.linear_backward(x, W, G), leaves):
        torch.testing.assert_close(ours, leaf.grad)
    assert F.linear_backward(x, W, G, input_grad=False)[0] is None


def test_relu_backward_matches_autograd_including_exactly_zero():
    z = torch.tensor([[-2.0, -0.0, 0.0, 1e-300, 3.0]], dtype=torch.float64)
    leaf = z.clone().requires_grad_(True)
    G = torch.tensor([[5.0, 6.0, 7.0, 8.0, 9.0]], dtype=torch.float64)
    (G * torch.relu(leaf)).sum().backward()
    ours = F.relu_backward(F.relu(z), G)
    assert ours.tolist() == leaf.grad.tolist() == [[0.0, 0.0, 0.0, 8.0, 9.0]]


def test_one_hot():
    assert F.one_hot(torch.tensor([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]

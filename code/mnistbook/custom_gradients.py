"""The book's hand-derived gradients inside PyTorch's own engine: its linear layer and
ReLU as ``torch.autograd.Function``s.

This is how PyTorch lets an operation bring its own gradient: ``forward(ctx, ...)``
computes the value and keeps what the backward pass will need
(``ctx.save_for_backward``); ``backward(ctx, grad)`` receives ∂L/∂output and returns
one gradient per input of ``forward``, or None where ``ctx.needs_input_grad`` says none
is wanted. Both call the formulas of :mod:`mnistbook.functional`; PyTorch's engine does
the recording, the ordering and the adding up.
"""

import torch
from torch import nn

from . import functional as F
from . import scratch, validate


class LinearFunction(torch.autograd.Function):
    """Z = X Wᵀ + b, with the book's ∂L/∂X = G W, ∂L/∂W = Gᵀ X, ∂L/∂b = Gᵀ 1."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, W)  # ∂L/∂W needs the input, ∂L/∂X the weights
        return F.linear(x, W, b)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, W = ctx.saved_tensors
        return F.linear_backward(x, W, grad, input_grad=ctx.needs_input_grad[0])


class ReLUFunction(torch.autograd.Function):
    """h = max(z, 0), with the book's ∂L/∂z = ∂L/∂h · 1[z > 0], read off the output."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(z)
        ctx.save_for_backward(h)
        return h

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (h,) = ctx.saved_tensors
        return F.relu_backward(h, grad)


class Linear(nn.Module):
    """``nn.Linear``'s parameters, names and initial values, with the book's
    gradient."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        drawn = scratch.Linear(dim_in, dim_out)  # the same draws as nn.Linear
        self.weight, self.bias = nn.Parameter(drawn.W), nn.Parameter(drawn.b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return LinearFunction.apply(x, self.weight, self.bias)


class Net(nn.Module):
    """The book's ``model.Net`` (same parameter names, so state dicts carry over),
    with every gradient from the book's formulas instead of PyTorch's."""

    def __init__(self):
        super().__init__()
        self.fc1 = Linear(28 * 28, 120)
        self.fc2 = Linear(120, 256)
        self.fc3 = Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = validate.images(x, "custom_gradients.Net.forward")
        x = ReLUFunction.apply(self.fc1(x))
        x = ReLUFunction.apply(self.fc2(x))
        return self.fc3(x)

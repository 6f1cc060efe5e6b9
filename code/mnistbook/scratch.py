"""The network from scratch: loss, layers, net and optimiser with hand-written backward
passes.

No autograd anywhere: every gradient comes from a formula in
:mod:`mnistbook.functional`, so the code runs unchanged under ``torch.no_grad()``, on
CPU or CUDA, in float32 or float64. The input checks of :mod:`mnistbook.validate` run
before the methods, by ``guarded``, so the bodies hold only the math. The shape follows the original notebook (a loss,
Linear, ReLU, Net and an optimiser), with its mistakes fixed; the book explains each
fix."""

import math

import torch
from torch import Tensor

from . import validate
from .functional import (
    cross_entropy,
    cross_entropy_grad,
    linear,
    linear_backward,
    relu,
    relu_backward,
)
from .validate import guarded


@guarded(forward=validate.linear_input, backward=validate.linear_upstream)
class Linear:
    """Z = X Wᵀ + b with W (dim_out, dim_in), initialised like ``torch.nn.Linear``."""

    def __init__(self, dim_in: int, dim_out: int, dtype=torch.float32, device=None):
        self.W = torch.empty(dim_out, dim_in, dtype=dtype, device=device)
        self.b = torch.empty(dim_out, dtype=dtype, device=device)
        # The same calls, in the same order, as nn.Linear.reset_parameters: U(−1/√in,
        # 1/√in).
        torch.nn.init.kaiming_uniform_(self.W, a=math.sqrt(5))
        torch.nn.init.uniform_(self.b, -1 / math.sqrt(dim_in), 1 / math.sqrt(dim_in))
        self.x = None

    def forward(self, x: Tensor) -> Tensor:
        self.x = x  # kept for backward: ∂L/∂W needs the input
        return linear(x, self.W, self.b)

    def backward(
        self, grad_out: Tensor, input_grad: bool = True
    ) -> tuple[Tensor | None, Tensor, Tensor]:
        """(∂L/∂X, ∂L/∂W, ∂L/∂b) from the upstream gradient ∂L/∂Z.

        ``input_grad=False`` skips ∂L/∂X (returned as None): nothing needs it for the
        first layer, whose input is the data, and it would cost a third matrix product.
        """
        return linear_backward(self.x, self.W, grad_out, input_grad)


@guarded(forward=validate.relu_input, backward=validate.relu_upstream)
class ReLU:
    """h = max(z, 0); remembers what its backward needs (here its output, whose sign is
    the mask), so each layer needs its own instance."""

    def __init__(self):
        self.h = None

    def forward(self, z: Tensor) -> Tensor:
        self.h = relu(z)  # kept for backward: h > 0 exactly where z > 0
        return self.h

    def backward(self, grad_out: Tensor) -> Tensor:
        """∂L/∂z = ∂L/∂h · 1[z > 0]."""
        return relu_backward(self.h, grad_out)


@guarded(forward=validate.loss_inputs, backward=validate.loss_inputs)
class CrossEntropyLoss:
    """Mean of −log softmax(z)_y over the batch, from raw logits.

    The original notebook calls this NLLLoss; in torch, ``NLLLoss`` expects
    log-probabilities, and ``CrossEntropyLoss`` = log-softmax followed by ``NLLLoss`` is
    what this computes."""

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        return cross_entropy(logits, labels)

    def __call__(self, logits: Tensor, labels: Tensor) -> Tensor:
        return self.forward(logits, labels)

    def backward(self, logits: Tensor, labels: Tensor) -> Tensor:
        """∂L/∂z = (softmax(z) − onehot(y)) / B for the mean loss."""
        return cross_entropy_grad(logits, labels)


@guarded(forward=validate.images_input)
class Net:
    """784 → 120 → 256 → 10 with a ReLU after each hidden layer, as the PyTorch ``Net``.

    ``hidden`` changes the two hidden widths (the book's failure lab needs equal ones).
    """

    def __init__(
        self, dtype=torch.float32, device=None, hidden: tuple[int, int] = (120, 256)
    ):
        self.fc1 = Linear(28 * 28, hidden[0], dtype, device)
        self.relu1 = ReLU()
        self.fc2 = Linear(hidden[0], hidden[1], dtype, device)
        self.relu2 = ReLU()
        self.fc3 = Linear(hidden[1], 10, dtype, device)
        # The very tensors the layers use, so an optimiser's in-place update is seen by
        # them.
        self.parameters = {
            f"{name}.{p}": getattr(getattr(self, name), p)
            for name in ("fc1", "fc2", "fc3")
            for p in ("W", "b")
        }
        self.grads: dict[str, Tensor] = {}

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(len(x), -1)  # (B, 1, 28, 28) → (B, 784): one row per image
        h1 = self.relu1.forward(self.fc1.forward(x))
        h2 = self.relu2.forward(self.fc2.forward(h1))
        return self.fc3.forward(h2)

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def backward(self, grad_logits: Tensor) -> None:
        """Fill ``self.grads`` from ∂L/∂logits, layer by layer from the output back."""
        g, self.grads["fc3.W"], self.grads["fc3.b"] = self.fc3.backward(grad_logits)
        g = self.relu2.backward(g)
        g, self.grads["fc2.W"], self.grads["fc2.b"] = self.fc2.backward(g)
        g = self.relu1.backward(g)
        _, self.grads["fc1.W"], self.grads["fc1.b"] = self.fc1.backward(
            g, input_grad=False
        )


@guarded(__init__=validate.optimiser_settings, step=validate.gradients_of)
class SGD:
    """Stochastic gradient descent with the update rule of ``torch.optim.SGD``.

    v ← g on the first step, then v ← μ v + g; and θ ← θ − η v (with μ = 0: θ ← θ − η
    g)."""

    def __init__(self, parameters: dict[str, Tensor], lr: float, momentum: float = 0.0):
        self.parameters, self.lr, self.momentum = parameters, lr, momentum
        self.buffers: dict[str, Tensor] = {}

    def step(self, grads: dict[str, Tensor]) -> None:
        for name, param in self.parameters.items():
            self.update(param, self.direction(name, grads[name]))

    def direction(self, name: str, grad: Tensor) -> Tensor:
        """The momentum buffer v ← μ v + g (v = g on the first step); just g without
        momentum."""
        if not self.momentum:
            return grad
        if name not in self.buffers:
            # a copy: the in-place update below must not change the caller's grad
            self.buffers[name] = grad.clone()
        else:
            self.buffers[name].mul_(self.momentum).add_(grad)
        return self.buffers[name]

    def update(self, param: Tensor, direction: Tensor) -> None:
        """θ ← θ − η v: a step against the gradient, in place, so the layers see it."""
        param.add_(direction, alpha=-self.lr)


def make_scratch_step(net: Net, criterion: CrossEntropyLoss, optimizer: SGD):
    """Build the step function of the scratch ``net``.

    The returned ``step(images, labels)`` runs forward, loss, backward and the update on
    one mini-batch, and returns the batch's loss: the same contract as
    :func:`~mnistbook.training.make_torch_step`."""

    def step(images: Tensor, labels: Tensor) -> float:
        device = next(iter(net.parameters.values())).device
        images, labels = images.to(device), labels.to(device)
        logits = net.forward(images)
        loss = criterion.forward(logits, labels)
        net.backward(criterion.backward(logits, labels))
        optimizer.step(net.grads)
        return loss.item()

    return step

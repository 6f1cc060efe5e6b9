"""The network from scratch: loss, layers, net and optimiser with hand-written backward passes.

No autograd anywhere: every gradient comes from a formula in :mod:`mnistbook.functional`,
so the code runs unchanged under ``torch.no_grad()``, on CPU or CUDA, in float32 or float64.
The shape follows the seed notebook (a loss, Linear, ReLU, Net and an optimiser), with its
mistakes fixed; the book explains each fix.
"""

import math

import torch
from torch import Tensor

from . import functional as F
from . import validate


def _cached(value, where: str):
    if value is None:
        raise RuntimeError(f"{where}: backward() called before forward(); run forward() on this batch first")
    return value


class Linear:
    """Z = X Wᵀ + b with W (dim_out, dim_in), initialised like ``torch.nn.Linear``."""

    def __init__(self, dim_in: int, dim_out: int, dtype=torch.float32, device=None):
        self.W = torch.empty(dim_out, dim_in, dtype=dtype, device=device)
        self.b = torch.empty(dim_out, dtype=dtype, device=device)
        # The same calls, in the same order, as nn.Linear.reset_parameters: U(−1/√in, 1/√in).
        torch.nn.init.kaiming_uniform_(self.W, a=math.sqrt(5))
        torch.nn.init.uniform_(self.b, -1 / math.sqrt(dim_in), 1 / math.sqrt(dim_in))
        self.x = None

    def forward(self, x: Tensor) -> Tensor:
        validate.matrix(x, self.W.shape[1], "Linear.forward")
        self.x = x  # kept for backward: ∂L/∂W needs the input
        return F.linear(x, self.W, self.b)

    def backward(self, grad_out: Tensor, input_grad: bool = True) -> tuple[Tensor | None, Tensor, Tensor]:
        """(∂L/∂X, ∂L/∂W, ∂L/∂b) from the upstream gradient ∂L/∂Z.

        ``input_grad=False`` skips ∂L/∂X (returned as None): nothing needs it for the first
        layer, whose input is the data, and it would cost a third matrix product.
        """
        x = _cached(self.x, "Linear.backward")
        validate.same_shape(grad_out, (len(x), self.W.shape[0]), "Linear.backward", "grad_out")
        return F.linear_backward(x, self.W, grad_out, input_grad)


class ReLU:
    """h = max(z, 0); remembers its output, so each layer needs its own instance."""

    def __init__(self):
        self.h = None

    def forward(self, z: Tensor) -> Tensor:
        validate.floating(z, "ReLU.forward")
        self.h = F.relu(z)  # kept for backward: h > 0 exactly where z > 0
        return self.h

    def backward(self, grad_out: Tensor) -> Tensor:
        """∂L/∂z = ∂L/∂h · 1[z > 0]."""
        h = _cached(self.h, "ReLU.backward")
        if grad_out.shape != h.shape:
            raise ValueError(
                f"ReLU.backward: grad_out has shape {tuple(grad_out.shape)} but the last forward() "
                f"saw {tuple(h.shape)} — is one ReLU instance shared by two layers?"
            )
        return F.relu_backward(h, grad_out)


class CrossEntropyLoss:
    """Mean of −log softmax(z)_y over the batch, from raw logits.

    The seed notebook calls this NLLLoss; in torch, ``NLLLoss`` expects log-probabilities,
    and ``CrossEntropyLoss`` = log-softmax followed by ``NLLLoss`` is what this computes.
    """

    def _check(self, logits: Tensor, labels: Tensor, where: str) -> None:
        validate.floating(logits, where, "logits")
        if logits.dim() != 2 or logits.shape[0] == 0:
            raise ValueError(f"{where}: logits must have shape (B, K) with B ≥ 1, got {tuple(logits.shape)}")
        validate.labels(labels, logits.shape[0], logits.shape[1], where)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        self._check(logits, labels, "CrossEntropyLoss.forward")
        return F.cross_entropy(logits, labels)

    def __call__(self, logits: Tensor, labels: Tensor) -> Tensor:
        return self.forward(logits, labels)

    def backward(self, logits: Tensor, labels: Tensor) -> Tensor:
        """∂L/∂z = (softmax(z) − onehot(y)) / B for the mean loss."""
        self._check(logits, labels, "CrossEntropyLoss.backward")
        return F.cross_entropy_grad(logits, labels)


class Net:
    """784 → 120 → 256 → 10 with a ReLU after each hidden layer, as the PyTorch ``Net``.

    ``hidden`` changes the two hidden widths (the book's failure lab needs equal ones).
    """

    def __init__(self, dtype=torch.float32, device=None, hidden: tuple[int, int] = (120, 256)):
        self.fc1 = Linear(28 * 28, hidden[0], dtype, device)
        self.relu1 = ReLU()
        self.fc2 = Linear(hidden[0], hidden[1], dtype, device)
        self.relu2 = ReLU()
        self.fc3 = Linear(hidden[1], 10, dtype, device)
        # The very tensors the layers use, so an optimiser's in-place update is seen by them.
        self.parameters = {f"{name}.{p}": getattr(getattr(self, name), p)
                           for name in ("fc1", "fc2", "fc3") for p in ("W", "b")}
        self.grads: dict[str, Tensor] = {}

    def forward(self, x: Tensor) -> Tensor:
        x = validate.images(x, "Net.forward")  # (B, 1, 28, 28) → (B, 784)
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
        _, self.grads["fc1.W"], self.grads["fc1.b"] = self.fc1.backward(g, input_grad=False)


class SGD:
    """Stochastic gradient descent with the update rule of ``torch.optim.SGD``.

    b ← g on the first step, then b ← μ b + g; and θ ← θ − η b (with μ = 0: θ ← θ − η g).
    """

    def __init__(self, parameters: dict[str, Tensor], lr: float, momentum: float = 0.0):
        if lr <= 0 or not 0 <= momentum < 1:
            raise ValueError(f"SGD: need lr > 0 and 0 ≤ momentum < 1, got lr={lr}, momentum={momentum}")
        self.parameters, self.lr, self.momentum = parameters, lr, momentum
        self.buffers: dict[str, Tensor] = {}

    def step(self, grads: dict[str, Tensor]) -> None:
        missing = self.parameters.keys() - grads.keys()
        if missing:
            raise KeyError(f"SGD.step: no gradient for {sorted(missing)}; call net.backward() first")
        for name, param in self.parameters.items():
            self.update(param, self.direction(name, grads[name]))

    def direction(self, name: str, grad: Tensor) -> Tensor:
        """The momentum buffer b ← μ b + g (b = g on the first step); just g without momentum."""
        if not self.momentum:
            return grad
        if name not in self.buffers:
            self.buffers[name] = grad.clone()
        else:
            self.buffers[name].mul_(self.momentum).add_(grad)
        return self.buffers[name]

    def update(self, param: Tensor, direction: Tensor) -> None:
        """θ ← θ − η b: a step against the gradient, in place, so the layers see it."""
        param.add_(direction, alpha=-self.lr)


def train_step(net: Net, criterion: CrossEntropyLoss, optimizer: SGD):
    """One step on a mini-batch: forward, loss, backward, update; returns the batch's loss."""

    def step(images: Tensor, labels: Tensor) -> float:
        device = net.fc1.W.device
        images, labels = images.to(device), labels.to(device)
        logits = net.forward(images)
        loss = criterion.forward(logits, labels)
        net.backward(criterion.backward(logits, labels))
        optimizer.step(net.grads)
        return loss.item()

    return step

"""The classic bugs of a hand-written network, each a small patch over the correct code.

Every bug is one replacement function, swapped in for one method of the correct classes
by :func:`patched` for the duration of a ``with`` block; the line marked ``BUG`` is the
whole difference. (The shadowed-loss bug lives in a training loop, so it is a loop.)"""

from collections.abc import Iterable
from contextlib import contextmanager

import torch
from torch import Tensor

from . import functional as F
from . import scratch


@contextmanager
def patched(owner, name: str, replacement):
    """Replace ``owner.name`` (a method, or a module's function) inside the ``with``
    block."""
    own = name in vars(owner)
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        if own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)  # it was inherited: uncover the parent's again


# 1. The optimiser adds the gradient ---------------------------------------------------


def ascending_update(self, param: Tensor, direction: Tensor) -> None:
    param.add_(direction, alpha=self.lr)  # BUG: + η v, a step up the loss


def optimizer_ascends():
    return patched(scratch.SGD, "update", ascending_update)


# 2. Backward is handed a layer's activations instead of the upstream gradient ---------


def backward_handed_activations(self, grad_logits: Tensor) -> None:
    g, self.grads["fc3.W"], self.grads["fc3.b"] = self.fc3.backward(grad_logits)
    g = self.relu2.backward(self.fc3.x)  # BUG: H₂, not the gradient g = ∂L/∂H₂
    g, self.grads["fc2.W"], self.grads["fc2.b"] = self.fc2.backward(g)
    g = self.relu1.backward(g)
    _, self.grads["fc1.W"], self.grads["fc1.b"] = self.fc1.backward(g, input_grad=False)


def activations_for_gradients():
    return patched(scratch.Net, "backward", backward_handed_activations)


# 3. The ReLU's forward where its backward belongs -------------------------------------


def relu_backward_is_forward(self, grad_out: Tensor) -> Tensor:
    return F.relu(grad_out)  # BUG: max(g, 0) instead of g ⊙ 1[z > 0]


def relu_forward_in_backward():
    return patched(scratch.ReLU, "backward", relu_backward_is_forward)


# 4. One ReLU shared by two layers -----------------------------------------------------

_net_init = scratch.Net.__init__


def init_sharing_one_relu(self, *args, **kwargs) -> None:
    _net_init(self, *args, **kwargs)
    self.relu2 = self.relu1  # BUG: layer 2's forward overwrites layer 1's mask


def shared_relu():
    return patched(scratch.Net, "__init__", init_sharing_one_relu)


# 5. The loss object shadowed by its own value -----------------------------------------


def train_shadowing_loss(
    net: scratch.Net, optimizer: scratch.SGD, batches: Iterable
) -> None:
    """The original notebook's loop: the loss object and the loss value share one
    name."""
    loss = scratch.CrossEntropyLoss()
    for inputs, labels in batches:
        outputs = net(inputs)
        loss = loss(outputs, labels)  # BUG: now `loss` names a tensor, not the object
        net.backward(loss.backward(outputs, labels))  # so this is Tensor.backward
        optimizer.step(net.grads)


# 6. The gradient not divided by the batch size ----------------------------------------


def gradient_not_divided(self, logits: Tensor, labels: Tensor) -> Tensor:
    one_hot = F.one_hot(labels, logits.shape[1], logits.dtype)
    return F.softmax(logits) - one_hot  # BUG: no / B


def loss_summed(self, logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(logits, labels) * len(labels)  # BUG: the sum, not the mean


def gradient_of_sum():
    """The gradient of the summed loss, B times too large for the mean loss that is
    reported."""
    return patched(scratch.CrossEntropyLoss, "backward", gradient_not_divided)


@contextmanager
def sum_instead_of_mean():
    """Loss and gradient both of the sum: consistent with each other, B times the book's
    loss."""
    with patched(scratch.CrossEntropyLoss, "forward", loss_summed), gradient_of_sum():
        yield


# 7. Softmax without subtracting the maximum -------------------------------------------


def softmax_without_shift(z: Tensor) -> Tensor:
    e = torch.exp(z)  # BUG: no − max z; inf once a logit passes ≈ 88.7 (float32)
    return e / e.sum(dim=-1, keepdim=True)


def log_softmax_without_shift(z: Tensor) -> Tensor:
    return z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True))  # BUG: no − max z


@contextmanager
def unshifted_softmax():
    """Both the loss (log-softmax) and its gradient (softmax) computed without the
    shift."""
    with (
        patched(F, "softmax", softmax_without_shift),
        patched(F, "log_softmax", log_softmax_without_shift),
    ):
        yield


# 8. PyTorch: zero_grad() forgotten ----------------------------------------------------


def zero_grad_forgotten(self, set_to_none: bool = True) -> None:
    pass  # BUG: .grad keeps the sum of every gradient since the start


def forgotten_zero_grad():
    return patched(torch.optim.Optimizer, "zero_grad", zero_grad_forgotten)

"""The workbook's checks judge fairly: every correct answer passes, in any style the contract on
its page allows; every wrong one fails with the diagnosis of its own mistake, and with no other;
nothing a learner hands in makes a check raise or hang.

The catalogue below is the checks' specification: CORRECT lists answers in different valid
styles, WRONG lists the mistakes learners make, each with the known mistake (a ``probe.Mistake``)
or the words its message must contain.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from mnistbook import bugs, original, scratch
from mnistbook import functional as F
from mnistbook.workbook import (
    EXERCISES,
    check_cross_entropy,
    check_cross_entropy_grad,
    check_linear,
    check_net,
    check_relu,
    check_sgd,
    check_softmax_jacobian,
    check_training,
    layers,
    loss,
    network,
    optimizer,
    probe,
    summary,
    train,
)
from mnistbook.workbook.probe import Mistake

BOOK_EXERCISES = {name: e for name, e in EXERCISES.items() if e.solution}

# ---- correct answers in other styles --------------------------------------------------------


def einsum_cross_entropy(z, y):
    logp = z - torch.logsumexp(z, dim=1, keepdim=True)
    return -torch.einsum("bk,bk->", logp, TF.one_hot(y, z.shape[1]).to(z.dtype)) / len(
        y
    )


def torch_cross_entropy(z, y):
    return TF.nll_loss(TF.log_softmax(z, dim=-1), y)


def einsum_cross_entropy_grad(z, y):
    return (torch.softmax(z, 1) - TF.one_hot(y, z.shape[1]).to(z.dtype)) / len(y)


def einsum_jacobian(p):
    return torch.einsum("i,ij->ij", p, torch.eye(len(p), dtype=p.dtype)) - torch.einsum(
        "i,j->ij", p, p
    )


def batched_jacobian(p):  # (K,) and (B, K) alike
    return torch.diag_embed(p) - p[..., :, None] * p[..., None, :]


class EinsumLinear:
    def __init__(self, dim_in, dim_out, dtype=torch.float32, device=None):
        self.W = (
            torch.rand(dim_out, dim_in, dtype=dtype, device=device) * 2 - 1
        ) / dim_in**0.5
        self.b = torch.zeros(dim_out, dtype=dtype, device=device)

    def forward(self, x):
        self.x = x
        return torch.einsum("bi,oi->bo", x, self.W) + self.b

    def backward(self, g):
        return (
            torch.einsum("bo,oi->bi", g, self.W),
            torch.einsum("bo,bi->oi", g, self.x),
            torch.einsum("bo->o", g),
        )


class ListReturningLinear(EinsumLinear):
    def backward(self, g):
        return list(super().backward(g))


class TorchStyleLinear:  # attributes named as in torch.nn.Linear
    def __init__(self, dim_in, dim_out, dtype=torch.float32, device=None):
        bound = dim_in**-0.5
        self.weight = torch.nn.init.uniform_(
            torch.empty(dim_out, dim_in, dtype=dtype, device=device), -bound, bound
        )
        self.bias = torch.zeros(dim_out, dtype=dtype, device=device)

    def forward(self, x):
        self.x = x
        return x @ self.weight.T + self.bias

    def backward(self, g):
        return g @ self.weight, g.T @ self.x, g.sum(0)


class TransposedViewLinear(EinsumLinear):  # keeps Wᵀ as a view made once
    def __init__(self, dim_in, dim_out, dtype=torch.float32, device=None):
        super().__init__(dim_in, dim_out, dtype, device)
        self.WT = self.W.T

    def forward(self, x):
        self.x = x
        return x @ self.WT + self.b


class MaskReLU:
    def forward(self, z):
        self.mask = z > 0
        return torch.where(self.mask, z, torch.zeros_like(z))

    def backward(self, g):
        return g * self.mask


class InPlaceReLU:  # works on its arguments in place, and keeps its input
    def forward(self, z):
        self.z = z.clone()
        return z.clamp_(min=0)

    def backward(self, g):
        g[self.z <= 0] = 0
        return g


class ListNet:
    """The network written with lists of layers, the layers' names in torch's style."""

    def __init__(self, dtype=torch.float32, device=None):
        sizes = [784, 120, 256, 10]
        self.layers = [
            TorchStyleLinear(a, b, dtype, device) for a, b in zip(sizes, sizes[1:])
        ]
        self.relus = [MaskReLU(), MaskReLU()]
        self.parameters = {
            f"fc{i + 1}.{p}": getattr(layer, p)
            for i, layer in enumerate(self.layers)
            for p in ("weight", "bias")
        }

    def forward(self, x):
        x = x.reshape(len(x), -1)
        for layer, relu in zip(self.layers, self.relus):
            x = relu.forward(layer.forward(x))
        return self.layers[-1].forward(x)

    def backward(self, g):
        self.grads = {}
        for i in (2, 1, 0):
            g, self.grads[f"fc{i + 1}.weight"], self.grads[f"fc{i + 1}.bias"] = (
                self.layers[i].backward(g)
            )
            if i:
                g = self.relus[i - 1].backward(g)


class SlottedLinear(
    EinsumLinear
):  # __slots__: its methods cannot be replaced on an instance
    __slots__ = ("W", "b", "x")


class SlottedReLU(MaskReLU):
    __slots__ = ("mask",)


class SlottedNet(scratch.Net):
    """The book's network on layers with __slots__."""

    def __init__(self, dtype=torch.float32, device=None):
        self.fc1, self.fc2, self.fc3 = (
            SlottedLinear(i, o, dtype, device)
            for i, o in ((784, 120), (120, 256), (256, 10))
        )
        self.relu1, self.relu2 = SlottedReLU(), SlottedReLU()
        self.parameters = {
            f"{name}.{p}": getattr(getattr(self, name), p)
            for name in ("fc1", "fc2", "fc3")
            for p in ("W", "b")
        }
        self.grads = {}

    def backward(self, grad_logits):
        g, self.grads["fc3.W"], self.grads["fc3.b"] = self.fc3.backward(grad_logits)
        g = self.relu2.backward(g)
        g, self.grads["fc2.W"], self.grads["fc2.b"] = self.fc2.backward(g)
        g = self.relu1.backward(g)
        _, self.grads["fc1.W"], self.grads["fc1.b"] = self.fc1.backward(g)


class LoopSGD:
    def __init__(self, parameters, lr, momentum=0.0):
        self.parameters, self.lr, self.momentum, self.velocity = (
            parameters,
            lr,
            momentum,
            {},
        )

    def step(self, grads):
        for k, p in self.parameters.items():
            v = self.velocity.get(k)
            v = grads[k].clone() if v is None else self.momentum * v + grads[k]
            self.velocity[k] = v
            p -= self.lr * v


class HeavyBallSGD:  # the classical form, u ← μ u − η g, θ ← θ + u: equal for a constant η
    def __init__(self, parameters, lr, momentum=0.0):
        self.parameters, self.lr, self.momentum, self.u = parameters, lr, momentum, {}

    def step(self, grads):
        for k, p in self.parameters.items():
            self.u[k] = self.momentum * self.u.get(k, 0.0) - self.lr * grads[k]
            p += self.u[k]


def book(check_name):
    exercise = EXERCISES[check_name]
    module, name = exercise.solution.split(":")
    return getattr(__import__(module, fromlist=[name]), name)


CORRECT = {
    "check_cross_entropy": [einsum_cross_entropy, torch_cross_entropy],
    "check_cross_entropy_grad": [einsum_cross_entropy_grad],
    "check_softmax_jacobian": [einsum_jacobian, batched_jacobian],
    "check_linear": [
        EinsumLinear,
        ListReturningLinear,
        TorchStyleLinear,
        TransposedViewLinear,
    ],
    "check_relu": [MaskReLU, InPlaceReLU],
    "check_net": [ListNet, SlottedNet],
    "check_sgd": [LoopSGD, HeavyBallSGD],
}


@pytest.mark.parametrize("name", [n for n in BOOK_EXERCISES if n != "check_training"])
def test_the_books_answer_and_other_styles_pass(name):
    for answer in [book(name)] + CORRECT.get(name, []):
        result = EXERCISES[name].check(answer)
        assert result.passed, (getattr(answer, "__name__", answer), result)
        assert (
            "\n" not in result.message and len(result.message) < 200
        )  # a pass is one short line


# ---- wrong answers, each with its diagnosis -------------------------------------------------


def linear_with(backward=None, forward=None):
    class Buggy(scratch.Linear):
        pass

    if backward:
        Buggy.backward = lambda self, g: backward(self.x, self.W, g)
    if forward:
        Buggy.forward = lambda self, x: (
            setattr(self, "x", x),
            forward(x, self.W, self.b),
        )[1]
    return Buggy


def relu_with(backward):
    return type("Buggy", (scratch.ReLU,), {"backward": backward})


def net_with(**methods):
    return type("Buggy", (scratch.Net,), methods)


def sgd_with(**methods):
    return type("Buggy", (scratch.SGD,), methods)


class KeepsFirstInput(scratch.Linear):
    def forward(self, x):
        if self.x is None:
            self.x = x
        return F.linear(x, self.W, self.b)


class TransposedW(scratch.Linear):
    def __init__(self, dim_in, dim_out, dtype=torch.float32, device=None):
        super().__init__(dim_in, dim_out, dtype, device)
        self.W = self.W.T.contiguous()


class ZeroInit(scratch.Linear):
    def __init__(self, dim_in, dim_out, dtype=torch.float32, device=None):
        super().__init__(dim_in, dim_out, dtype, device)
        self.W.zero_()


class IgnoresDtype(scratch.Linear):
    def __init__(self, dim_in, dim_out, dtype=torch.float32, device=None):
        super().__init__(dim_in, dim_out)


class NoDtypeArgument(EinsumLinear):
    def __init__(self, dim_in, dim_out):
        super().__init__(dim_in, dim_out)


class CopyOfW(EinsumLinear):  # forward computes with a copy of W made at creation
    def __init__(self, dim_in, dim_out, dtype=torch.float32, device=None):
        super().__init__(dim_in, dim_out, dtype, device)
        self.WT = self.W.T.clone()

    def forward(self, x):
        self.x = x
        return x @ self.WT + self.b


class DerivativeOneAtZero(MaskReLU):
    def forward(self, z):
        self.z = z
        return super().forward(z)

    def backward(self, g):
        return g * (self.z >= 0)


class SignOfInput(DerivativeOneAtZero):
    def backward(self, g):
        return g * torch.sign(self.z)


class FirstMask:  # keeps the mask of its first forward
    def forward(self, z):
        h = z.clamp_min(0)
        if getattr(self, "first", None) is None:
            self.first = z > 0
        return h

    def backward(self, g):
        return g * self.first


class SignInPlace(MaskReLU):  # backward turns the output it returned into its mask
    def forward(self, z):
        self.h = z.clamp_min(0)
        return self.h

    def backward(self, g):
        return self.h.sign_().mul_(g)


class NormalInit(EinsumLinear):  # N(0, 1) weights: √784 times torch's scale
    def __init__(self, dim_in, dim_out, dtype=torch.float32, device=None):
        super().__init__(dim_in, dim_out, dtype, device)
        self.W = torch.randn(dim_out, dim_in, dtype=dtype, device=device)


class ClassState:
    mask = None

    def forward(self, z):
        ClassState.mask = z > 0  # shared by every instance
        return z.clamp_min(0)

    def backward(self, g):
        return g * ClassState.mask


class NotebookNet(original.Net):
    """The original notebook's Net (one shared ReLU; the loss's gradient handed to every layer;
    the ReLU's forward in its backward), its gradients under the book's name."""

    grads = property(lambda self: self._grad)

    def __init__(self, dtype=torch.float32, device=None):
        super().__init__()
        for tensor in self.parameters.values():
            tensor.data = tensor.data.to(dtype)


class NotebookBackwardTwoReLUs(NotebookNet):
    """Two ReLUs, and the notebook's backward: the gradient of the logits handed to every layer."""

    def __init__(self, dtype=torch.float32, device=None):
        super().__init__(dtype)
        self.relu1, self.relu2 = original.ReLU(), original.ReLU()
        del self.relu

    def forward(self, x):
        x = torch.reshape(x, (x.shape[0], -1))
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))

    def backward(self, z):
        self._grad = {}
        _, self._grad["fc3.W"], self._grad["fc3.b"] = self.fc3.backward(z)
        self.relu2.backward(z)


class NetIgnoresDtype(scratch.Net):
    def __init__(self, dtype=torch.float32, device=None):
        super().__init__()


def copied_parameters(self, *args, **kwargs):
    scratch.Net.__init__(self, *args, **kwargs)
    self.parameters = {k: v.clone() for k, v in self.parameters.items()}


def other_parameters(self, *args, **kwargs):  # a dict of new tensors beside the layers'
    scratch.Net.__init__(self, *args, **kwargs)
    self.parameters = {
        k: (torch.rand_like(v) - 0.5) * 2 * v.shape[-1] ** -0.5
        for k, v in self.parameters.items()
    }


def normal_init(self, *args, **kwargs):  # N(0, 1) weights in every layer
    scratch.Net.__init__(self, *args, **kwargs)
    with torch.no_grad():
        for tensor in self.parameters.values():
            tensor.normal_()


def relu_on_logits(self, x):
    return scratch.Net.forward(self, x).clamp_min(0)


def mixed_rows(self, x):
    return scratch.Net.forward(self, x.reshape(784, -1).T)


def accumulated_grads(self, g):  # adds to the gradients of the previous backward
    old = dict(getattr(self, "grads", {}))
    scratch.Net.backward(self, g)
    for key, value in old.items():
        self.grads[key] = self.grads[key] + value


def renamed_grads(self, g):
    scratch.Net.backward(self, g)
    self._grad = self.__dict__.pop("grads")


def naive_relu_shared(
    self, *args, **kwargs
):  # a ReLU without the book's shape check, shared
    bugs.init_sharing_one_relu(self, *args, **kwargs)
    self.relu1 = self.relu2 = MaskReLU()


class NotebookOptimizer:  # the original notebook's, with its parameters kept
    def __init__(self, parameters, lr, momentum=0.0):
        self.parameters, self.lr = parameters, lr

    def step(self, gradients):
        for k in self.parameters:
            self.parameters[k] += self.lr * gradients[k]


def dampened(self, name, grad):
    buffer = self.buffers.get(name)
    self.buffers[name] = (
        grad.clone()
        if buffer is None
        else self.momentum * buffer + (1 - self.momentum) * grad
    )
    return self.buffers[name]


def nesterov(self, name, grad):
    return grad + self.momentum * scratch.SGD.direction(self, name, grad)


def first_step_twice(self, name, grad):
    if name not in self.buffers:
        self.buffers[name] = grad.clone()
    self.buffers[name].mul_(self.momentum).add_(grad)
    return self.buffers[name]


def aliased_buffer(self, name, grad):  # keeps the caller's gradient and then changes it
    if name not in self.buffers:
        self.buffers[name] = grad
    else:
        self.buffers[name].mul_(self.momentum).add_(grad)
    return self.buffers[name]


def moving_average(
    self, name, grad
):  # an exponential moving average of the gradients, from 0
    self.buffers[name] = (
        self.momentum * self.buffers.get(name, 0.0) + (1 - self.momentum) * grad
    )
    return self.buffers[name]


def scales_the_gradient(self, name, grad):  # the caller's gradient scaled in place
    return scratch.SGD.direction(self, name, grad.mul_(1.0 + 0.0 * self.lr).mul_(2.0))


def no_input_gradients(self, g):  # input_grad=False for every layer
    g, self.grads["fc3.W"], self.grads["fc3.b"] = self.fc3.backward(g, input_grad=False)
    g = self.relu2.backward(g)


def rebinding_step(self, grads):
    for name in self.parameters:
        self.parameters[name] = self.parameters[name] - self.lr * self.direction(
            name, grads[name]
        )


def first_step_forgotten(self, name, grad):  # the first step's g is not kept in v
    if name not in self.buffers:
        self.buffers[name] = torch.zeros_like(grad)
        return grad
    self.buffers[name].mul_(self.momentum).add_(grad)
    return self.buffers[name]


def fixed_momentum(self, parameters, lr, momentum=0.0):  # μ hard-coded
    scratch.SGD.__init__(self, parameters, lr, 0.9)


class SharedBuffers(scratch.SGD):
    shared = {}  # one dict for every instance

    def __init__(self, parameters, lr, momentum=0.0):
        super().__init__(parameters, lr, momentum)
        self.buffers = SharedBuffers.shared


class LearningRateTwice(HeavyBallSGD):
    def step(self, grads):
        for k, p in self.parameters.items():
            self.u[k] = self.momentum * self.u.get(k, 0.0) + self.lr * grads[k]
            p -= self.lr * self.u[k]


def unshifted_cross_entropy(z, y):
    return -bugs.log_softmax_without_shift(z).gather(1, y[:, None]).mean()


def unshifted_gradient(z, y):
    return (bugs.softmax_without_shift(z) - F.one_hot(y, z.shape[1], z.dtype)) / len(y)


L, LY, NW, OP, T = loss, layers, network, optimizer, train
WRONG = [
    # the loss
    (check_cross_entropy, lambda z, y: bugs.loss_summed(None, z, y), L.SUM),
    (check_cross_entropy, lambda z, y: -F.cross_entropy(z, y), L.LOSS_SIGN),
    (
        check_cross_entropy,
        lambda z, y: -F.log_softmax(z)[:, y].mean(),
        L.LABELS_AS_COLUMNS,
    ),
    (
        check_cross_entropy,
        lambda z, y: -z.gather(1, y[:, None]).mean(),
        L.LOGITS_AS_LOG_PROBABILITIES,
    ),
    (
        check_cross_entropy,
        lambda z, y: -torch.log_softmax(z, 0).gather(1, y[:, None]).mean(),
        L.LOSS_SOFTMAX_OVER_BATCH,
    ),
    (
        check_cross_entropy,
        lambda z, y: -(TF.one_hot(y, z.shape[1]) * F.log_softmax(z)).mean(),
        L.LOSS_OVER_CLASSES,
    ),
    (check_cross_entropy, unshifted_cross_entropy, "overflows"),
    (
        check_cross_entropy,
        lambda z, y: -torch.log(F.softmax(z)).gather(1, y[:, None]).mean(),
        "log of a probability",
    ),
    (
        check_cross_entropy,
        original.NLLLoss(),
        "positional argument",
    ),  # the notebook's, as written
    (check_cross_entropy, original.NLLLoss().forward, "None (is a `return` missing?)"),
    (
        check_cross_entropy,
        lambda z, y: -F.log_softmax(z).gather(1, y[:, None]).squeeze(1),
        "one loss per example",
    ),
    # its gradient
    (
        check_cross_entropy_grad,
        lambda z, y: bugs.gradient_not_divided(None, z, y),
        L.NOT_DIVIDED,
    ),
    (
        check_cross_entropy_grad,
        lambda z, y: -F.cross_entropy_grad(z, y),
        L.GRADIENT_SIGN,
    ),
    (check_cross_entropy_grad, lambda z, y: F.softmax(z) / len(y), L.NO_ONE_HOT),
    (
        check_cross_entropy_grad,
        lambda z, y: -F.one_hot(y, z.shape[1], z.dtype) / (len(y) * F.softmax(z)),
        L.NO_CHAIN,
    ),
    (
        check_cross_entropy_grad,
        lambda z, y: (torch.softmax(z, 0) - F.one_hot(y, z.shape[1], z.dtype)) / len(y),
        L.GRADIENT_SOFTMAX_OVER_BATCH,
    ),
    (
        check_cross_entropy_grad,
        lambda z, y: (F.softmax(z) - F.one_hot(y, z.shape[1], z.dtype)) / z.shape[1],
        L.DIVIDED_BY_K,
    ),
    (
        check_cross_entropy_grad,
        lambda z, y: (F.softmax(z) - F.one_hot(y, z.shape[1], z.dtype)) / z.numel(),
        L.DIVIDED_BY_BK,
    ),
    (check_cross_entropy_grad, unshifted_gradient, "non-finite"),
    (
        check_cross_entropy_grad,
        lambda z, y: F.cross_entropy_grad(z, y).T.contiguous(),
        "shape of its transpose",
    ),
    (
        check_cross_entropy_grad,
        lambda z, y: F.cross_entropy_grad(z, y).float(),
        "keep the dtype",
    ),
    # the softmax Jacobian
    (check_softmax_jacobian, torch.diag, L.NO_OUTER_TERM),
    (check_softmax_jacobian, lambda p: -torch.outer(p, p), L.NO_DIAGONAL_TERM),
    (
        check_softmax_jacobian,
        lambda p: torch.outer(p, p) - torch.diag(p),
        L.JACOBIAN_SIGN,
    ),
    (check_softmax_jacobian, lambda p: torch.diag(p * (1 - p)), L.DIAGONAL_ONLY),
    (check_softmax_jacobian, lambda p: torch.diag(p) - p @ p, L.DOT_FOR_OUTER),
    (check_softmax_jacobian, lambda p: p[:, None] * (1 - p[None, :]), L.NO_DELTA),
    (check_softmax_jacobian, lambda p: torch.diag(p) - p * p, L.SQUARES_FOR_OUTER),
    # the linear layer
    (
        check_linear,
        linear_with(lambda x, W, g: (g @ W, x.T @ g, g.sum(0))),
        "shape of Wᵀ",
    ),
    (
        check_linear,
        linear_with(lambda x, W, g: (g @ W, x.sum(0).expand_as(W), g.sum(0))),
        LY.NO_UPSTREAM_IN_DW,
    ),
    (
        check_linear,
        linear_with(lambda x, W, g: (W, g.T @ x, g.sum(0))),
        "the shape of W",
    ),
    (
        check_linear,
        linear_with(lambda x, W, g: (g @ W, g.T @ x, g.mean(0))),
        LY.MEAN_IN_DB,
    ),
    (
        check_linear,
        linear_with(lambda x, W, g: (g @ W, (g.T @ x) / len(x), g.sum(0))),
        LY.MEAN_IN_DW,
    ),
    (
        check_linear,
        linear_with(lambda x, W, g: (g @ W, -(g.T @ x), g.sum(0))),
        LY.WEIGHT_GRADIENT_SIGN,
    ),
    (
        check_linear,
        linear_with(lambda x, W, g: (-(g @ W), g.T @ x, g.sum(0))),
        LY.INPUT_GRADIENT_SIGN,
    ),
    (check_linear, linear_with(forward=lambda x, W, b: x @ W.T), LY.NO_BIAS),
    (check_linear, KeepsFirstInput, LY.EARLIER_INPUT),
    (
        check_linear,
        original.LinearSkeleton,
        probe.NO_DTYPE_ARGUMENT,
    ),  # the notebook's, as handed out
    (check_linear, TransposedW, "(out, in)"),
    (check_linear, ZeroInit, "same value"),
    (check_linear, IgnoresDtype, "created W of dtype float32"),
    (check_linear, NoDtypeArgument, probe.NO_DTYPE_ARGUMENT),
    (check_linear, CopyOfW, LY.STALE_WEIGHT),
    (check_linear, NormalInit, LY.INITIAL_SCALE_OFF),
    (
        check_linear,
        linear_with(lambda x, W, g: (g.T @ x, g @ W, g.sum(0))),
        LY.GRADIENTS_ORDER,
    ),
    # the ReLU
    (check_relu, relu_with(bugs.relu_backward_is_forward), LY.RELU_OF_GRADIENT),
    (
        check_relu,
        relu_with(lambda self, g: g * (g > 0)),
        LY.RELU_OF_GRADIENT,
    ),  # the same numbers
    (check_relu, DerivativeOneAtZero, LY.ONE_AT_ZERO),
    (
        check_relu,
        relu_with(lambda self, g: (self.h > 0).to(g.dtype)),
        LY.NO_UPSTREAM_IN_RELU,
    ),
    (check_relu, relu_with(lambda self, g: g), LY.NO_MASK),
    (check_relu, SignOfInput, LY.SIGN_OF_INPUT),
    (check_relu, ClassState, LY.SHARED_STATE),
    (check_relu, FirstMask, LY.STALE_MASK),
    (check_relu, SignInPlace, LY.CHANGED_OUTPUT),
    (check_relu, relu_with(lambda self, g: g * (self.h <= 0)), LY.INVERTED_MASK),
    (check_relu, relu_with(lambda self, g: g * self.h), LY.OUTPUT_FOR_MASK),
    # the network
    (
        check_net,
        net_with(backward=bugs.backward_handed_activations),
        NW.ACTIVATIONS_FOR_GRADIENTS,
    ),
    (check_net, net_with(__init__=naive_relu_shared), NW.SHARED_PART),
    (check_net, NotebookBackwardTwoReLUs, NW.LOGITS_GRADIENT_EVERYWHERE),
    (check_net, NotebookNet, "3 mistakes"),
    (check_net, original.NetAsHandedOut, probe.NO_DTYPE_ARGUMENT),
    (check_net, net_with(__init__=copied_parameters), NW.COPIED_PARAMETERS),
    (check_net, net_with(__init__=other_parameters), NW.COPIED_PARAMETERS),
    (check_net, net_with(forward=relu_on_logits), NW.RELU_ON_LOGITS),
    (check_net, net_with(forward=mixed_rows), NW.MIXED_ROWS),
    (check_net, net_with(__init__=normal_init), LY.INITIAL_SCALE_OFF),
    (check_net, net_with(backward=accumulated_grads), NW.ACCUMULATED_GRADS),
    (check_net, net_with(backward=renamed_grads), "._grad is called .grads"),
    (check_net, NetIgnoresDtype, "created fc1.W of dtype float32"),
    (check_net, net_with(backward=no_input_gradients), NW.NO_INPUT_GRADIENT),
    # the optimiser
    (check_sgd, sgd_with(update=bugs.ascending_update), OP.ASCENT),
    (check_sgd, NotebookOptimizer, OP.NOTEBOOK_UPDATE),
    (check_sgd, sgd_with(direction=lambda self, name, grad: grad), OP.NO_MOMENTUM),
    (check_sgd, sgd_with(direction=dampened), OP.DAMPENED),
    (check_sgd, sgd_with(direction=nesterov), OP.NESTEROV),
    (check_sgd, sgd_with(direction=first_step_twice), OP.FIRST_STEP_TWICE),
    (check_sgd, LearningRateTwice, OP.LR_TWICE),
    (check_sgd, sgd_with(direction=aliased_buffer), OP.ALIASED_BUFFER),
    (check_sgd, sgd_with(step=rebinding_step), OP.REBOUND),
    (check_sgd, sgd_with(step=lambda self, grads: None), OP.NO_UPDATE),
    (check_sgd, sgd_with(direction=moving_average), OP.DAMPENED),
    (check_sgd, sgd_with(direction=scales_the_gradient), OP.CHANGED_GRADIENTS),
    (check_sgd, sgd_with(__init__=fixed_momentum), OP.FIXED_MOMENTUM),
    (check_sgd, SharedBuffers, OP.SHARED_BUFFERS),
    (check_sgd, sgd_with(direction=first_step_forgotten), OP.FIRST_STEP_FORGOTTEN),
]


def named(wrong) -> str:
    check, answer, diagnosis = wrong
    label = diagnosis if isinstance(diagnosis, str) else diagnosis.explanation[:40]
    return f"{check.__name__}:{label}"


ALL_MISTAKES = {
    m
    for module in (loss, layers, network, optimizer, probe)
    for m in vars(module).values()
    if isinstance(m, Mistake)
}


@pytest.mark.parametrize("wrong", WRONG, ids=named)
def test_a_wrong_answer_is_named_and_nothing_else_is(wrong):
    check, answer, diagnosis = wrong
    result = check(answer)
    assert not result.passed and not result.pending, result
    if isinstance(diagnosis, Mistake):
        assert result.mistake is diagnosis, result
        assert diagnosis.explanation in result.message
        assert set(diagnosis.sections) <= set(result.sections)
    else:
        assert diagnosis in result.message, result
    others = [
        m
        for m in ALL_MISTAKES
        if m is not diagnosis and m.explanation in result.message
    ]
    assert not others or diagnosis == "3 mistakes", (result, others)


def test_the_original_notebooks_net_gets_all_three_of_its_mistakes():
    message = check_net(NotebookNet).message
    for mistake in (
        NW.SHARED_PART,
        NW.FORWARD_IN_BACKWARD,
        NW.LOGITS_GRADIENT_EVERYWHERE,
    ):
        assert mistake.explanation in message


def test_every_mistake_a_check_names_is_in_the_catalogue():
    tested = {d for _, _, d in WRONG if isinstance(d, Mistake)}
    untested = {
        m.explanation[:60]
        for m in ALL_MISTAKES - tested
        if m
        not in (
            probe.SHADOWED_LOSS,
            probe.SHAPES_OF_LINEAR,
            NW.WRONG_RETURN,
            NW.SKIPPED_PART,
            NW.FORWARD_IN_BACKWARD,
        )
    }
    assert not untested


def test_a_wrong_return_and_a_skipped_part_are_located():
    with bugs.relu_forward_in_backward():
        assert check_net(scratch.Net).mistake is NW.WRONG_RETURN

    def skips_relu2(self, g):
        g, self.grads["fc3.W"], self.grads["fc3.b"] = self.fc3.backward(g)
        g, self.grads["fc2.W"], self.grads["fc2.b"] = self.fc2.backward(
            g
        )  # relu2's backward skipped
        g = self.relu1.backward(g)
        _, self.grads["fc1.W"], self.grads["fc1.b"] = self.fc1.backward(
            g, input_grad=False
        )

    assert check_net(net_with(backward=skips_relu2)).mistake is NW.SKIPPED_PART


# ---- the training step ----------------------------------------------------------------------


def shadowing_train_step(net, criterion, optimizer):
    loss = criterion

    def step(images, labels):
        nonlocal loss
        outputs = net.forward(images)
        loss = loss(outputs, labels)
        net.backward(loss.backward(outputs, labels))
        optimizer.step(net.grads)
        return loss.item()

    return step


def test_training_mistakes_fail_at_the_first_steps():
    result = check_training(shadowing_train_step)
    assert result.mistake is probe.SHADOWED_LOSS, result

    def tensor_loss(net, criterion, optimizer):
        step = scratch.make_scratch_step(net, criterion, optimizer)
        return lambda images, labels: torch.tensor(step(images, labels))

    assert "Python float" in check_training(tensor_loss).message

    def no_update(net, criterion, optimizer):
        def step(images, labels):
            logits = net.forward(images)
            net.backward(criterion.backward(logits, labels))
            return criterion.forward(logits, labels).item()

        return step

    assert "did not change" in check_training(no_update).message

    def loss_divided_again(net, criterion, optimizer):
        step = scratch.make_scratch_step(net, criterion, optimizer)
        return lambda images, labels: step(images, labels) / len(labels)

    assert check_training(loss_divided_again).mistake is T.LOSS_DIVIDED_AGAIN


def wrong_step(update):
    """make_scratch_step with the step's last two lines replaced by ``update``."""

    def make_step(net, criterion, optimizer):
        def step(images, labels):
            logits = net.forward(images)
            loss = criterion.forward(logits, labels).item()
            update(net, criterion, optimizer, logits, labels)
            return loss

        return step

    return make_step


@pytest.mark.parametrize(
    "update, mistake",
    [
        (
            lambda net, criterion, optimizer, logits, labels: (
                net.backward(logits),
                optimizer.step(net.grads),
            ),
            T.LOGITS_FOR_GRADIENT,
        ),
        (
            lambda net, criterion, optimizer, logits, labels: (
                net.backward(criterion.backward(logits, labels)),
                optimizer.step(net.parameters),
            ),
            T.PARAMETERS_FOR_GRADIENTS,
        ),
        (
            lambda net, criterion, optimizer, logits, labels: (
                net.backward(criterion.backward(logits, labels)),
                optimizer.step(net.grads),
                optimizer.step(net.grads),
            ),
            T.TWO_UPDATES,
        ),
        (
            lambda net, criterion, optimizer, logits, labels: (
                net.backward(len(labels) * criterion.backward(logits, labels)),
                optimizer.step(net.grads),
            ),
            T.GRADIENT_OF_SUM,
        ),
        (
            lambda net, criterion, optimizer, logits, labels: (
                net.backward(criterion.backward(torch.softmax(logits, 1), labels)),
                optimizer.step(net.grads),
            ),
            T.PROBABILITIES_FOR_LOGITS,
        ),
        (
            lambda net, criterion, optimizer, logits, labels: (
                net.backward(criterion.backward(logits, labels)),
                scratch.SGD(net.parameters, 0.001, 0.9).step(net.grads),
            ),
            T.FRESH_OPTIMISER,
        ),
    ],
    ids=["logits", "parameters", "twice", "sum", "probabilities", "fresh optimiser"],
)
def test_a_wrong_training_step_is_named_at_the_step_it_shows(update, mistake):
    result = check_training(wrong_step(update))
    assert result.mistake is mistake, result
    step = 2 if mistake is T.FRESH_OPTIMISER else 1  # a first step is right either way
    assert f"at step {step}" in result.message, result


def test_training_stops_at_the_first_nan(train_tensors):
    class NaNNet(scratch.Net):
        def forward(self, x):
            return super().forward(x) * float("nan")

    result = check_training(scratch.make_scratch_step, NaNNet)
    assert "loss became nan at step 1 of epoch 1" in result.message, result


# ---- whatever the learner's code does, the check neither raises nor hangs --------------------


def test_a_stub_is_not_implemented_yet():
    def stub(*args):
        raise NotImplementedError("your code here")

    class Stub:
        def __init__(self, *args, **kwargs):
            raise NotImplementedError("your code here")

    for exercise in BOOK_EXERCISES.values():
        result = exercise.check(Stub if exercise.subject[0].isupper() else stub)
        assert (
            result.pending
            and not result.passed
            and "not implemented yet" in repr(result)
        ), result
        assert "not implemented yet" in result._repr_html_()


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda z, y: None, "None"),
        (lambda z, y: 1 / 0, "ZeroDivisionError"),
        (lambda z, y: np.zeros((len(y), z.shape[1])), "ndarray"),
        (lambda z, y: F.cross_entropy_grad(z, y)[:, :3], "shape"),
        (lambda z, y: F.cross_entropy_grad(z, y) * float("nan"), "non-finite"),
        (lambda z, y: z.sub_(z) + 0.1, "changed its argument 1 in place"),
        (lambda z, y: torch.ones_like(z), "relative error"),
        (
            lambda z, y: torch.ones(len(y), z.shape[1], dtype=torch.long),
            "floating-point",
        ),
    ],
)
def test_arbitrary_answers_get_a_useful_message(answer, phrase):
    result = check_cross_entropy_grad(answer)
    assert not result.passed and phrase in result.message, result


def off(method):
    """A method whose tensor results are all 0.5 too large: an arbitrary wrong answer."""

    def wrong(self, *args):
        value = method(self, *args)
        return (
            tuple(v + 0.5 for v in value) if isinstance(value, tuple) else value + 0.5
        )

    return wrong


def twice_the_step(self, param, direction):
    param.add_(direction, alpha=-2 * self.lr)


@pytest.mark.parametrize(
    "check, wrong",
    [
        (check_cross_entropy, lambda z, y: F.cross_entropy(z, y) + 0.5),
        (check_cross_entropy_grad, lambda z, y: F.cross_entropy_grad(z, y) + 0.5),
        (check_softmax_jacobian, lambda p: F.softmax_jacobian(p) + 0.5),
        (
            check_linear,
            type("Off", (scratch.Linear,), {"forward": off(scratch.Linear.forward)}),
        ),
        (
            check_linear,
            type("Off", (scratch.Linear,), {"backward": off(scratch.Linear.backward)}),
        ),
        (
            check_relu,
            type("Off", (scratch.ReLU,), {"backward": off(scratch.ReLU.backward)}),
        ),
        (check_net, type("Off", (scratch.Net,), {"forward": off(scratch.Net.forward)})),
        (check_sgd, type("Off", (scratch.SGD,), {"update": twice_the_step})),
    ],
)
def test_an_arbitrary_wrong_answer_gets_the_quantity_and_the_error_and_no_diagnosis(
    check, wrong
):
    result = check(wrong)
    assert not result.passed and result.mistake is None, result
    for phrase in ("is off", "relative error", "largest difference"):
        assert phrase in result.message, result


@pytest.mark.parametrize("name", list(BOOK_EXERCISES))
def test_no_check_raises_whatever_it_is_given(name):
    check, subject = EXERCISES[name].check, EXERCISES[name].subject
    for nonsense in (None, 42, object, torch.zeros(3)):
        result = check(nonsense)
        assert not result.passed and result.message, result
    assert f"call {name}({subject})" in check().message
    if subject[0].isupper():  # an instance where the class belongs
        instance = book(name)(
            *([] if subject != "Linear" else [3, 2]),
            **({} if subject != "SGD" else {"parameters": {}, "lr": 0.1}),
        )
        assert "takes the class" in check(instance).message
    else:  # a result where the function belongs
        assert (
            "not a float32 tensor of shape (3,) (its result?)"
            in check(torch.zeros(3)).message
        )


def test_an_endless_loop_ends_at_the_time_limit(monkeypatch):
    monkeypatch.setattr(check_cross_entropy, "time_limit", 0.5)

    def endless(z, y):
        while True:
            pass

    result = check_cross_entropy(endless)
    assert (
        "did not return within 0.5 s" in result.message
        and "endless(logits, labels)" in result.message
    )


ENDLESS = textwrap.dedent("""
    from mnistbook.workbook import check_relu
    check_relu.time_limit = 0.5
    class ReLU:
        def forward(self, z):
            while True:
                pass
    print(repr(check_relu(ReLU)))
""")


def test_an_endless_loop_ends_in_a_plain_interpreter_and_in_a_kernel():
    done = subprocess.run(
        [sys.executable, "-c", ENDLESS], capture_output=True, text=True, timeout=60
    )
    assert "did not return within 0.5 s" in done.stdout, done
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell(ENDLESS)])
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    [output] = notebook.cells[0].outputs
    assert "did not return within 0.5 s" in output.text


def test_the_seed_of_the_inputs_moves_every_random_input():
    seen = []

    def remembers(z, y):
        seen.append(z.clone())
        return F.cross_entropy(z, y)

    check_cross_entropy(remembers)
    with probe.inputs_seed(17):
        assert check_cross_entropy(remembers).passed
    assert not torch.equal(seen[0], seen[3])


# ---- what a result looks like, and where it links -------------------------------------------


def test_result_displays():
    result = check_relu(relu_with(bugs.relu_backward_is_forward))
    assert repr(result).startswith("check_relu: ✗ failed") and "read:" in repr(result)
    assert '<a href="failure-modes.html#failure-relu-forward' in result._repr_html_()
    assert "[Failure modes 3" in result._repr_markdown_()
    both = summary(check_relu(scratch.ReLU), result)
    assert not both.passed and not both.pending and both.message.count("\n") == 2


def test_every_link_of_a_message_points_at_a_label_of_the_book():
    from pathlib import Path

    from mnistbook.workbook import links

    book = Path(__file__).resolve().parents[1] / "book"
    for section in links.SECTIONS.values():
        assert f"({section.label})=\n" in (book / f"{section.page}.md").read_text(), (
            section
        )


def test_messages_link_to_the_published_book_where_the_twins_say_so():
    code = "from mnistbook.workbook import links; print(links.book_url('backprop', 'backprop-relu'))"
    environ = {
        **os.environ,
        "MNISTBOOK_BOOK_URL": "https://someone.github.io/fork/book/",
    }
    shown = subprocess.run(
        [sys.executable, "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert shown == "https://someone.github.io/fork/book/backprop.html#backprop-relu"


def test_a_not_implemented_error_from_torch_is_reported_as_an_error_not_as_a_stub():
    def softmax_jacobian(p):  # Python's bool minus a bool tensor: torch refuses it
        mask = torch.eye(len(p), dtype=torch.bool)
        return p[:, None] * (True - mask) - torch.outer(p, p)

    result = check_softmax_jacobian(softmax_jacobian)
    assert not result.passed and "not implemented yet" not in str(result)
    assert "NotImplementedError" in str(result), str(result)

    def stub(p):
        raise NotImplementedError("your code here")

    assert "not implemented yet" in str(check_softmax_jacobian(stub))

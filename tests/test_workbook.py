"""The workbook's checks: each passes the book's code and an independent correct version, and
fails with its specific message on every known mistake it names, and usefully on anything else."""

import os
import numpy as np
import pytest
import torch

from mnistbook import bugs, functional as F, original, scratch
from mnistbook.workbook import (check_cross_entropy, check_cross_entropy_grad, check_linear, check_net,
                                check_relu, check_sgd, check_softmax_jacobian, check_training, summary)


def failed_with(result, *phrases, link=None):
    assert not result.passed, result
    assert not result.pending, result
    for phrase in phrases:
        assert phrase in result.message, result
    if link:
        assert any(link in s.url for s in result.sections), result
    return result


# ---- independent correct implementations ------------------------------------------------------

def einsum_cross_entropy(z, y):
    logp = z - torch.logsumexp(z, dim=1, keepdim=True)
    return -torch.einsum("bk,bk->", logp, torch.nn.functional.one_hot(y, z.shape[1]).to(z.dtype)) / len(y)


def einsum_cross_entropy_grad(z, y):
    return (torch.softmax(z, 1) - torch.nn.functional.one_hot(y, z.shape[1]).to(z.dtype)) / len(y)


def einsum_jacobian(p):
    return torch.einsum("i,ij->ij", p, torch.eye(len(p), dtype=p.dtype)) - torch.einsum("i,j->ij", p, p)


class EinsumLinear:
    def __init__(self, dim_in, dim_out):
        self.W = (torch.rand(dim_out, dim_in) * 2 - 1) / dim_in ** 0.5
        self.b = torch.zeros(dim_out)

    def forward(self, x):
        self.x = x
        return torch.einsum("bi,oi->bo", x, self.W) + self.b

    def backward(self, g):
        return (torch.einsum("bo,oi->bi", g, self.W), torch.einsum("bo,bi->oi", g, self.x),
                torch.einsum("bo->o", g))


class MaskReLU:
    def forward(self, z):
        self.mask = z > 0
        return torch.where(self.mask, z, torch.zeros_like(z))

    def backward(self, g):
        return g * self.mask


class ListNet:
    """The same network written with a list of layers."""

    def __init__(self):
        sizes = [784, 120, 256, 10]
        self.layers = [EinsumLinear(a, b) for a, b in zip(sizes, sizes[1:])]
        self.relus = [MaskReLU(), MaskReLU()]
        self.parameters = {f"fc{i + 1}.{p}": getattr(layer, p) for i, layer in enumerate(self.layers) for p in "Wb"}

    def forward(self, x):
        x = x.reshape(len(x), -1)
        for layer, relu in zip(self.layers, self.relus):
            x = relu.forward(layer.forward(x))
        return self.layers[-1].forward(x)

    def backward(self, g):
        self.grads = {}
        for i in (2, 1, 0):
            g, self.grads[f"fc{i + 1}.W"], self.grads[f"fc{i + 1}.b"] = self.layers[i].backward(g)
            if i:
                g = self.relus[i - 1].backward(g)


class LoopSGD:
    def __init__(self, parameters, lr, momentum=0.0):
        self.parameters, self.lr, self.momentum, self.velocity = parameters, lr, momentum, {}

    def step(self, grads):
        for k, p in self.parameters.items():
            v = self.velocity.get(k)
            v = grads[k].clone() if v is None else self.momentum * v + grads[k]
            self.velocity[k] = v
            p -= self.lr * v


@pytest.mark.parametrize("check, implementations", [
    (check_cross_entropy, [F.cross_entropy, einsum_cross_entropy]),
    (check_cross_entropy_grad, [F.cross_entropy_grad, einsum_cross_entropy_grad]),
    (check_softmax_jacobian, [F.softmax_jacobian, einsum_jacobian]),
    (check_linear, [scratch.Linear, EinsumLinear]),
    (check_relu, [scratch.ReLU, MaskReLU]),
    (check_net, [scratch.Net, ListNet]),
    (check_sgd, [scratch.SGD, LoopSGD]),
], ids=lambda v: getattr(v, "__name__", ""))
def test_correct_implementations_pass(check, implementations):
    for implementation in implementations:
        result = check(implementation)
        assert result.passed, result
        assert "\n" not in result.message and len(result.message) < 200  # a pass is one short line


def test_a_stub_is_not_implemented_yet():
    def stub(*args):
        raise NotImplementedError("your code here")

    class Stub:
        def __init__(self, *args):
            raise NotImplementedError("your code here")

    for check, target in [(check_cross_entropy, stub), (check_softmax_jacobian, stub), (check_linear, Stub),
                          (check_relu, Stub), (check_net, Stub), (check_sgd, Stub), (check_training, stub)]:
        result = check(target)
        assert result.pending and not result.passed and "not implemented yet" in repr(result), result
        assert "not implemented yet" in result._repr_html_()


# ---- the loss --------------------------------------------------------------------------------

def test_loss_mistakes():
    failed_with(check_cross_entropy(lambda z, y: bugs.loss_summed(None, z, y)), "6 times the mean",
                link="likelihood.html#the-loss-of-a-mini-batch-the-mean")
    unshifted = lambda z, y: -bugs.log_softmax_without_shift(z).gather(1, y[:, None]).mean()  # noqa: E731
    failed_with(check_cross_entropy(unshifted), "on logits of ±1000", "overflows",
                link="failure-modes.html#softmax-without-subtracting-the-maximum")
    failed_with(check_cross_entropy(lambda z, y: -torch.log(F.softmax(z)).gather(1, y[:, None]).mean()),
                "±1000", "log of a probability")
    failed_with(check_cross_entropy(lambda z, y: -F.cross_entropy(z, y)), "sign is flipped")
    failed_with(check_cross_entropy(lambda z, y: -z.gather(1, y[:, None]).mean()), "log-probabilities",
                "NLLLoss")
    failed_with(check_cross_entropy(original.NLLLoss()), "TypeError", "positional argument")  # as written
    failed_with(check_cross_entropy(original.NLLLoss().forward), "None (is a `return` missing?)")
    failed_with(check_cross_entropy(lambda z, y: -F.log_softmax(z).gather(1, y[:, None]).squeeze(1)),
                "shape (6,)", "mean")


def test_loss_gradient_mistakes():
    failed_with(check_cross_entropy_grad(lambda z, y: bugs.gradient_not_divided(None, z, y)),
                "6 times too large", "1/B", link="failure-modes.html#the-gradient-not-divided-by-the-batch-size")
    unshifted = lambda z, y: (bugs.softmax_without_shift(z) - F.one_hot(y, z.shape[1], z.dtype)) / len(y)  # noqa: E731
    failed_with(check_cross_entropy_grad(unshifted), "non-finite", "±1000", "overflows")
    failed_with(check_cross_entropy_grad(lambda z, y: -F.cross_entropy_grad(z, y)), "sign is flipped")
    failed_with(check_cross_entropy_grad(lambda z, y: F.softmax(z) / len(y)), "one-hot labels are missing")
    no_chain = lambda z, y: -F.one_hot(y, z.shape[1], z.dtype) / (len(y) * F.softmax(z))  # noqa: E731
    failed_with(check_cross_entropy_grad(no_chain), "chain through the softmax is missing")
    failed_with(check_cross_entropy_grad(lambda z, y: F.cross_entropy_grad(z, y).T.contiguous()),
                "shape of its transpose")


def test_softmax_jacobian_mistakes():
    failed_with(check_softmax_jacobian(torch.diag), "−p_i p_j term is missing",
                link="softmax.html#the-jacobian-of-the-softmax")
    failed_with(check_softmax_jacobian(lambda p: -torch.outer(p, p)), "diagonal term")
    failed_with(check_softmax_jacobian(lambda p: torch.outer(p, p) - torch.diag(p)), "sign is flipped")
    failed_with(check_softmax_jacobian(lambda p: torch.diag(p * (1 - p))), "only the diagonal")


# ---- the layers ------------------------------------------------------------------------------

def linear_with(backward=None, forward=None):
    class Buggy(scratch.Linear):
        pass
    if backward:
        Buggy.backward = lambda self, g: backward(self.x, self.W, g)
    if forward:
        Buggy.forward = lambda self, x: (setattr(self, "x", x), forward(x, self.W, self.b))[1]
    return Buggy


def test_linear_mistakes():
    failed_with(check_linear(linear_with(lambda x, W, g: (g @ W, x.T @ g, g.sum(0)))),
                "shape of Wᵀ", link="backprop.html#a-linear-layer")
    failed_with(check_linear(linear_with(lambda x, W, g: (g @ W, x.sum(0).expand_as(W), g.sum(0)))),
                "ignores the upstream gradient", "1ᵀz")
    failed_with(check_linear(linear_with(lambda x, W, g: (W, g.T @ x, g.sum(0)))), "the shape of W", "G W")
    failed_with(check_linear(linear_with(lambda x, W, g: (g @ W, g.T @ x, g.mean(0)))), "∂L/∂b", "mean")
    failed_with(check_linear(linear_with(lambda x, W, g: (g @ W, -(g.T @ x), g.sum(0)))), "∂L/∂W", "sign")
    failed_with(check_linear(linear_with(forward=lambda x, W, b: x @ W.T)), "bias is missing")

    class KeepsFirstInput(scratch.Linear):
        def forward(self, x):
            if self.x is None:
                self.x = x
            return F.linear(x, self.W, self.b)

    failed_with(check_linear(KeepsFirstInput), "input of an earlier forward")
    failed_with(check_linear(original.LinearSkeleton), "tensor attribute .W")  # the notebook's, as handed out

    class TransposedW(scratch.Linear):
        def __init__(self, dim_in, dim_out):
            super().__init__(dim_in, dim_out)
            self.W = self.W.T.contiguous()

    failed_with(check_linear(TransposedW), "(out, in)")

    class ZeroInit(scratch.Linear):
        def __init__(self, dim_in, dim_out):
            super().__init__(dim_in, dim_out)
            self.W.zero_()

    failed_with(check_linear(ZeroInit), "same value", "at random")


def relu_with(backward):
    return type("Buggy", (scratch.ReLU,), {"backward": backward})


def test_relu_mistakes():
    failed_with(check_relu(relu_with(bugs.relu_backward_is_forward)), "max(g, 0)",
                link="failure-modes.html#the-relu-s-forward-where-its-backward-belongs")
    failed_with(check_relu(relu_with(lambda self, g: g * (g > 0))), "max(g, 0)")

    class DerivativeOneAtZero(MaskReLU):
        def forward(self, z):
            self.z = z
            return super().forward(z)

        def backward(self, g):
            return g * (self.z >= 0)

    failed_with(check_relu(DerivativeOneAtZero), "z = 0")
    failed_with(check_relu(relu_with(lambda self, g: (self.h > 0).to(g.dtype))), "upstream gradient is missing")
    failed_with(check_relu(relu_with(lambda self, g: g)), "mask is missing")

    class ClassState:
        mask = None

        def forward(self, z):
            ClassState.mask = z > 0  # shared by every instance
            return z.clamp_min(0)

        def backward(self, g):
            return g * ClassState.mask

    failed_with(check_relu(ClassState), "share their memory", link="#one-relu-shared-by-two-layers")


# ---- the network -----------------------------------------------------------------------------

def net_with(**methods):
    return type("Buggy", (scratch.Net,), methods)


def test_net_mistakes():
    failed_with(check_net(net_with(backward=bugs.backward_handed_activations)), "fc3's are right",
                "not that layer's input or output",
                link="failure-modes.html#backward-is-handed-the-activations-instead-of-the-gradient")
    with bugs.shared_relu():
        failed_with(check_net(scratch.Net), "shared by two layers", link="#one-relu-shared-by-two-layers")

    def naive_relu_shared(self, *args, **kwargs):  # a ReLU without the book's shape check, shared
        bugs.init_sharing_one_relu(self, *args, **kwargs)
        self.relu1 = self.relu2 = MaskReLU()

    failed_with(check_net(net_with(__init__=naive_relu_shared)), "120", "256", "one ReLU shared",
                link="#one-relu-shared-by-two-layers")

    class NotebookNet(original.Net):  # the original notebook's Net, its gradients under the book's name
        grads = property(lambda self: self._grad)

    failed_with(check_net(NotebookNet), "gradient the layer above returned",
                link="#backward-is-handed-the-activations-instead-of-the-gradient")
    failed_with(check_net(original.NetAsHandedOut), "W")

    def copied_parameters(self, *args, **kwargs):
        scratch.Net.__init__(self, *args, **kwargs)
        self.parameters = {k: v.clone() for k, v in self.parameters.items()}

    failed_with(check_net(net_with(__init__=copied_parameters)), "copies", link="scratch.html#the-network")

    def renamed_grads(self, g):
        scratch.Net.backward(self, g)
        self._grad = self.__dict__.pop("grads")

    failed_with(check_net(net_with(backward=renamed_grads)), "._grad is called .grads")


# ---- the optimiser ---------------------------------------------------------------------------

def sgd_with(**methods):
    return type("Buggy", (scratch.SGD,), methods)


def test_sgd_mistakes():
    failed_with(check_sgd(sgd_with(update=bugs.ascending_update)), "gradient ascent",
                link="failure-modes.html#the-optimiser-adds-the-gradient")

    class NotebookOptimizer:  # the original notebook's, with its parameters kept
        def __init__(self, parameters, lr, momentum=0.0):
            self.parameters, self.lr = parameters, lr

        def step(self, gradients):
            for k in self.parameters:
                self.parameters[k] += self.lr * gradients[k]

    failed_with(check_sgd(NotebookOptimizer), "gradient ascent")
    failed_with(check_sgd(sgd_with(direction=lambda self, name, grad: grad)), "momentum is ignored")

    def dampened(self, name, grad):
        buffer = self.buffers.get(name)
        self.buffers[name] = grad.clone() if buffer is None else self.momentum * buffer + (1 - self.momentum) * grad
        return self.buffers[name]

    failed_with(check_sgd(sgd_with(direction=dampened)), "dampened", link="pytorch.html#a-loss-function")

    def nesterov(self, name, grad):
        buffer = scratch.SGD.direction(self, name, grad)
        return grad + self.momentum * buffer

    failed_with(check_sgd(sgd_with(direction=nesterov)), "Nesterov")

    def rebinding_step(self, grads):
        for name in self.parameters:
            self.parameters[name] = self.parameters[name] - self.lr * self.direction(name, grads[name])

    failed_with(check_sgd(sgd_with(step=rebinding_step)), "not changed in place", "new tensor with the right values",
                link="scratch.html#the-optimiser")

    def aliased_buffer(self, name, grad):  # keeps the caller's gradient and then changes it
        if name not in self.buffers:
            self.buffers[name] = grad
        else:
            self.buffers[name].mul_(self.momentum).add_(grad)
        return self.buffers[name]

    assert check_sgd(sgd_with(direction=aliased_buffer)).passed  # harmless to the update: no false alarm


# ---- the training step -----------------------------------------------------------------------

def shadowing_train_step(net, criterion, optimizer):
    loss = criterion

    def step(images, labels):
        nonlocal loss
        logits = net.forward(images)
        loss = loss.forward(logits, labels)
        net.backward(loss.backward(logits, labels))
        optimizer.step(net.grads)
        return loss.item()

    return step


def test_training_mistakes_fail_at_the_first_steps():
    failed_with(check_training(shadowing_train_step), "Tensor.backward", "criterion",
                link="failure-modes.html#the-loss-object-shadowed-by-its-own-value")

    def tensor_loss(net, criterion, optimizer):
        step = scratch.make_scratch_step(net, criterion, optimizer)
        return lambda images, labels: torch.tensor(step(images, labels))

    failed_with(check_training(tensor_loss), "Python float")

    def no_update(net, criterion, optimizer):
        def step(images, labels):
            logits = net.forward(images)
            net.backward(criterion.backward(logits, labels))
            return criterion.forward(logits, labels).item()
        return step

    failed_with(check_training(no_update), "did not change")


def test_training_stops_at_the_first_nan(train_tensors):
    class NaNNet(scratch.Net):
        def forward(self, x):
            return super().forward(x) * float("nan")

    failed_with(check_training(scratch.make_scratch_step, NaNNet), "loss became nan at step 1 of epoch 1")


# ---- whatever the learner's code does, the check does not raise ----------------------------------

@pytest.mark.parametrize("answer, phrase", [
    (lambda z, y: None, "None"),
    (lambda z, y: 1 / 0, "ZeroDivisionError"),
    (lambda z, y: np.zeros((len(y), z.shape[1])), "ndarray"),
    (lambda z, y: F.cross_entropy_grad(z, y).float(), "dtype"),
    (lambda z, y: F.cross_entropy_grad(z, y)[:, :3], "shape"),
    (lambda z, y: F.cross_entropy_grad(z, y) * float("nan"), "non-finite"),
    (lambda z, y: z.sub_(z) + 0.1, "changed its argument 1 in place"),
    (lambda z, y: torch.ones_like(z), "relative error"),
    (lambda z, y: torch.ones(len(y), z.shape[1], dtype=torch.long), "floating-point"),
])
def test_arbitrary_answers_get_a_useful_message(answer, phrase):
    failed_with(check_cross_entropy_grad(answer), phrase)


def test_generic_failure_says_which_quantity_and_by_how_much():
    result = failed_with(check_linear(linear_with(lambda x, W, g: (g @ W, g.T @ x + 0.5, g.sum(0)))),
                         "∂L/∂W", "relative error", "largest difference", "expected")
    assert "error" in repr(result)


def test_result_displays():
    result = check_relu(relu_with(bugs.relu_backward_is_forward))
    assert repr(result).startswith("check_relu: ✗ failed") and "read:" in repr(result)
    assert '<a href="failure-modes.html#' in result._repr_html_()
    assert "[Failure modes 3" in result._repr_markdown_()
    both = summary(check_relu(scratch.ReLU), result)
    assert not both.passed and not both.pending and both.message.count("\n") == 2


def test_every_link_of_a_message_points_at_a_heading_of_the_book():
    import re
    from pathlib import Path

    from docutils.nodes import make_id

    from mnistbook.workbook.links import SECTIONS

    book = Path(__file__).resolve().parents[1] / "book"
    for section in SECTIONS.values():
        headings = re.findall(r"^#+ (.+)$", (book / f"{section.page}.md").read_text(), re.MULTILINE)
        assert section.anchor in {make_id(h) for h in headings}, section


def off(method):
    """A method whose tensor results are all 0.5 too large: an arbitrary wrong answer."""
    def wrong(self, *args):
        value = method(self, *args)
        return tuple(v + 0.5 for v in value) if isinstance(value, tuple) else value + 0.5
    return wrong


def twice_the_step(self, param, direction):
    param.add_(direction, alpha=-2 * self.lr)


@pytest.mark.parametrize("check, wrong", [
    (check_cross_entropy, lambda z, y: F.cross_entropy(z, y) + 0.5),
    (check_cross_entropy_grad, lambda z, y: F.cross_entropy_grad(z, y) + 0.5),
    (check_softmax_jacobian, lambda p: F.softmax_jacobian(p) + 0.5),
    (check_linear, type("Off", (scratch.Linear,), {"forward": off(scratch.Linear.forward)})),
    (check_linear, type("Off", (scratch.Linear,), {"backward": off(scratch.Linear.backward)})),
    (check_relu, type("Off", (scratch.ReLU,), {"backward": off(scratch.ReLU.backward)})),
    (check_net, type("Off", (scratch.Net,), {"forward": off(scratch.Net.forward)})),
    (check_sgd, type("Off", (scratch.SGD,), {"update": twice_the_step})),
])
def test_an_arbitrary_wrong_answer_gets_the_quantity_and_the_error(check, wrong):
    failed_with(check(wrong), "is off", "relative error", "largest difference")


@pytest.mark.parametrize("check", [check_cross_entropy, check_cross_entropy_grad, check_softmax_jacobian,
                                   check_linear, check_relu, check_net, check_sgd, check_training])
def test_no_check_raises_whatever_it_is_given(check):
    for nonsense in (None, 42, object):
        failed_with(check(nonsense))


def test_messages_link_to_the_published_book_where_the_twins_say_so():
    import subprocess
    import sys

    code = "from mnistbook.workbook import links; print(links.book_url('backprop', 'a-relu'))"
    environ = {**os.environ, "MNISTBOOK_BOOK_URL": "https://someone.github.io/fork/book/"}
    shown = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert shown == "https://someone.github.io/fork/book/backprop.html#a-relu"

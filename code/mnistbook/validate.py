"""Input checks shared by the package's public functions: say what was expected and what
came."""

import functools

import torch
from torch import Tensor


def _describe(x) -> str:
    if isinstance(x, Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"


def floating(x, where: str, name: str = "input") -> None:
    """A floating-point tensor, or a TypeError."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(
            f"{where}: {name} must be a floating-point tensor, got {_describe(x)}"
        )


def matrix(x, columns: int, where: str, name: str = "input") -> None:
    """A float tensor of shape (B, columns) with B ≥ 1, or a TypeError/ValueError."""
    floating(x, where, name)
    if x.dim() != 2 or x.shape[1] != columns or x.shape[0] == 0:
        raise ValueError(
            f"{where}: {name} must have shape (B, {columns}) with B ≥ 1, got "
            f"{tuple(x.shape)}"
        )


def images(x, where: str) -> Tensor:
    """A batch of MNIST images, (B, 1, 28, 28) or already flat (B, 784); returns it
    flat."""
    floating(x, where, "images")
    if x.dim() == 4 and tuple(x.shape[1:]) == (1, 28, 28) and x.shape[0] > 0:
        return x.reshape(x.shape[0], 784)
    if x.dim() == 2 and x.shape[1] == 784 and x.shape[0] > 0:
        return x
    raise ValueError(
        f"{where}: images must have shape (B, 1, 28, 28) or (B, 784) with B ≥ 1, "
        f"got {tuple(x.shape)}"
    )


def labels(y, batch: int, num_classes: int, where: str) -> None:
    """Integer class labels of shape (batch,) with values in [0, num_classes)."""
    if not isinstance(y, Tensor) or y.dtype not in (
        torch.int64,
        torch.int32,
        torch.int16,
        torch.uint8,
    ):
        raise TypeError(
            f"{where}: labels must be an integer tensor (int64), got {_describe(y)}"
        )
    if tuple(y.shape) != (batch,):
        raise ValueError(
            f"{where}: labels must have shape ({batch},), got {tuple(y.shape)}"
        )
    low, high = (int(v) for v in y.aminmax())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{where}: labels must lie in [0, {num_classes - 1}], got values from "
            f"{low} to {high}"
        )


def same_shape(x: Tensor, expected: tuple, where: str, name: str) -> None:
    """x has exactly the expected shape, or a ValueError naming both."""
    if tuple(x.shape) != tuple(expected):
        raise ValueError(
            f"{where}: {name} must have shape {tuple(expected)}, got {tuple(x.shape)}"
        )


def after_forward(kept, where: str) -> None:
    """A layer's backward needs what its forward kept: a RuntimeError if forward has not run."""
    if kept is None:
        raise RuntimeError(
            f"{where}: backward() called before forward(); run forward() on this batch first"
        )


# ---- the input checks of the from-scratch classes, applied by `guarded` ------------------


def guarded(**checks):
    """Class decorator: before each method named in ``checks``, run its check on the same
    arguments, ``check(self, *args)``.

    The checks stay out of the method bodies, so the code the book shows holds only the
    math; a wrong input still gets an error that names what was expected and what came."""

    def decorate(cls):
        for name, check in checks.items():
            method = getattr(cls, name)

            @functools.wraps(method)
            def checked(self, *args, _method=method, _check=check, **kwargs):
                _check(self, *args, **kwargs)
                return _method(self, *args, **kwargs)

            setattr(cls, name, checked)
        return cls

    return decorate


def linear_input(layer, x, *_) -> None:
    matrix(x, layer.W.shape[1], "Linear.forward")


def linear_upstream(layer, grad_out, *_, **__) -> None:
    after_forward(layer.x, "Linear.backward")
    same_shape(
        grad_out, (len(layer.x), layer.W.shape[0]), "Linear.backward", "grad_out"
    )


def relu_input(relu, z) -> None:
    floating(z, "ReLU.forward")


def relu_upstream(relu, grad_out) -> None:
    after_forward(relu.h, "ReLU.backward")
    if grad_out.shape != relu.h.shape:
        raise ValueError(
            f"ReLU.backward: grad_out has shape {tuple(grad_out.shape)} but the last "
            f"forward() saw {tuple(relu.h.shape)} — is one ReLU instance shared by two "
            "layers?"
        )


def loss_inputs(criterion, logits, labels_) -> None:
    where = f"{type(criterion).__name__}"
    floating(logits, where, "logits")
    if logits.dim() != 2 or logits.shape[0] == 0:
        raise ValueError(
            f"{where}: logits must have shape (B, K) with B ≥ 1, got "
            f"{tuple(logits.shape)}"
        )
    labels(labels_, logits.shape[0], logits.shape[1], where)


def images_input(net, x) -> None:
    images(x, f"{type(net).__name__}.forward")


def optimiser_settings(optimiser, parameters, lr, momentum=0.0) -> None:
    if lr <= 0 or not 0 <= momentum < 1:
        raise ValueError(
            f"{type(optimiser).__name__}: need lr > 0 and 0 ≤ momentum < 1, got lr={lr}, "
            f"momentum={momentum}"
        )


def gradients_of(optimiser, grads) -> None:
    missing = optimiser.parameters.keys() - grads.keys()
    if missing:
        raise KeyError(
            f"{type(optimiser).__name__}.step: no gradient for {sorted(missing)}; call "
            "net.backward() first"
        )

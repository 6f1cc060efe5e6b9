"""Input checks shared by the package's public functions: say what was expected and what
came."""

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

"""Checks of the two layers, Linear and ReLU: forward values, and backward against autograd and
against centred finite differences of the learner's own forward pass, all in float64."""

import torch
import torch.nn.functional as TF
from torch import Tensor

from .. import gradcheck
from .probe import Failure, call, checker, compare, describe, tensor_like

SHAPE_OF_WT = ("∂L/∂W must have the shape of W, (out, in): that is Gᵀ X; Xᵀ G has the shape of Wᵀ")


def _parameter(layer, name: str, shape: tuple) -> Tensor:
    value = getattr(layer, name, None)
    if not isinstance(value, Tensor):
        has = "none: set it in __init__" if value is None else describe(value)
        raise Failure(f"Linear needs a tensor attribute .{name} of shape {shape}; it has {has}")
    if tuple(value.shape) != shape:
        if tuple(value.shape) == shape[::-1]:
            raise Failure(f".{name} has shape {tuple(value.shape)}; the book stores W as (out, in) = {shape}, "
                          "as torch.nn.Linear does, and computes Z = X Wᵀ + b", "linear")
        raise Failure(f".{name} should have shape {shape}, got {tuple(value.shape)}")
    return value


def _finite_differences(forward, x: Tensor, G: Tensor, tensor: Tensor, count: int = 12) -> tuple[Tensor, Tensor]:
    """(indices, centred differences of ⟨G, forward(x)⟩) for ``count`` entries of ``tensor``."""
    index = torch.randperm(tensor.numel(), generator=torch.Generator().manual_seed(3))[:count]
    numeric = call("forward(x), under finite differences", gradcheck.finite_differences,
                   lambda: (G * forward(x)).sum(), tensor, index)
    return index, numeric


@checker
def check_linear(cls) -> str:
    """cls(dim_in, dim_out) with .W (out, in), .b (out,), forward(x), backward(G) → (∂X, ∂W, ∂b)."""
    dim_in, dim_out = 5, 3
    layer = call(f"{getattr(cls, '__name__', 'cls')}({dim_in}, {dim_out})", cls, dim_in, dim_out)
    W, b = _parameter(layer, "W", (dim_out, dim_in)), _parameter(layer, "b", (dim_out,))
    if W.numel() and bool((W == W.reshape(-1)[0]).all()):
        raise Failure("every entry of W starts with the same value, so every unit computes the same "
                      "thing and gets the same gradient: initialise W at random, as torch.nn.Linear does",
                      "linear")
    g = torch.Generator().manual_seed(4)
    layer.W = torch.randn(dim_out, dim_in, generator=g, dtype=torch.float64)  # float64 for the checks
    layer.b = torch.randn(dim_out, generator=g, dtype=torch.float64)
    W, b = layer.W, layer.b
    for B in (4, 1):
        x = torch.randn(B, dim_in, generator=g, dtype=torch.float64)
        G = torch.randn(B, dim_out, generator=g, dtype=torch.float64)
        on = f"for a batch of {B}"
        # forward a different batch first: backward must use the input of the latest forward
        earlier = torch.randn(B, dim_in, generator=g, dtype=torch.float64)
        call("forward(x)", layer.forward, earlier)
        y = tensor_like(call("forward(x)", layer.forward, x), f"forward(x) {on}", (B, dim_out), x.dtype)
        compare(y, TF.linear(x, W, b), "forward(x)", on=on, mistakes={
            "the bias is missing: Z = X Wᵀ + b": (x @ W.T, ("linear",)),
        })
        grads = call("backward(grad_out)", layer.backward, G)
        if not isinstance(grads, tuple) or len(grads) != 3:
            raise Failure(f"backward(grad_out) should return a tuple (∂L/∂X, ∂L/∂W, ∂L/∂b), got {describe(grads)}"
                          + (f" of length {len(grads)}" if isinstance(grads, (tuple, list)) else ""))
        leaves = [t.clone().requires_grad_(True) for t in (x, W, b)]
        expected = torch.autograd.grad((G * TF.linear(*leaves)).sum(), leaves)
        dx, dW, db = grads
        if isinstance(dx, Tensor) and tuple(dx.shape) == (dim_out, dim_in) and B != dim_out:
            raise Failure(f"∂L/∂X has shape {tuple(dx.shape)}, the shape of W: it is G W, of the input's "
                          f"shape ({B}, {dim_in}) — the original notebook's ∂/∂z [Wz + b] = W leaves out "
                          "the upstream gradient", "linear")
        tensor_like(dx, f"∂L/∂X {on}", (B, dim_in), x.dtype)
        compare(dx, expected[0], "∂L/∂X", on=on, mistakes={
            "its sign is flipped: ∂L/∂X = G W": (-expected[0], ("linear",)),
        })
        tensor_like(dW, f"∂L/∂W {on}", (dim_out, dim_in), x.dtype, transposed_hint=SHAPE_OF_WT)
        compare(dW, expected[1], "∂L/∂W", on=on, mistakes={
            "its sign is flipped: ∂L/∂W = Gᵀ X": (-expected[1], ("linear",)),
            "it ignores the upstream gradient G (the original notebook's 1ᵀz): ∂L/∂W = Gᵀ X":
                (x.sum(0).expand(dim_out, dim_in), ("linear",)),
            f"it is 1/{B} of Gᵀ X: the 1/B is already inside G, the loss's gradient; here the batch is summed":
                (expected[1] / B, ("linear", "mean")),
            "it uses the input of an earlier forward: backward must use the input of the latest one":
                (G.T @ earlier, ("linear",)),
        })
        tensor_like(db, f"∂L/∂b {on}", (dim_out,), x.dtype)
        compare(db, expected[2], "∂L/∂b", on=on, mistakes={
            "it is the mean of G over the batch; the gradient of b is the column sums of G (the 1/B is "
            "already in G)": (G.mean(0), ("linear",)),
        })
        index, numeric = _finite_differences(layer.forward, x, G, W)
        compare(dW.reshape(-1)[index], numeric, "∂L/∂W against finite differences of your forward", on=on,
                tolerance=1e-6)
    return "forward and backward match autograd and finite differences, for batches of 4 and 1"


@checker
def check_relu(cls) -> str:
    """cls() with forward(z) and backward(grad_out) → ∂L/∂z; each instance remembers its own mask."""
    g = torch.Generator().manual_seed(5)
    for B in (4, 1):
        on = f"for a batch of {B}"
        relu = call(f"{getattr(cls, '__name__', 'cls')}()", cls)
        z = torch.randn(B, 7, generator=g, dtype=torch.float64)
        z[:, :2] = 0.0  # exact zeros: the derivative there is 0, as in torch
        G = torch.randn(B, 7, generator=g, dtype=torch.float64)
        h = tensor_like(call("forward(z)", relu.forward, z), f"forward(z) {on}", (B, 7), z.dtype)
        compare(h, TF.relu(z), "forward(z)", on=on)
        dz = call("backward(grad_out)", relu.backward, G)
        tensor_like(dz, f"backward(grad_out) {on}", (B, 7), z.dtype)
        leaf = z.clone().requires_grad_(True)
        expected, = torch.autograd.grad((G * TF.relu(leaf)).sum(), leaf)
        compare(dz, expected, "∂L/∂z", on=on, mistakes={
            "it is max(g, 0): the ReLU's forward applied to the gradient, so it selects by the gradient's "
            "sign instead of by whether the unit was active. ∂L/∂z = g · 1[z > 0]":
                (TF.relu(G), ("bug-relu-forward", "relu")),
            "it uses the gradient's sign, g · 1[g > 0], where the mask must come from the input, 1[z > 0]":
                (G * (G > 0), ("bug-relu-forward", "relu")),
            "it differs only where z = 0 exactly: take the derivative there as 0 (1[z > 0]), as torch does":
                (G * (z >= 0), ("relu",)),
            "the upstream gradient is missing: ∂L/∂z = g · 1[z > 0], not 1[z > 0]": ((z > 0).double(), ("relu",)),
            "the mask is missing: ∂L/∂z = g · 1[z > 0]": (G, ("relu",)),
        })
        # backward may run again with another upstream gradient; finite differences at z away from 0
        z_away = z + torch.where(z >= 0, 0.5, -0.5).double()
        call("forward(z)", relu.forward, z_away)
        dz = tensor_like(call("backward(grad_out)", relu.backward, G), f"backward(grad_out) {on}", (B, 7), z.dtype)
        index, numeric = _finite_differences(relu.forward, z_away, G, z_away)
        compare(dz.reshape(-1)[index], numeric, "∂L/∂z against finite differences of your forward", on=on)
    first, second = call("a first ReLU", cls), call("a second ReLU", cls)
    z1, z2, G = (torch.randn(3, 6, generator=g, dtype=torch.float64) for _ in range(3))
    call("the first ReLU's forward", first.forward, z1)
    call("the second ReLU's forward", second.forward, z2)
    dz = tensor_like(call("the first ReLU's backward", first.backward, G), "the first ReLU's backward", (3, 6), G.dtype)
    compare(dz, G * (z1 > 0), "the first ReLU's backward, after a second ReLU's forward", mistakes={
        "it used the second ReLU's mask: the two instances share their memory (a class attribute?). "
        "Each layer needs a ReLU that remembers its own input": (G * (z2 > 0), ("bug-shared-relu",)),
    })
    return "forward and backward match torch, zeros included, for batches of 4 and 1; instances independent"

"""Checks of the two layers, Linear and ReLU: forward values, and backward against autograd and
against centred finite differences of the learner's own forward pass, all in float64.

The check creates the learner's objects itself, in the dtype it tests (float64) through the
constructor's ``dtype`` argument, and reads their parameters: it never puts tensors of its own
into them."""

from collections.abc import Sequence

import torch
import torch.nn.functional as TF
from torch import Tensor

from .. import gradcheck
from . import links
from .probe import (
    Failure,
    Mistake,
    call,
    compare,
    describe,
    dtype_name,
    generator,
    matches,
    seed_offset,
    tensor_like,
)
from .registry import exercise

SHAPE_OF_WT = (
    "∂L/∂W must have the shape of W, (out, in): that is Gᵀ X; Xᵀ G has the shape of Wᵀ"
)
PARAMETER_NAMES = {"W": ("W", "weight"), "b": ("b", "bias")}

NO_BIAS = Mistake("the bias is missing: Z = X Wᵀ + b", (links.LINEAR,))
INPUT_GRADIENT_SIGN = Mistake("its sign is flipped: ∂L/∂X = G W", (links.LINEAR,))
WEIGHT_GRADIENT_SIGN = Mistake("its sign is flipped: ∂L/∂W = Gᵀ X", (links.LINEAR,))
NO_UPSTREAM_IN_DW = Mistake(
    "it ignores the upstream gradient G (the original notebook's 1ᵀz): ∂L/∂W = Gᵀ X",
    (links.LINEAR,),
)
MEAN_IN_DW = Mistake(
    "it is 1/B of Gᵀ X: the 1/B is already inside G, the loss's gradient; here the batch "
    "is summed",
    (links.LINEAR, links.MEAN),
)
EARLIER_INPUT = Mistake(
    "it uses the input of an earlier forward: backward must use the input of the latest one",
    (links.LINEAR,),
)
MEAN_IN_DB = Mistake(
    "it is the mean of G over the batch; the gradient of b is the column sums of G (the 1/B "
    "is already in G)",
    (links.LINEAR,),
)
GRADIENTS_ORDER = Mistake(
    "return them in the order (∂L/∂X, ∂L/∂W, ∂L/∂b), the order the network unpacks them in",
    (links.LINEAR,),
)
INITIAL_SCALE_OFF = Mistake(
    "draw W on the scale of 1/√dim_in, as torch.nn.Linear does, U(−1/√dim_in, 1/√dim_in). With "
    "entries of order 1 (such as N(0, 1)) a layer's outputs are about √dim_in times too large, the "
    "first loss is huge and training fails; with entries far smaller the signal fades layer by layer",
    (links.INITIALISATION, links.LINEAR),
)
STALE_WEIGHT = Mistake(
    "your forward does not read W itself: changing W in place did not change forward's output. The "
    "optimiser updates W in place, so forward must compute with W (or a view of it), not with a copy "
    "made earlier",
    (links.LINEAR, links.OPTIMISER),
)

RELU_OF_GRADIENT = Mistake(
    "it is max(g, 0) = g · 1[g > 0]: the ReLU's forward applied to the gradient, which selects by the "
    "gradient's sign instead of by whether the unit was active. The mask comes from the forward pass: "
    "∂L/∂z = g · 1[z > 0]",
    (links.BUG_RELU_FORWARD, links.RELU),
)
ONE_AT_ZERO = Mistake(
    "it differs only where z = 0 exactly: take the derivative there as 0 (1[z > 0]), as "
    "torch does",
    (links.RELU,),
)
NO_UPSTREAM_IN_RELU = Mistake(
    "the upstream gradient is missing: ∂L/∂z = g · 1[z > 0], not 1[z > 0]",
    (links.RELU,),
)
NO_MASK = Mistake("the mask is missing: ∂L/∂z = g · 1[z > 0]", (links.RELU,))
SIGN_OF_INPUT = Mistake(
    "it is g · sign(z), which is −g where z < 0: the mask 1[z > 0] is 0, not −1, for a negative z. "
    "(sign(h) of the output h = max(z, 0) is 1[z > 0]; sign(z) of the input is not)",
    (links.RELU,),
)
INVERTED_MASK = Mistake(
    "the mask is inverted: the gradient passes where the unit was off (z ≤ 0) and is blocked where "
    "it was on. ∂L/∂z = g · 1[z > 0]",
    (links.RELU,),
)
OUTPUT_FOR_MASK = Mistake(
    "it multiplies by the output h = max(z, 0) where the mask 1[z > 0] belongs: the derivative of "
    "max(z, 0) is 0 or 1, not h. ∂L/∂z = g · 1[z > 0]",
    (links.RELU,),
)
CHANGED_OUTPUT = Mistake(
    "backward wrote into the output h that forward returned: the next layer keeps h as its input, "
    "for its own backward, and a second backward of the same forward would read a changed mask. Read "
    "the mask without writing into h, e.g. grad_out * (h > 0)",
    (links.RELU,),
)
STALE_MASK = Mistake(
    "it used the mask of an earlier forward pass: forward must keep what backward needs (z, h or the "
    "mask) every time it runs, for backward to use the latest",
    (links.RELU,),
)
SHARED_STATE = Mistake(
    "it used the second ReLU's mask: the two instances share their memory (a class attribute?). Each "
    "layer needs a ReLU that remembers its own forward pass",
    (links.BUG_SHARED_RELU,),
)


def _named(value, expected) -> int | None:
    """Which of the expected gradients ``value`` is, if it is one of them."""
    return next(
        (
            i
            for i, e in enumerate(expected)
            if isinstance(value, Tensor)
            and value.shape == e.shape
            and matches(value, e)
        ),
        None,
    )


def _parameter(layer, name: str, shape: tuple, made: str) -> Tensor:
    """The layer's W (or weight) or b (or bias), a tensor of ``shape``, or a Failure."""
    found = [
        n for n in PARAMETER_NAMES[name] if isinstance(getattr(layer, n, None), Tensor)
    ]
    if not found:
        value = getattr(layer, name, None)
        has = "none: set it in __init__" if value is None else describe(value)
        raise Failure(
            f"Linear needs a tensor attribute .{name} (or .{PARAMETER_NAMES[name][1]}, as in "
            f"torch.nn.Linear) of shape {shape}; {made} has {has}"
        )
    value = getattr(layer, found[0])
    if tuple(value.shape) != shape:
        if tuple(value.shape) == shape[::-1]:
            raise Failure(
                f".{found[0]} has shape {tuple(value.shape)}; the book stores W as (out, in) = "
                f"{shape}, as torch.nn.Linear does, and computes Z = X Wᵀ + b",
                links.LINEAR,
            )
        raise Failure(
            f".{found[0]} should have shape {shape}, got {tuple(value.shape)}"
        )
    return value


def _build(cls, what: str, *args, dtype: torch.dtype | None = None, seed: int = 0):
    """``cls(*args)`` (with ``dtype=`` when given), its initialisation drawn from a seeded stream
    that leaves the caller's random state as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed_offset() + seed)
        return call(what, cls, *args, **({"dtype": dtype} if dtype else {}))


#: Accepted standard deviations of a fresh W, in units of 1/√dim_in: torch.nn.Linear's
#: U(±1/√dim_in) gives 1/√3 ≈ 0.58, He's N(0, 2/dim_in) √2; N(0, 1) gives √dim_in.
INITIAL_SCALE = (0.1, 3.0)


def _initial_scale(cls, name: str) -> None:
    """Failure unless a fresh 784 → 120 layer's W is on the scale of 1/√dim_in."""
    made = f"{name}(784, 120, dtype=torch.float64)"
    W = _parameter(
        _build(cls, made, 784, 120, dtype=torch.float64, seed=5), "W", (120, 784), made
    )
    check_initial_scale(W, f"{made} drew W")


def check_initial_scale(W: Tensor, drawn: str) -> None:
    """Failure unless a fresh weight matrix W (out, in) is on the scale of 1/√in."""
    dim_in = W.shape[1]
    scale = W.double().std().item() * dim_in**0.5
    if not INITIAL_SCALE[0] <= scale <= INITIAL_SCALE[1]:
        raise Failure(
            f"{drawn} with standard deviation {scale:.3g}/√{dim_in}, where torch.nn.Linear's "
            f"U(−1/√dim_in, 1/√dim_in) has 0.577/√{dim_in}: {INITIAL_SCALE_OFF.explanation}",
            mistake=INITIAL_SCALE_OFF,
        )


def _finite_differences(
    forward, x: Tensor, G: Tensor, tensor: Tensor, count: int = 12
) -> tuple[Tensor, Tensor]:
    """(indices, centred differences of ⟨G, forward(x)⟩) for ``count`` entries of ``tensor``;
    ``forward`` gets a copy of x each time, so one that works in place changes nothing here."""
    index = torch.randperm(tensor.numel(), generator=generator(3))[:count]
    numeric = call(
        "forward(x), under finite differences",
        gradcheck.finite_differences,
        lambda: (G * forward(x.clone())).sum(),
        tensor,
        index,
    )
    return index, numeric


@exercise(
    "workbook-linear",
    "Linear",
    solution="mnistbook.scratch:Linear",
    contract=(
        "`Linear(dim_in, dim_out, dtype=torch.float32, device=None)` creates the weight `W` (dim_out, dim_in) "
        "and the bias `b` (dim_out,) at random, in that dtype (and on that device: the check runs on the CPU). The names `weight` and "
        "`bias` of torch.nn.Linear are accepted too.",
        "W is drawn on the scale of 1/√dim_in, as torch.nn.Linear's U(−1/√dim_in, 1/√dim_in): the check "
        "accepts a standard deviation of 0.1/√dim_in to 3/√dim_in (He's N(0, 2/dim_in) included).",
        "`forward(x)` takes a batch x (B, dim_in), returns Z = x Wᵀ + b (B, dim_out), keeps what backward "
        "needs, and leaves x unchanged.",
        "`backward(grad_out)` takes G = ∂L/∂Z (B, dim_out) of the latest forward and returns (∂L/∂X, ∂L/∂W, "
        "∂L/∂b): a tuple, or any sequence of three tensors, of the shapes of X, W and b and of x's dtype. "
        "It may overwrite grad_out, which the network does not use again.",
        "Tried with dim_in = 5 and dim_out = 3 in float64, on random batches of 4 and of 1, each after a "
        "forward of another batch; without a dtype the parameters must be float32.",
    ),
)
def check_linear(cls) -> str:
    """cls(dim_in, dim_out, dtype=...) with .W (out, in), .b (out,), forward(x), backward(G) → (∂X, ∂W, ∂b)."""
    dim_in, dim_out, f64 = 5, 3, torch.float64
    name = getattr(cls, "__name__", "cls")
    made = f"{name}({dim_in}, {dim_out}, dtype=torch.float64)"
    layer = _build(cls, made, dim_in, dim_out, dtype=f64, seed=4)
    W = _parameter(layer, "W", (dim_out, dim_in), made)
    b = _parameter(layer, "b", (dim_out,), made)
    for tensor, what in ((W, "W"), (b, "b")):
        if tensor.dtype != f64:
            raise Failure(
                f"{made} created {what} of dtype {dtype_name(tensor.dtype)}: create the parameters "
                "with the dtype (and device) passed to __init__, e.g. torch.empty(dim_out, dim_in, "
                "dtype=dtype, device=device)"
            )
    if W.numel() and bool((W == W.reshape(-1)[0]).all()):
        raise Failure(
            "every entry of W starts with the same value, so every unit computes the same "
            "thing and gets the same gradient: initialise W at random, as torch.nn.Linear does",
            links.LINEAR,
        )
    _initial_scale(cls, name)
    default = _parameter(
        _build(cls, f"{name}({dim_in}, {dim_out})", dim_in, dim_out, seed=4),
        "W",
        (dim_out, dim_in),
        f"{name}({dim_in}, {dim_out})",
    )
    if default.dtype != torch.float32:
        raise Failure(
            f"{name}({dim_in}, {dim_out}) created W of dtype {dtype_name(default.dtype)}; "
            "without a dtype argument the parameters should be float32, as torch.nn.Linear's"
        )
    g = generator(4)
    for B in (4, 1):
        x = torch.randn(B, dim_in, generator=g, dtype=f64)
        G = torch.randn(B, dim_out, generator=g, dtype=f64)
        on = f"for a batch of {B}"
        # forward a different batch first: backward must use the input of the latest forward
        earlier = torch.randn(B, dim_in, generator=g, dtype=f64)
        call("forward(x)", layer.forward, earlier)
        expected_z = TF.linear(x, W, b)
        y = tensor_like(
            call("forward(x)", layer.forward, x), f"forward(x) {on}", (B, dim_out), f64
        )
        compare(y, expected_z, "forward(x)", on=on, mistakes={NO_BIAS: x @ W.T})
        leaves = [t.detach().clone().requires_grad_(True) for t in (x, W, b)]
        expected = torch.autograd.grad((G * TF.linear(*leaves)).sum(), leaves)
        grads = call("backward(grad_out)", layer.backward, G.clone(), may_change=(0,))
        if not isinstance(grads, Sequence) or isinstance(grads, str) or len(grads) != 3:
            raise Failure(
                "backward(grad_out) should return (∂L/∂X, ∂L/∂W, ∂L/∂b), three tensors in a tuple "
                f"or list, got {describe(grads)}"
                + (f" of length {len(grads)}" if isinstance(grads, Sequence) else "")
            )
        dx, dW, db = grads
        order = [_named(v, expected) for v in (dx, dW, db)]
        if set(order) == {0, 1, 2} and order != [0, 1, 2]:
            names = ("∂L/∂X", "∂L/∂W", "∂L/∂b")
            raise Failure(
                f"backward returned ({', '.join(names[i] for i in order)}), right gradients in "
                f"another order: {GRADIENTS_ORDER.explanation}",
                mistake=GRADIENTS_ORDER,
            )
        if (
            isinstance(dx, Tensor)
            and tuple(dx.shape) == (dim_out, dim_in)
            and B != dim_out
        ):
            raise Failure(
                f"∂L/∂X has shape {tuple(dx.shape)}, the shape of W: it is G W, of the input's "
                f"shape ({B}, {dim_in}) — the original notebook's ∂/∂z [Wz + b] = W leaves out "
                "the upstream gradient",
                links.LINEAR,
            )
        tensor_like(dx, f"∂L/∂X {on}", (B, dim_in), f64)
        compare(
            dx,
            expected[0],
            "∂L/∂X",
            on=on,
            mistakes={INPUT_GRADIENT_SIGN: -expected[0]},
        )
        tensor_like(
            dW, f"∂L/∂W {on}", (dim_out, dim_in), f64, transposed_hint=SHAPE_OF_WT
        )
        compare(
            dW,
            expected[1],
            "∂L/∂W",
            on=on,
            mistakes={
                WEIGHT_GRADIENT_SIGN: -expected[1],
                NO_UPSTREAM_IN_DW: x.sum(0).expand(dim_out, dim_in),
                MEAN_IN_DW: expected[1] / B,
                EARLIER_INPUT: G.T @ earlier,
            },
        )
        tensor_like(db, f"∂L/∂b {on}", (dim_out,), f64)
        compare(db, expected[2], "∂L/∂b", on=on, mistakes={MEAN_IN_DB: G.mean(0)})
        index, numeric = _finite_differences(layer.forward, x, G, W)
        if not numeric.any() and dW.reshape(-1)[index].any():
            raise Failure(
                f"∂L/∂W against finite differences of your forward {on}: {STALE_WEIGHT.explanation}",
                mistake=STALE_WEIGHT,
            )
        compare(
            dW.reshape(-1)[index],
            numeric,
            "∂L/∂W against finite differences of your forward",
            on=on,
            tolerance=1e-6,
        )
    return "forward and backward match autograd and finite differences, for batches of 4 and 1"


@exercise(
    "workbook-relu",
    "ReLU",
    solution="mnistbook.scratch:ReLU",
    contract=(
        "`ReLU()` takes no arguments; each layer of a network gets its own instance.",
        "`forward(z)` returns h = max(z, 0), of z's shape and dtype, and keeps what backward needs: its "
        "input or its output, either gives the mask 1[z > 0]. It may overwrite z, which the network does "
        "not use again.",
        "`backward(grad_out)` takes ∂L/∂h of the latest forward and returns ∂L/∂z = grad_out · 1[z > 0], "
        "0 where z = 0 exactly (as torch), of z's dtype. It may overwrite grad_out, but not the output h "
        "that forward returned, which the next layer keeps.",
        "Tried on random batches of 4 and of 1 with 7 units, two of them exactly 0, in float64, and again "
        "on the same units moved away from 0 (against finite differences too); then two instances used in "
        "turn.",
    ),
)
def check_relu(cls) -> str:
    """cls() with forward(z) and backward(grad_out) → ∂L/∂z; each instance remembers its own mask."""
    g = generator(5)
    name = getattr(cls, "__name__", "cls")
    for B in (4, 1):
        on = f"for a batch of {B}"
        relu = call(f"{name}()", cls)
        z = torch.randn(B, 7, generator=g, dtype=torch.float64)
        z[:, :2] = 0.0  # exact zeros: the derivative there is 0, as in torch
        G = torch.randn(B, 7, generator=g, dtype=torch.float64)
        h = tensor_like(
            call("forward(z)", relu.forward, z.clone(), may_change=(0,)),
            f"forward(z) {on}",
            (B, 7),
            z.dtype,
        )
        compare(h, TF.relu(z), "forward(z)", on=on)
        kept = h.clone()
        dz = call("backward(grad_out)", relu.backward, G.clone(), may_change=(0,))
        tensor_like(dz, f"backward(grad_out) {on}", (B, 7), z.dtype)
        if not torch.equal(h, kept):
            raise Failure(
                f"backward(grad_out) {on}: {CHANGED_OUTPUT.explanation}",
                mistake=CHANGED_OUTPUT,
            )
        leaf = z.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad((G * TF.relu(leaf)).sum(), leaf)
        compare(
            dz,
            expected,
            "∂L/∂z",
            on=on,
            mistakes={
                RELU_OF_GRADIENT: TF.relu(G),
                ONE_AT_ZERO: G * (z >= 0),
                NO_UPSTREAM_IN_RELU: (z > 0).double(),
                NO_MASK: G,
                SIGN_OF_INPUT: G * torch.sign(z),
                OUTPUT_FOR_MASK: G * TF.relu(z),
                INVERTED_MASK: G * (z <= 0),
            },
        )
        # backward may run again with another upstream gradient; finite differences at z away from 0
        z_away = z + torch.where(z >= 0, 0.5, -0.5).double()
        call("forward(z)", relu.forward, z_away.clone(), may_change=(0,))
        dz = tensor_like(
            call("backward(grad_out)", relu.backward, G.clone(), may_change=(0,)),
            f"backward(grad_out) {on}",
            (B, 7),
            z.dtype,
        )
        compare(
            dz,
            G * (z_away > 0),
            "∂L/∂z after a second forward",
            on=on,
            mistakes={STALE_MASK: G * (z > 0)},
        )
        index, numeric = _finite_differences(relu.forward, z_away, G, z_away)
        compare(
            dz.reshape(-1)[index],
            numeric,
            "∂L/∂z against finite differences of your forward",
            on=on,
        )
    first, second = call("a first ReLU", cls), call("a second ReLU", cls)
    z1, z2, G = (torch.randn(3, 6, generator=g, dtype=torch.float64) for _ in range(3))
    call("the first ReLU's forward", first.forward, z1.clone(), may_change=(0,))
    call("the second ReLU's forward", second.forward, z2.clone(), may_change=(0,))
    dz = tensor_like(
        call("the first ReLU's backward", first.backward, G.clone(), may_change=(0,)),
        "the first ReLU's backward",
        (3, 6),
        G.dtype,
    )
    compare(
        dz,
        G * (z1 > 0),
        "the first ReLU's backward, after a second ReLU's forward",
        mistakes={SHARED_STATE: G * (z2 > 0)},
    )
    return "forward and backward match torch, zeros included, for batches of 4 and 1; instances independent"

"""Check of the whole network: forward against torch, every gradient against autograd, and
``.parameters`` holding the very tensors the layers use (so an optimiser's update reaches them).

Where the gradients are wrong, the check says where the backward pass went wrong. It records what
each part of the learner's network (every attribute with a ``forward`` and a ``backward``) was
handed, and compares that with what autograd says each should have been handed: the gradient of
that part's own output.
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as TF
from torch import Tensor

from . import links
from .layers import check_initial_scale
from .probe import (
    Failure,
    Mistake,
    call,
    compare,
    describe,
    dtype_name,
    error,
    generator,
    seed_offset,
    tensor_like,
)
from .registry import exercise

LAYERS = ("fc1", "fc2", "fc3")
SHAPES = {
    "fc1.W": (120, 784),
    "fc1.b": (120,),
    "fc2.W": (256, 120),
    "fc2.b": (256,),
    "fc3.W": (10, 256),
    "fc3.b": (10,),
}
TORCH_STYLE = {
    f"{layer}.{p}": f"{layer}.{q}"
    for layer in LAYERS
    for p, q in (("W", "weight"), ("b", "bias"))
}

SHARED_PART = Mistake(
    "one object serving two places of the network remembers only its second use, so the backward pass "
    "of its first use gets the wrong mask. Give each layer its own ReLU (relu1, relu2)",
    (links.BUG_SHARED_RELU,),
)
LOGITS_GRADIENT_EVERYWHERE = Mistake(
    "below the top layer, a backward was handed the gradient of the logits, which belongs to the top "
    "layer only: each backward takes the gradient the part above it returned (the original notebook's "
    "Net.backward hands z to every layer)",
    (links.BUG_ACTIVATIONS, links.NETWORK),
)
ACTIVATIONS_FOR_GRADIENTS = Mistake(
    "a backward was handed a value of the forward pass (an input or output of a layer) where the "
    "gradient belongs: each backward takes the gradient the part above it returned",
    (links.BUG_ACTIVATIONS, links.NETWORK),
)
SKIPPED_PART = Mistake(
    "a backward was handed a gradient that skips a part of the network: each part's backward must run, "
    "from the top down, on the gradient the part above it returned",
    (links.NETWORK,),
)
NO_INPUT_GRADIENT = Mistake(
    "the part above returned no gradient for its input. Only the first layer may skip it "
    "(input_grad=False), its input being the data; every other layer's ∂L/∂X feeds the part below",
    (links.NETWORK,),
)
COPIED_PARAMETERS = Mistake(
    "the dict holds copies or other tensors, not the ones the layers use, so an optimiser's update "
    "would never reach the network",
    (links.SCRATCH_NETWORK,),
)

RELU_ON_LOGITS = Mistake(
    "a ReLU was applied to the logits: the last layer's output goes to the loss as it is, "
    "negative scores included (784 → 120 → ReLU → 256 → ReLU → 10)",
    (links.SCRATCH_NETWORK,),
)
MIXED_ROWS = Mistake(
    "the flattening mixes the images: x.reshape(784, B).T (or a view that regroups across the "
    "batch) puts pixels of several images into one row. Flatten each image into its own row, "
    "x.reshape(B, 784)",
    (links.SCRATCH_NETWORK,),
)

ACCUMULATED_GRADS = Mistake(
    "net.grads holds the sum of this backward's gradients and an earlier one's: backward must "
    "fill net.grads afresh with the latest gradients (the optimiser reads them once per step)",
    (links.NETWORK,),
)


FORWARD_IN_BACKWARD = Mistake(
    "that is the ReLU's forward applied to a gradient (the original notebook's `dz = self.relu(z)`) "
    "where its backward belongs, `self.relu.backward(...)`",
    (links.BUG_RELU_FORWARD, links.NETWORK),
)
WRONG_RETURN = Mistake(
    "a part's backward was handed the right gradient but returned a wrong gradient for its input: the "
    "fault is in that part (its own workbook page checks it alone)",
    (links.NETWORK,),
)


@dataclass
class _Record:
    """What one part of the learner's network was handed and gave back."""

    names: list[str]
    # (input, output)
    forward: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    backward: list[list] = field(default_factory=list)  # [handed, returned, when]
    forward_in_backward: int = 0


def _copy(value):
    return value.detach().clone() if isinstance(value, Tensor) else value


def _instrument(net, phase: dict) -> list[_Record]:
    """Record every call of the forward and backward of each part of ``net`` (attributes, and
    items of list or tuple attributes, that have both, and whose methods can be replaced on the
    instance); ``phase["now"]`` says which pass runs."""
    parts = {}
    for attribute, value in vars(net).items():
        items = (
            enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]
        )
        for index, part in items:
            if callable(getattr(part, "forward", None)) and callable(
                getattr(part, "backward", None)
            ):
                name = attribute if index is None else f"{attribute}[{index}]"
                parts.setdefault(id(part), (part, []))[1].append(name)
    records = []
    for part, names in parts.values():
        record = _Record(names)
        forward, backward = part.forward, part.backward

        def recorded_forward(*args, _forward=forward, _record=record):
            handed = _copy(args[0]) if args else None
            out = _forward(*args)
            if phase["now"] == "backward":
                _record.forward_in_backward += 1
            else:
                _record.forward.append((handed, _copy(out)))
            return out

        def recorded_backward(*args, _backward=backward, _record=record, **kwargs):
            phase["calls"] = phase.get("calls", 0) + 1
            entry = [_copy(args[0]) if args else None, None, phase["calls"]]
            # before the call: a backward that raises is recorded too
            _record.backward.append(entry)
            returned = _backward(*args, **kwargs)
            entry[1] = _copy(
                returned[0]
                if isinstance(returned, (tuple, list)) and returned
                else returned
            )
            return returned

        try:
            part.forward, part.backward = recorded_forward, recorded_backward
        except (AttributeError, TypeError):
            continue  # a part whose methods cannot be replaced (__slots__): not watched
        records.append(record)
    return records


def _reference(p: dict, x: Tensor, upstream: Tensor | None = None) -> tuple[dict, dict]:
    """The values of the forward pass (Z1, H1, Z2, H2, Z3) and, given the gradient of the logits,
    autograd's gradient of ⟨upstream, Z3⟩ with respect to each."""
    values = {"X": x.reshape(len(x), -1)}
    values["Z1"] = TF.linear(values["X"], p["fc1.W"], p["fc1.b"])
    values["H1"] = TF.relu(values["Z1"])
    values["Z2"] = TF.linear(values["H1"], p["fc2.W"], p["fc2.b"])
    values["H2"] = TF.relu(values["Z2"])
    values["Z3"] = TF.linear(values["H2"], p["fc3.W"], p["fc3.b"])
    if upstream is None:
        return values, {}
    for name in ("Z1", "H1", "Z2", "H2", "Z3"):
        values[name].retain_grad()
    (upstream * values["Z3"]).sum().backward()
    return values, {name: values[name].grad for name in ("Z1", "H1", "Z2", "H2", "Z3")}


def _same(a, b: Tensor) -> bool:
    return (
        isinstance(a, Tensor)
        and a.shape == b.shape
        and error(a.double(), b.detach().double()) < 1e-6
    )


def _role(tensor, values: dict) -> str | None:
    return next((name for name, value in values.items() if _same(tensor, value)), None)


def _shared(records: list[_Record]) -> list[Failure]:
    return [
        Failure(
            f"{' and '.join(r.names)}: one object, whose forward ran {len(r.forward)} times in one "
            f"forward pass — {SHARED_PART.explanation}",
            mistake=SHARED_PART,
        )
        for r in records
        if len(r.forward) > 1
    ]


def _routing(
    records: list[_Record], values: dict, gradients: dict, upstream: Tensor
) -> list[Failure]:
    """The mistakes in what the parts were handed during the backward pass: a forward run there,
    and the first backward (in the order they ran) handed something other than the gradient of
    its part's output, or returning a wrong gradient for its input; later ones may only follow
    from it."""
    found = [
        Failure(
            f"{r.names[0]}.forward ran during the backward pass: {FORWARD_IN_BACKWARD.explanation}",
            mistake=FORWARD_IN_BACKWARD,
        )
        for r in records
        if r.forward_in_backward
    ]
    wrong = []
    for record in records:
        if len(record.forward) != 1 or not record.backward:
            continue  # unused, or shared (reported by _shared): its calls have no single role
        name, (handed_in, output) = record.names[0], record.forward[-1]
        role = _role(output, {k: v for k, v in values.items() if k != "X"})
        if role is None:
            continue  # an output the reference does not know: the gradients will tell
        handed, returned, when = record.backward[-1]
        if handed is None:
            wrong.append(
                (
                    when,
                    Failure(
                        f"{name}.backward, whose part outputs {role}, was handed None: "
                        f"{NO_INPUT_GRADIENT.explanation}",
                        mistake=NO_INPUT_GRADIENT,
                    ),
                )
            )
        elif _same(handed, gradients[role]):
            source = _role(handed_in, {k: v for k, v in values.items() if k != "X"})
            if (
                source
                and isinstance(returned, Tensor)
                and not _same(returned, gradients[source])
            ):
                wrong.append(
                    (
                        when + 0.5,
                        Failure(
                            f"{name}.backward was handed ∂L/∂{role} but returned something other than ∂L/∂{source}: "
                            f"{WRONG_RETURN.explanation}",
                            mistake=WRONG_RETURN,
                        ),
                    )
                )
        elif _same(handed, upstream) and role != "Z3":
            wrong.append(
                (
                    when,
                    Failure(
                        f"{name}.backward, whose part outputs {role}, was handed the gradient of the logits, "
                        f"{describe(handed)}: {LOGITS_GRADIENT_EVERYWHERE.explanation}",
                        mistake=LOGITS_GRADIENT_EVERYWHERE,
                    ),
                )
            )
        elif value := _role(handed, values):
            wrong.append(
                (
                    when,
                    Failure(
                        f"{name}.backward was handed {value}, a value of the forward pass, instead of ∂L/∂{role}: "
                        f"{ACTIVATIONS_FOR_GRADIENTS.explanation}",
                        mistake=ACTIVATIONS_FOR_GRADIENTS,
                    ),
                )
            )
        elif other := _role(handed, {n: g for n, g in gradients.items() if n != role}):
            wrong.append(
                (
                    when,
                    Failure(
                        f"{name}.backward was handed ∂L/∂{other} instead of ∂L/∂{role}, the gradient of its part's "
                        f"own output: {SKIPPED_PART.explanation}",
                        mistake=SKIPPED_PART,
                    ),
                )
            )
    return found + ([min(wrong, key=lambda item: item[0])[1]] if wrong else [])


def _one(failures: list[Failure], then: str = "") -> Failure:
    """One Failure for one or several mistakes found together."""
    if len(failures) == 1 and not then:
        return failures[0]
    message = (
        failures[0].message
        if len(failures) == 1
        else (
            f"{len(failures)} mistakes:\n"
            + "\n".join(f"  – {f.message}" for f in failures)
        )
    )
    sections = [s for f in failures for s in f.sections]
    return Failure(
        message + then,
        *sections,
        mistake=failures[0].mistake if len(failures) == 1 else None,
    )


def _named_tensors(
    net, attribute: str, after: str, keys: tuple[str, ...] | None = None
) -> dict:
    """``net.<attribute>`` as a dict in the book's names (fc1.W, …), from either naming."""
    value = getattr(net, attribute, None)
    if not isinstance(value, dict):
        hint = (
            " (the original notebook's ._grad is called .grads here)"
            if attribute == "grads" and hasattr(net, "_grad")
            else ""
        )
        raise Failure(
            f"net.{attribute} should be a dict {{'fc1.W': tensor, …}}{after}, got {describe(value)}{hint}"
        )
    names = tuple(value)
    if keys is not None and set(names) != set(keys):
        raise Failure(
            f"net.{attribute} should have the same names as net.parameters, {list(keys)}; it has "
            f"{list(names)}"
        )
    book = set(SHAPES) == set(names)
    if not book and set(TORCH_STYLE.values()) != set(names):
        missing = sorted(set(SHAPES) - set(names))
        extra = sorted(set(names) - set(SHAPES))
        raise Failure(
            f"net.{attribute} should have the keys {list(SHAPES)} (or the torch style, fc1.weight, "
            f"fc1.bias, …); missing {missing}, unexpected {extra}"
        )
    named = {name: value[name if book else TORCH_STYLE[name]] for name in SHAPES}
    for name, shape in SHAPES.items():
        tensor_like(
            named[name],
            f"net.{attribute}['{name}']",
            shape,
            transposed_hint="The book stores W as (out, in), like torch.nn.Linear; its gradient has W's shape.",
        )
    return named


def _parameters_reach_the_layers(net, parameters: dict, x: Tensor) -> None:
    """Failure unless every tensor of ``net.parameters`` is one the layers use: changing it in
    place must change the logits. A forward that disagrees with the parameters is first asked
    this, for a dict of other tensors makes a right forward look wrong."""
    before = call("forward(x)", net.forward, x).detach().clone()
    for name, tensor in parameters.items():
        kept = tensor.detach().clone()
        with torch.no_grad():
            tensor.add_(1.0)
            after = call("forward(x)", net.forward, x).detach().clone()
            tensor.copy_(kept)
        if torch.equal(after, before):
            raise Failure(
                f"adding 1 to net.parameters['{name}'] in place did not change the logits: "
                f"{COPIED_PARAMETERS.explanation}",
                mistake=COPIED_PARAMETERS,
            )


def _build(cls, what: str, **kwargs):
    with torch.random.fork_rng():
        torch.manual_seed(seed_offset() + 6)
        return call(what, cls, **kwargs)


@exercise(
    "workbook-net",
    "Net",
    solution="mnistbook.scratch:Net",
    contract=(
        "`Net(dtype=torch.float32, device=None)` builds 784 → 120 → 256 → 10 with a ReLU after each "
        "hidden layer, its parameters in that dtype (and on that device: the check runs on the CPU).",
        "`net.parameters` is a dict of the six parameter tensors the layers use — the very tensors, not "
        "copies — named fc1.W, fc1.b, fc2.W, fc2.b, fc3.W, fc3.b (or fc1.weight, fc1.bias, …).",
        "`forward(x)` takes images (B, 1, 28, 28) or flat (B, 784) and returns the logits (B, 10).",
        "`backward(grad_logits)` takes ∂L/∂logits (B, 10) of the latest forward and fills `net.grads`, a "
        "dict with the names of `net.parameters`, each gradient of its parameter's shape and dtype. It may "
        "overwrite grad_logits.",
        "Tried in float64 on random images of shapes (3, 1, 28, 28) and (1, 784); without a dtype the "
        "parameters must be float32.",
    ),
)
def check_net(cls) -> str:
    """cls(dtype=...) → a 784-120-256-10 ReLU net with forward(x), backward(grad_logits), .parameters, .grads."""
    f64 = torch.float64
    name = getattr(cls, "__name__", "cls")
    made = f"{name}(dtype=torch.float64)"
    net = _build(cls, made, dtype=f64)
    raw = getattr(net, "parameters", None)
    parameters = _named_tensors(net, "parameters", "")
    wrong = [k for k, t in parameters.items() if t.dtype != f64]
    if wrong:
        raise Failure(
            f"{made} created {wrong[0]} of dtype {dtype_name(parameters[wrong[0]].dtype)}: hand the "
            "dtype (and device) on to the layers, e.g. Linear(784, 120, dtype, device)"
        )
    default = _named_tensors(_build(cls, f"{name}()"), "parameters", "")
    if default["fc1.W"].dtype != torch.float32:
        raise Failure(
            f"{name}() created fc1.W of dtype {dtype_name(default['fc1.W'].dtype)}; without a dtype "
            "argument the parameters should be float32"
        )
    for key in ("fc1.W", "fc2.W", "fc3.W"):
        check_initial_scale(default[key], f"{name}() drew {key}")
    phase = {"now": "forward"}
    records = _instrument(net, phase)
    p64 = {k: t.detach().clone() for k, t in parameters.items()}
    g = generator(6)
    earlier = {}  # the gradients of the first input, which a second backward must replace
    for shape in ((3, 1, 28, 28), (1, 784)):
        on = f"for input of shape {shape}"
        for record in records:
            record.forward.clear(), record.backward.clear()
        phase["now"] = "forward"
        x = torch.randn(*shape, generator=g, dtype=f64)
        logits = tensor_like(
            call("forward(x)", net.forward, x), f"forward(x) {on}", (shape[0], 10), f64
        )
        reference = _reference(p64, x)[0]["Z3"]
        scrambled = x.reshape(784, -1).T  # rows that mix the images, of the right shape
        try:
            compare(
                logits,
                reference,
                "forward(x)",
                on=on,
                mistakes={
                    RELU_ON_LOGITS: TF.relu(reference),
                    MIXED_ROWS: _reference(p64, scrambled)[0]["Z3"],
                },
            )
        except Failure:
            _parameters_reach_the_layers(net, parameters, x)
            raise
        G = torch.randn(shape[0], 10, generator=g, dtype=f64)
        leaves = {k: t.clone().requires_grad_(True) for k, t in p64.items()}
        values, gradients = _reference(leaves, x, G)
        phase["now"] = "backward"
        try:
            call("backward(grad_logits)", net.backward, G.clone(), may_change=(0,))
        except Failure as failure:
            found = _shared(records) + _routing(records, values, gradients, G)
            if not found:
                raise
            raise _one(found, f"\n(after that, {failure.message})") from None
        found = _shared(records) + _routing(records, values, gradients, G)
        if found:
            raise _one(found)
        grads = _named_tensors(net, "grads", " after backward()", tuple(raw))
        for key in SHAPES:
            expected = leaves[key].grad
            tensor_like(grads[key], f"net.grads['{key}'] {on}", SHAPES[key], f64)
            compare(
                grads[key],
                expected,
                f"net.grads['{key}']",
                on=on,
                tolerance=1e-9,
                mistakes={ACCUMULATED_GRADS: earlier[key] + expected}
                if earlier
                else {},
            )
        earlier = {key: leaves[key].grad for key in SHAPES}
    _parameters_reach_the_layers(
        net, parameters, torch.randn(2, 784, generator=g, dtype=f64)
    )
    return (
        "forward matches torch for (B, 1, 28, 28) and (B, 784) input, B = 3 and 1; every gradient "
        "matches autograd; .parameters are the layers' own tensors"
    )

"""Checks of the autograd engine: the backward rules of the broadcasting addition and of relu,
the topological order, and the backward pass that adds up.

The learner's functions work on graphs recorded by the book's engine (:mod:`mnistbook.autograd`).
The expected values come from torch autograd on a mirror of each graph in torch; the book's rules
only predict what a mistake would give. The backward pass is watched while it runs: each node's
rule is wrapped, and each leaf notes when its ``.grad`` is set, so that the check sees in which
order the rules ran and what gradient each received, which is where a wrong order or an
overwritten gradient shows.
"""

import torch
import torch.nn.functional as TF

from .. import autograd
from ..autograd import Tensor
from . import links
from .probe import (
    Failure,
    Mistake,
    call,
    compare,
    describe,
    generator,
    matches,
    tensor_like,
)
from .registry import exercise

DTYPE = torch.float64


def _leaf(
    shape: tuple, g: torch.Generator, name: str, requires_grad: bool = True
) -> Tensor:
    return Tensor(torch.randn(shape, generator=g, dtype=DTYPE), requires_grad, name)


def _named(node: Tensor, name: str) -> Tensor:
    node.name = name
    return node


def _label(node: Tensor) -> str:
    return node.name or f"the {node.op} node"


def _fail(context: str, mistake: Mistake):
    """The Failure of a known mistake: where it showed, then what it is."""
    raise Failure(f"{context}: {mistake.explanation}", mistake=mistake)


NOT_A_TUPLE = Mistake(
    "a rule returns a tuple with one gradient per parent, in the order of node.parents — "
    "`return (grad_a, grad_b)`, or `return (grad_z,)` for one parent: the engine pairs it with "
    "node.parents, and a bare tensor would be paired with them row by row",
    (links.ENGINE_RULES,),
)


def _gradients(value, what: str, count: int) -> tuple:
    """``value`` as a tuple of ``count`` gradients, or a Failure that says what a rule returns."""
    if isinstance(value, torch.Tensor):
        _fail(f"{what} returned a tensor", NOT_A_TUPLE)
    if not isinstance(value, (tuple, list)) or len(value) != count:
        length = f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""
        _fail(
            f"{what} returned {describe(value)}{length}, not {count} gradient"
            f"{'s' if count > 1 else ''}",
            NOT_A_TUPLE,
        )
    return tuple(value)


def _autograd(function, *tensors: torch.Tensor) -> tuple:
    """torch's gradients of the scalar ``function(*leaves)`` with respect to each tensor."""
    leaves = [t.clone().requires_grad_(True) for t in tensors]
    return torch.autograd.grad(function(*leaves), leaves)


# ---- the rule of the broadcasting addition -------------------------------------------------------

ADD_CASES = {
    "for the bias add (4, 3) + (3,)": ((4, 3), (3,)),
    "for (4, 3) + (4, 3), no broadcasting": ((4, 3), (4, 3)),
    "for (3,) + (4, 3), the first operand broadcast": ((3,), (4, 3)),
    "for (4, 1) + (1, 3), both stretched along an axis of size 1": ((4, 1), (1, 3)),
    "for (2, 3) + a scalar": ((2, 3), ()),
}

NO_SUM = Mistake(
    "the sum over the broadcast axis is missing. The operand was repeated along that axis, so each "
    "of its entries was used once per copy, and its gradient is the upstream gradient summed over "
    "the axis (for the bias, ∂L/∂b = Gᵀ1)",
    (links.ENGINE_BROADCASTING,),
)
NO_KEEPDIM = Mistake(
    "the numbers are right but an axis is missing: keep an axis along which the operand has size 1 "
    "(sum it with keepdim=True); drop only the axes broadcasting added in front",
    (links.ENGINE_BROADCASTING,),
)
EXTRA_AXIS = Mistake(
    "the numbers are right but there is an axis too many: the axes broadcasting added in front of "
    "the operand's shape must be summed away, so that the gradient has the operand's own shape",
    (links.ENGINE_BROADCASTING,),
)
SWAPPED = Mistake(
    "the two gradients are swapped: return them in the order of node.parents, (∂L/∂a, ∂L/∂b)",
    (links.ENGINE_RULES,),
)
MEAN = Mistake(
    "it is the mean over the broadcast axis, not the sum: each entry of the operand was used once "
    "per copy, and every use adds its gradient",
    (links.ENGINE_BROADCASTING,),
)
FIRST_ROW = Mistake(
    "it is the first row of the upstream gradient: the sum over all rows is missing",
    (links.ENGINE_BROADCASTING,),
)


def _broadcast_axes(shape: tuple, result: tuple) -> tuple:
    """The axes of ``result`` along which an operand of ``shape`` was repeated."""
    added = len(result) - len(shape)
    return tuple(range(added)) + tuple(
        added + i for i, n in enumerate(shape) if n == 1 and result[added + i] != 1
    )


@exercise(
    "workbook-autograd",
    "add_vjp",
    solution="mnistbook.autograd:add_vjp",
    contract=(
        (
            "`add_vjp(node, grad)` takes the node of c = a + b (its operands are `node.parents`) and "
            "grad = ∂L/∂c, and returns the tuple (∂L/∂a, ∂L/∂b), each of its operand's shape: the upstream "
            "gradient summed over the axes along which broadcasting repeated that operand."
        ),
        (
            "Tried in float64 on (4, 3) + (3,), the bias add; (4, 3) + (4, 3); (3,) + (4, 3); "
            "(4, 1) + (1, 3); and (2, 3) + a scalar."
        ),
    ),
)
def check_add_vjp(fn) -> str:
    """fn(node, grad) for node = a + b → (∂L/∂a, ∂L/∂b), each of its operand's shape."""
    g = generator(11)
    for case, (shape_a, shape_b) in ADD_CASES.items():
        a, b = _leaf(shape_a, g, "a"), _leaf(shape_b, g, "b")
        node = a + b
        G = torch.randn(node.shape, generator=g, dtype=DTYPE)
        got = _gradients(
            call("add_vjp(node, grad)", fn, node, G), "add_vjp(node, grad)", 2
        )
        expected = _autograd(lambda x, y, G=G: (G * (x + y)).sum(), a.data, b.data)
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else None for t in got]
        if shapes == [tuple(shape_b), tuple(shape_a)] and shape_a != shape_b:
            _fail(f"∂L/∂a has the shape of b and ∂L/∂b that of a {case}", SWAPPED)
        for name, operand, value, reference in zip("ab", (a, b), got, expected):
            shape = tuple(operand.shape)
            if (
                isinstance(value, torch.Tensor)
                and tuple(value.shape) == tuple(node.shape) != shape
            ):
                axes = ", ".join(map(str, _broadcast_axes(shape, tuple(node.shape))))
                _fail(
                    f"∂L/∂{name} has the shape of the sum, {tuple(node.shape)}, not the shape of {name}, "
                    f"{shape}, {case} ({name} was repeated along axis {axes})",
                    NO_SUM,
                )
            if (
                isinstance(value, torch.Tensor)
                and value.shape != reference.shape
                and value.numel() == reference.numel()
                and value.dim() != len(shape)
                and value.is_floating_point()
                and matches(value.reshape(reference.shape), reference)
            ):
                _fail(
                    f"∂L/∂{name} has the shape {tuple(value.shape)}, not {shape}, {case}",
                    NO_KEEPDIM if value.dim() < len(shape) else EXTRA_AXIS,
                )
            tensor_like(value, f"∂L/∂{name} {case}", shape, DTYPE)
            copies = node.data.numel() // max(operand.data.numel(), 1)
            mistakes = {MEAN: reference / copies} if copies > 1 else {}
            if (
                _broadcast_axes(shape, tuple(node.shape)) == (0,)
                and len(shape) == len(node.shape) - 1
            ):
                mistakes[FIRST_ROW] = G[0]
            compare(value, reference, f"∂L/∂{name}", mistakes, on=case)
    return "both gradients match autograd, for the bias add, no broadcasting, size-1 axes and a scalar"


# ---- the rule of relu -----------------------------------------------------------------------------

RELU_OF_GRADIENT = Mistake(
    "it is max(g, 0) = g · 1[g > 0]: the ReLU's forward applied to the gradient, so it selects by the "
    "gradient's sign instead of by whether the unit was active. ∂L/∂z = g · 1[z > 0], read off the "
    "node's value",
    (links.BUG_RELU_FORWARD, links.RELU),
)
MASK_AT_ZERO = Mistake(
    "it differs only where z = 0 exactly: take the derivative there as 0 (1[h > 0]), as "
    "torch does",
    (links.RELU,),
)
NO_UPSTREAM = Mistake(
    "the upstream gradient is missing: ∂L/∂z = g · 1[z > 0], not 1[z > 0]",
    (links.RELU,),
)
NO_MASK = Mistake("the mask is missing: ∂L/∂z = g · 1[z > 0]", (links.RELU,))
TIMES_VALUE = Mistake(
    "it is g ⊙ h, the gradient times the node's value: the mask 1[h > 0] is 0 or 1, not h",
    (links.RELU,),
)
CHANGED_VALUE = Mistake(
    "a rule must leave the values of the graph (node.data, its parents') as the forward pass left "
    "them: other rules, and a second backward(), read them",
    (links.ENGINE_RULES,),
)


@exercise(
    "workbook-autograd",
    "relu_vjp",
    solution="mnistbook.autograd:relu_vjp",
    contract=(
        (
            "`relu_vjp(node, grad)` takes the node of h = relu(z) (its value `node.data` is h, its parent "
            "`node.parents[0]` is z) and grad = ∂L/∂h, and returns the tuple (∂L/∂z,) with ∂L/∂z = "
            "grad · 1[z > 0], 0 where z = 0 exactly (as torch). It leaves the values of the graph as they are."
        ),
        "Tried in float64 on random batches of 4 and of 1 with 7 units, two of them exactly 0.",
    ),
)
def check_relu_vjp(fn) -> str:
    """fn(node, grad) for node = z.relu() → (∂L/∂z,), a tuple of one gradient."""
    g = generator(12)
    for B in (4, 1):
        on = f"for a batch of {B}"
        z = torch.randn(B, 7, generator=g, dtype=DTYPE)
        z[:, :2] = 0.0  # exact zeros: the derivative there is 0, as in torch
        node = Tensor(z.clone(), requires_grad=True, name="z").relu()  # z stays ours
        value = node.data.clone()
        G = torch.randn(B, 7, generator=g, dtype=DTYPE)
        (dz,) = _gradients(
            call("relu_vjp(node, grad)", fn, node, G),
            "relu_vjp(node, grad)",
            1,
        )
        if not torch.equal(node.data, value) or not torch.equal(
            node.parents[0].data, z
        ):
            _fail("relu_vjp changed a value of the graph in place", CHANGED_VALUE)
        tensor_like(dz, f"∂L/∂z {on}", (B, 7), DTYPE)
        (expected,) = _autograd(lambda leaf, G=G: (G * TF.relu(leaf)).sum(), z)
        compare(
            dz,
            expected,
            "∂L/∂z",
            on=on,
            mistakes={
                RELU_OF_GRADIENT: TF.relu(G),
                MASK_AT_ZERO: G * (z >= 0),
                NO_UPSTREAM: (z > 0).to(DTYPE),
                NO_MASK: G,
                TIMES_VALUE: G * TF.relu(z),
            },
        )
    return "∂L/∂z matches autograd, zeros included, for batches of 4 and 1, as a tuple of one gradient"


# ---- graphs for the bookkeeping -------------------------------------------------------------------


def _graph_network(g: torch.Generator) -> Tensor:
    """A small network: data X (no gradient) @ Wᵀ + c, relu, @ Vᵀ, cross-entropy."""
    X = _leaf((4, 5), g, "X", requires_grad=False)
    W, c, V = _leaf((3, 5), g, "W"), _leaf((3,), g, "c"), _leaf((2, 3), g, "V")
    h = _named((_named(X @ _named(W.T, "Wᵀ"), "X Wᵀ") + c).relu(), "h")
    logits = _named(h @ _named(V.T, "Vᵀ"), "logits")
    labels = torch.randint(0, 2, (4,), generator=g)
    return _named(autograd.cross_entropy(logits, labels), "L")


def _graph_square(g: torch.Generator) -> Tensor:
    """y = Σ (x ⊙ x + x): x used twice by one operation and once more by another."""
    x = _leaf((3,), g, "x")
    return _named(_named(_named(x * x, "x ⊙ x") + x, "x ⊙ x + x").sum(), "y")


def _graph_paths(g: torch.Generator) -> Tensor:
    """L = Σ (a + a ⊙ b): a reached from L along paths of two lengths (breadth-first gets it wrong)."""
    a, b = _leaf((2, 3), g, "a"), _leaf((2, 3), g, "b")
    return _named(_named(a + _named(a * b, "a ⊙ b"), "a + a ⊙ b").sum(), "L")


def _graph_reuse(g: torch.Generator) -> Tensor:
    """L = Σ (h ⊙ u + h) with h = relu(x ⊙ w): an intermediate value used twice, and a
    constant u, to which the product's rule hands a gradient that must not be stored."""
    x, w = _leaf((2, 4), g, "x"), _leaf((4,), g, "w")
    u = _leaf((2, 4), g, "u", requires_grad=False)
    h = _named(_named(x * w, "x ⊙ w").relu(), "h")
    return _named(_named(_named(h * u, "h ⊙ u") + h, "h ⊙ u + h").sum(), "L")


GRAPHS = {
    "on a small network (data X needs no gradient)": _graph_network,
    "on y = Σ (x ⊙ x + x), x used three times": _graph_square,
    "on L = Σ (a + a ⊙ b), a reached along paths of two lengths": _graph_paths,
    "on L = Σ (h ⊙ u + h), h used twice, u a constant": _graph_reuse,
}


def _nodes(root: Tensor) -> list[Tensor]:
    """Every node of the graph, constants included, parents before children (the checks' own order)."""
    order, seen = [], set()

    def visit(node: Tensor) -> None:
        if node not in seen:
            seen.add(node)
            for parent in node.parents:
                visit(parent)
            order.append(node)

    visit(root)
    return order


def _children(nodes: list[Tensor]) -> dict:
    """node → [(child, index of node among the child's parents)], one entry per use."""
    uses = {node: [] for node in nodes}
    for child in nodes:
        for index, parent in enumerate(child.parents):
            uses[parent].append((child, index))
    return uses


MIRROR = {
    "+": lambda node, a, b: a + b,
    "*": lambda node, a, b: a * b,
    "@": lambda node, a, b: a @ b,
    "T": lambda node, a: a.T,
    "relu": lambda node, a: TF.relu(a),
    "sum": lambda node, a: a.sum(),
    "cross_entropy": lambda node, z: TF.cross_entropy(z, node.saved),
}


def _torch_gradients(root: Tensor) -> dict:
    """∂root/∂node for every node of the graph that requires a gradient, by torch autograd on a mirror."""
    values = {}
    for node in _nodes(root):
        if node.parents:
            values[node] = MIRROR[node.op](node, *(values[p] for p in node.parents))
        else:
            values[node] = node.data.clone().requires_grad_(node.requires_grad)
        if node.requires_grad:
            values[node].retain_grad()
    values[root].backward()
    return {node: value.grad for node, value in values.items() if node.requires_grad}


# ---- the topological order ------------------------------------------------------------------------

LISTED_TWICE = Mistake(
    "a value used by several operations is reached once along each path, but belongs in the order "
    "once: keep a set of the nodes already visited",
    (links.ENGINE_ORDER, links.ENGINE_ACCUMULATION),
)
CONSTANT_LISTED = Mistake(
    "the order holds only the tensors the backward pass visits: skip parents that do not require a "
    "gradient (requires_grad is False)",
    (links.ENGINE_ORDER,),
)
LEFT_OUT = Mistake(
    "the order must hold every tensor the root depends on that requires a gradient, the root and the "
    "leaves included",
    (links.ENGINE_ORDER,),
)
ROOT_FIRST = Mistake(
    "that is the order of the backward pass. topological_order lists parents before children, as the "
    "forward pass computed them, and backpropagate runs through it from the end: append a node after "
    "its parents",
    (links.ENGINE_ORDER,),
)
CHILD_BEFORE_PARENT = Mistake(
    "every node must come after all its parents, those reached along a longer path included (an "
    "order sorted by anything else, or a breadth-first one, misses them): a depth-first search that "
    "appends a node once all its parents are in gives such an order",
    (links.ENGINE_ORDER,),
)


@exercise(
    "workbook-autograd",
    "topological_order",
    solution="mnistbook.autograd:topological_order",
    contract=(
        (
            "`topological_order(root)` returns a list of the nodes (Tensors) `root` depends on that require a "
            "gradient — `root` and the leaves included, each once, constants left out — every node after all "
            "its parents (`node.parents`)."
        ),
        (
            "Tried on a small network whose data needs no gradient, on y = Σ (x ⊙ x + x), on L = Σ (a + a ⊙ b), "
            "where a is reached along paths of two lengths, and on a graph whose intermediate value is used "
            "twice."
        ),
    ),
)
def check_topological_order(fn) -> str:
    """fn(root) → every node root depends on that requires a gradient, once each, parents first."""
    g = generator(13)
    for case, build in GRAPHS.items():
        root = build(g)
        got = call("topological_order(root)", fn, root)
        if not isinstance(got, (list, tuple)):
            raise Failure(
                f"topological_order(root) should return a list of nodes, got {describe(got)}"
            )
        for item in got:
            if not isinstance(item, Tensor):
                raise Failure(
                    f"topological_order(root) returned a list holding {describe(item)}; it must "
                    "hold the nodes themselves, the Tensor objects of the graph"
                )
        counts = {}
        for item in got:
            counts[item] = counts.get(item, 0) + 1
        twice = [node for node, count in counts.items() if count > 1]
        if twice:
            _fail(
                f"the order lists {_label(twice[0])} {counts[twice[0]]} times {case}",
                LISTED_TWICE,
            )
        constants = [node for node in got if not node.requires_grad]
        if constants:
            _fail(
                f"the order lists {_label(constants[0])}, which needs no gradient, {case}",
                CONSTANT_LISTED,
            )
        missing = [
            node for node in _nodes(root) if node.requires_grad and node not in counts
        ]
        if missing:
            _fail(
                f"the order leaves out {', '.join(_label(n) for n in missing)} {case}",
                LEFT_OUT,
            )
        if len(got) > 1 and got[0] is root:
            _fail(f"the order starts at the root {case}", ROOT_FIRST)
        place = {node: i for i, node in enumerate(got)}
        for node in got:
            for parent in node.parents:
                if parent.requires_grad and place[parent] > place[node]:
                    _fail(
                        f"the order lists {_label(node)} before {_label(parent)}, which it was computed "
                        f"from, {case}",
                        CHILD_BEFORE_PARENT,
                    )
    return (
        "parents before children, every node once, constants left out, on four graphs"
    )


# ---- the backward pass ----------------------------------------------------------------------------

WRONG_ORDER = Mistake(
    "wrong order. Visit the nodes in reverse topological order, from the root back, so that each "
    "comes after every node that uses it and passes on, or stores, a complete gradient",
    (links.ENGINE_ORDER,),
)
KEY_ERROR = Mistake(
    "a KeyError on a node usually means the pass reached it before any gradient had, or after its "
    "gradient was used up: are the nodes visited in reverse topological order, from the root back, "
    "each once and after every node that uses it?",
    (links.ENGINE_ORDER,),
)
NO_RULE_RAN = Mistake(
    "the pass must call node.vjp(grad) on every node with parents, to send its gradient to them",
    (links.ENGINE_RULES,),
)
RAN_TWICE = Mistake(
    "a node passes its gradient on once, when it is complete: first add up what arrives from every "
    "use (and list each node once in the order)",
    (links.ENGINE_ACCUMULATION, links.ENGINE_ORDER),
)
NEVER_RAN = Mistake(
    "every node with parents that requires a gradient must pass it on",
    (links.ENGINE_ORDER,),
)
ROOT_ZERO = Mistake(
    "the pass starts from ∂root/∂root = 1, torch.ones_like(root.data)",
    (links.ENGINE_ORDER,),
)
OVERWRITTEN = Mistake(
    "the gradients arriving at a value used several times must be added, not assigned",
    (links.ENGINE_ACCUMULATION,),
)
RETURNED = Mistake(
    "backpropagate fills the .grad of the tensors and returns None: what it returns is not read, so "
    "a gradient returned is a gradient lost"
)
CONSTANT_GRAD = Mistake(
    "a tensor that needs no gradient (requires_grad False: the data, a constant) got one: the backward "
    "pass computes nothing for a branch that needs no gradient. Skip a parent whose requires_grad is False",
    (links.ENGINE_ORDER,),
)
NO_GRAD = Mistake(
    "every tensor with requires_grad that the root depends on gets its gradient in .grad",
    (links.ENGINE_ORDER,),
)
ALIASED_GRAD = Mistake(
    "an in-place += on one of them changed the other. Keep each .grad a tensor of its own: add out "
    "of place, n.grad = n.grad + g, or start it as a copy, g.clone()",
    (links.ENGINE_ACCUMULATION,),
)
PASSED_ON_THE_SUM = Mistake(
    "each pass must send on the gradients it computes (kept apart from .grad, e.g. in a dict), and only "
    "add them to .grad, which holds the sum over passes",
    (links.ENGINE_ACCUMULATION,),
)
ASSIGNED = Mistake(
    "it is one pass's gradient: the second pass assigned .grad instead of adding to it. Gradients add up "
    "over backward passes, as in torch, until .grad is set to None",
    (links.ENGINE_ACCUMULATION,),
)


class _WatchedLeaf(Tensor):
    """A leaf that notes when its ``.grad`` is set: after how many rule calls of the pass."""

    @property
    def grad(self):
        return self.__dict__.get("grad")

    @grad.setter
    def grad(self, value):
        self.__dict__["grad"] = value
        self.__dict__["grad_set_after"] = len(self.__dict__["watched_calls"])


def _watch(root: Tensor) -> list:
    """Wrap every rule of the graph to record (node, gradient received) in the order the rules run,
    and make every leaf note when its ``.grad`` is set."""
    calls = []
    for node in _nodes(root):
        if node.rule is not None:

            def recording(n, grad, rule=node.rule):
                calls.append(
                    (
                        n,
                        grad.detach().clone()
                        if isinstance(grad, torch.Tensor)
                        else grad,
                    )
                )
                return rule(n, grad)

            node.rule = recording
        elif node.requires_grad:
            node.__dict__.update(watched_calls=calls, grad_set_after=None)
            node.__class__ = _WatchedLeaf
    return calls


def _shares(nodes: list[Tensor], uses: dict, expected: dict) -> dict:
    """node → the gradient each of its uses passes it (the book's rules at torch's gradients): what a
    pass that assigns instead of adding would leave."""
    return {
        node: [
            share
            for child, index in uses[node]
            if (share := child.rule(child, expected[child])[index]) is not None
        ]
        for node in nodes
        if node.requires_grad and len(uses[node]) > 1
    }


def _order(calls: list, root: Tensor, uses: dict, case: str) -> None:
    """A Failure if the rules ran in an order in which some node passed its gradient on too early."""
    ran = [node for node, _ in calls]
    if ran and ran[0] is not root:
        _fail(
            f"the first rule to run was that of {_label(ran[0])}, not the root's, {case}",
            WRONG_ORDER,
        )
    for i, node in enumerate(ran):
        later = [child for child, _ in uses[node] if child in ran[i + 1 :]]
        if later:
            _fail(
                f"{_label(node)} passed its gradient on before {_label(later[0])}, which uses it, had "
                f"passed its own to it, {case}",
                WRONG_ORDER,
            )


def _stored_early(leaf: Tensor, calls: list, uses: dict, case: str) -> None:
    """A Failure if a leaf's .grad was last set before a rule that sends it a gradient had run."""
    last_set = leaf.__dict__.get("grad_set_after")
    users = {child for child, _ in uses[leaf]}
    late = (
        [node for node, _ in calls[last_set:] if node in users]
        if last_set is not None
        else []
    )
    if late:
        _fail(
            f"{_label(leaf)}.grad was stored before {_label(late[0])}, which uses it, had passed its "
            f"gradient to it, {case}",
            WRONG_ORDER,
        )


def _sharing_memory(nodes: list[Tensor]) -> dict:
    """Each leaf whose .grad shares its memory with another node's .grad (the same tensor, or a
    view of it), and that other node."""

    def memory(node):
        grad = node.grad
        return (
            grad.untyped_storage().data_ptr()
            if isinstance(grad, torch.Tensor)
            else None
        )

    return {
        node: other
        for node in nodes
        if node.requires_grad and not node.parents and memory(node) is not None
        for other in nodes
        if other is not node and memory(other) == memory(node)
    }


def _overwritten(node: Tensor, got, shares: dict, case: str) -> None:
    if any(matches(got, share) for share in shares.get(node, ())):
        _fail(
            f"{_label(node)} received the gradient of only one of its {len(shares[node])} uses {case}",
            OVERWRITTEN,
        )


def _run(fn, root: Tensor, what: str, uses: dict, case: str) -> list:
    """Call the learner's pass on ``root`` with its rules watched; returns the calls of the rules."""
    calls = _watch(root)
    try:
        returned = call(what, fn, root)
    except Failure as failure:
        _order(calls, root, uses, case)
        if "KeyError" in failure.message:
            _fail(failure.message, KEY_ERROR)
        raise
    if returned is not None:
        _fail(f"{what} returned {describe(returned)} {case}", RETURNED)
    return calls


@exercise(
    "workbook-autograd",
    "backpropagate",
    solution="mnistbook.autograd:backpropagate",
    contract=(
        (
            "`backpropagate(root)` adds ∂root/∂t to `t.grad` for every leaf t with requires_grad that `root` "
            "(a scalar) depends on (a `.grad` of None counts as 0; filling the other nodes' `.grad` too, as the "
            "book's does, is allowed), by calling `node.vjp(grad)` of every node with parents exactly once, "
            "when its gradient is complete — in reverse topological order — and adding up the gradients that "
            "arrive at a value used several times. A tensor that needs no gradient gets none (its `.grad` stays "
            "None). It returns None."
        ),
        (
            "Tried on the four graphs of topological_order, watching the order in which the rules run and "
            "the gradient each receives; then twice on the same graph, after which every .grad must be twice "
            "one pass's."
        ),
    ),
)
def check_backpropagate(fn) -> str:
    """fn(root) → None; adds ∂root/∂t to t.grad of every tensor t with requires_grad in root's graph."""
    g = generator(14)
    for case, build in GRAPHS.items():
        root = build(g)
        nodes = _nodes(root)
        uses = _children(nodes)
        expected = _torch_gradients(root)
        shares = _shares(nodes, uses, expected)
        calls = _run(fn, root, "backpropagate(root)", uses, case)
        if not calls:
            _fail(f"no node's rule ran {case}", NO_RULE_RAN)
        ran = [node for node, _ in calls]
        for node in nodes:
            if node.rule is not None and not ran.count(node):
                _fail(f"the rule of {_label(node)} never ran {case}", NEVER_RAN)
            if node.rule is not None and ran.count(node) > 1:
                _fail(
                    f"the rule of {_label(node)} ran {ran.count(node)} times in one pass {case}",
                    RAN_TWICE,
                )
        _order(calls, root, uses, case)
        for node, received in calls:
            what = f"the gradient passed to the rule of {_label(node)}"
            tensor_like(received, f"{what} {case}", tuple(node.shape), DTYPE)
            if node is root and matches(received, torch.zeros_like(received)):
                _fail(f"the root's gradient is 0 {case}", ROOT_ZERO)
            _overwritten(node, received, shares, case)
            compare(received, expected[node], what, on=case)
        for node in nodes:
            if not node.requires_grad and node.grad is not None:
                _fail(
                    f"{_label(node)}.grad was set {case}, though {_label(node)} needs no gradient",
                    CONSTANT_GRAD,
                )
            if node.requires_grad and not node.parents:
                if node.grad is None:
                    _fail(
                        f"{_label(node)}.grad is still None after backpropagate(root) {case}",
                        NO_GRAD,
                    )
                tensor_like(
                    node.grad, f"{_label(node)}.grad {case}", tuple(node.shape), DTYPE
                )
                if not matches(node.grad, expected[node]):
                    _stored_early(node, calls, uses, case)
                    _overwritten(node, node.grad, shares, case)
                compare(node.grad, expected[node], f"{_label(node)}.grad", on=case)
    case = "when backpropagate(root) is called a second time"
    root = _graph_network(g)
    nodes = _nodes(root)
    uses, expected = _children(nodes), _torch_gradients(root)
    _run(fn, root, "backpropagate(root), a first time", uses, case)
    sharing = _sharing_memory(nodes)
    for node, received in _run(
        fn, root, "backpropagate(root), a second time", uses, case
    ):
        if isinstance(received, torch.Tensor) and not matches(received, expected[node]):
            _fail(
                f"{case}, {_label(node)} passed on a gradient other than this pass's own",
                PASSED_ON_THE_SUM,
            )
    for node in nodes:
        if node.requires_grad and not node.parents:
            tensor_like(
                node.grad, f"{_label(node)}.grad {case}", tuple(node.shape), DTYPE
            )
            try:
                compare(
                    node.grad,
                    2 * expected[node],
                    f"{_label(node)}.grad",
                    {ASSIGNED: expected[node]},
                    on=case,
                )
            except Failure as failure:
                if failure.mistake is None and node in sharing:
                    _fail(
                        f"{failure.message}. After the first pass {_label(node)}.grad shared its "
                        f"memory with {_label(sharing[node])}.grad",
                        ALIASED_GRAD,
                    )
                raise
    return (
        "every gradient matches autograd on four graphs, uses added up, in reverse topological order; "
        ".grad adds up over two passes"
    )

"""Reverse-mode automatic differentiation from scratch, built on the book's
vector–Jacobian products.

An operation on a :class:`Tensor` computes its value with torch and records a node: the
tensors it was computed from (``parents``) and its backward rule, which turns the
gradient of the result into the gradients of the parents by calling the formula the
book derived (:mod:`mnistbook.functional`). ``loss.backward()`` puts the recorded nodes
in order (:func:`topological_order`) and runs their rules from the loss back
(:func:`backpropagate`), adding up the gradients of a value used twice. The rest is the
chain rule. ``torch.autograd`` is not used: the data are plain tensors that record
nothing.
"""

import itertools
from collections.abc import Callable

import torch

from . import functional as F
from . import lockstep, scratch, validate

# By name, so that the workbook shows them with the rules that call them.
from .functional import relu_backward, sum_to_shape
from .training import RECIPE, fit, make_torch_step

#: A backward rule: (the node, ∂L/∂node) → the gradients of its parents, in their order.
Rule = Callable[["Tensor", torch.Tensor], tuple]


class Tensor:
    """A float torch tensor ``data``, its gradient ``grad`` once a backward pass has
    reached it, and, if an operation made it, the record of that operation.

    ``parents`` and ``rule`` are recorded only when the result needs a gradient, i.e.
    when some parent requires one: a branch of the computation that needs none leaves
    no record, so a backward pass never visits it."""

    def __init__(self, data, requires_grad: bool = False, name: str = ""):
        if not isinstance(data, torch.Tensor) or not data.is_floating_point():
            raise TypeError(
                "Tensor: data must be a floating-point torch.Tensor, got "
                f"{_describe(data)}"
            )
        self.data = data.detach()
        self.requires_grad = bool(requires_grad)
        self.grad: torch.Tensor | None = None
        self.name = name  # shown in the graph, e.g. "fc1.W"
        self.op = ""  # the operation that made it; "" for a leaf
        self.parents: tuple[Tensor, ...] = ()
        self.rule: Rule | None = None
        self.saved = None  # what the rule needs besides parents and value

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    def __repr__(self) -> str:
        made = f", op={self.op!r}" if self.op else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor(shape={tuple(self.shape)}, dtype={self.dtype}{made}{grad})"

    def item(self) -> float:
        return self.data.item()

    def vjp(self, grad: torch.Tensor) -> tuple:
        """The gradients this node passes to its parents, given ∂L/∂(this node)."""
        return self.rule(self, grad)

    def backward(self) -> None:
        """Add ∂self/∂t to ``t.grad`` for every tensor t with requires_grad that self
        was computed from (self included); self must be a scalar."""
        if self.data.dim() != 0:
            raise ValueError(
                "backward(): needs a scalar (0-dim) result such as a loss, got shape "
                f"{tuple(self.shape)}; reduce it first, e.g. with .sum() or .mean()"
            )
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require a gradient: it was not "
                "computed from any tensor created with requires_grad=True"
            )
        backpropagate(self)

    # ---- operations: each computes its value and records its rule ----

    def __add__(self, other) -> "Tensor":
        other = _operand(other, self, "+")
        return _elementwise(self, other, "+", torch.add, add_vjp)

    def __radd__(self, other) -> "Tensor":
        return _operand(other, self, "+") + self

    def __sub__(self, other) -> "Tensor":
        other = _operand(other, self, "-")
        return _elementwise(self, other, "-", torch.sub, sub_vjp)

    def __rsub__(self, other) -> "Tensor":
        return _operand(other, self, "-") - self

    def __mul__(self, other) -> "Tensor":
        other = _operand(other, self, "*")
        return _elementwise(self, other, "*", torch.mul, mul_vjp)

    def __rmul__(self, other) -> "Tensor":
        return _operand(other, self, "*") * self

    def __neg__(self) -> "Tensor":
        return _record(-self.data, "neg", (self,), neg_vjp)

    def __matmul__(self, other) -> "Tensor":
        other = _operand(other, self, "@")
        if self.data.dim() != 2 or other.data.dim() != 2:
            raise ValueError(
                f"a @ b: needs two matrices (2-D), got shapes {tuple(self.shape)} and "
                f"{tuple(other.shape)}"
            )
        if self.shape[1] != other.shape[0]:
            raise ValueError(
                f"a @ b: shapes {tuple(self.shape)} and {tuple(other.shape)} do not "
                f"fit: a has {self.shape[1]} columns, b has {other.shape[0]} rows"
            )
        return _record(self.data @ other.data, "@", (self, other), matmul_vjp)

    def relu(self) -> "Tensor":
        return _record(F.relu(self.data), "relu", (self,), relu_vjp)

    def sum(self, dim: int | None = None, keepdim: bool = False) -> "Tensor":
        dim = _axis(dim, self, "sum")
        data = self.data.sum() if dim is None else self.data.sum(dim, keepdim)
        return _record(data, "sum", (self,), sum_vjp, (dim, keepdim))

    def mean(self, dim: int | None = None, keepdim: bool = False) -> "Tensor":
        dim = _axis(dim, self, "mean")
        data = self.data.mean() if dim is None else self.data.mean(dim, keepdim)
        return _record(data, "mean", (self,), mean_vjp, (dim, keepdim))

    @property
    def T(self) -> "Tensor":
        if self.data.dim() != 2:
            raise ValueError(f".T: needs a matrix (2-D), got shape {tuple(self.shape)}")
        return _record(self.data.T, "T", (self,), transpose_vjp)

    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = tuple(shape[0])
        try:
            data = self.data.reshape(shape)
        except RuntimeError:
            raise ValueError(
                f"reshape: cannot reshape {tuple(self.shape)} ({self.data.numel()} "
                f"entries) to {shape}"
            ) from None
        return _record(data, "reshape", (self,), reshape_vjp)

    def log_softmax(self, dim: int = -1) -> "Tensor":
        dim = _axis(dim, self, "log_softmax")
        data = F.log_softmax(self.data.movedim(dim, -1)).movedim(-1, dim)
        return _record(data, "log_softmax", (self,), log_softmax_vjp, dim)


def cross_entropy(logits: Tensor, labels: torch.Tensor) -> Tensor:
    """The mean cross-entropy of ``logits`` (B, K) for integer ``labels`` (B,), as one
    node whose rule is the book's (P − Y)/B."""
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"cross_entropy: logits must be an autograd Tensor, got {_describe(logits)}"
        )
    if logits.data.dim() != 2 or logits.shape[0] == 0:
        raise ValueError(
            "cross_entropy: logits must have shape (B, K) with B ≥ 1, got "
            f"{tuple(logits.shape)}"
        )
    validate.labels(labels, logits.shape[0], logits.shape[1], "cross_entropy")
    data = F.cross_entropy(logits.data, labels)
    return _record(data, "cross_entropy", (logits,), cross_entropy_vjp, labels)


# ---- the backward rules: (node, ∂L/∂node) → gradients of the parents ----------------


def add_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """The gradients o = a + b passes to a and b: ō, summed over the axes along
    which broadcasting stretched each operand, so that each has its operand's shape."""
    a, b = node.parents
    return sum_to_shape(grad, a.shape), sum_to_shape(grad, b.shape)


def sub_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """o = a − b: as for a + b, with the sign of b's gradient flipped."""
    a, b = node.parents
    return sum_to_shape(grad, a.shape), -sum_to_shape(grad, b.shape)


def mul_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """o = a ⊙ b: ā = ō ⊙ b and b̄ = ō ⊙ a, each summed to its shape."""
    a, b = node.parents
    return (
        sum_to_shape(grad * b.data, a.shape),
        sum_to_shape(grad * a.data, b.shape),
    )


def neg_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """o = −a: ā = −ō."""
    return (-grad,)


def matmul_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """o = a b: ō bᵀ and aᵀ ō, each computed only if that parent needs it."""
    a, b = node.parents
    return F.matmul_backward(a.data, b.data, grad, a.requires_grad, b.requires_grad)


def relu_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """The gradient o = relu(a) passes to a: ō · 1[a > 0], read off the node's
    own value o (o > 0 exactly where a > 0)."""
    return (relu_backward(node.data, grad),)


def sum_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """o = Σ a: every entry of a gets ō of the sum it went into."""
    (a,) = node.parents
    return (F.sum_backward(grad, a.shape, *node.saved),)


def mean_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """m = Σ a / n: as for the sum, divided by the n entries each mean averaged."""
    (a,) = node.parents
    dim, keepdim = node.saved
    count = a.data.numel() if dim is None else a.shape[dim]
    return (F.sum_backward(grad, a.shape, dim, keepdim) / count,)


def transpose_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """o = aᵀ: ā = ōᵀ."""
    return (grad.T,)


def reshape_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """Reshaping moves no number: the gradient is reshaped back."""
    (a,) = node.parents
    return (grad.reshape(a.shape),)


def log_softmax_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """log p = log_softmax(z): ḡ − p Σ ḡ along the softmax's dimension."""
    dim = node.saved
    log_p, grad = node.data.movedim(dim, -1), grad.movedim(dim, -1)
    return (F.log_softmax_backward(log_p, grad).movedim(-1, dim),)


def cross_entropy_vjp(node: Tensor, grad: torch.Tensor) -> tuple:
    """L = mean cross-entropy: ∂L/∂Z = (P − Y)/B, times the scalar upstream gradient."""
    (logits,) = node.parents
    return (grad * F.cross_entropy_grad(logits.data, node.saved),)


# ---- the two pieces of bookkeeping: order and accumulation ---------------------------


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` depends on that requires a gradient, ``root`` included,
    each once, parents before children: an order in which the forward pass could
    have computed them.

    Depth-first: a node is appended once all its parents are. An explicit stack
    rather than recursion, so that a chain of any length fits."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))
            stack.extend(  # reversed: the first parent is popped, and ordered, first
                (p, False)
                for p in reversed(node.parents)
                if p.requires_grad and p not in visited
            )
    return order


def backpropagate(root: Tensor) -> None:
    """Add ∂root/∂t to ``t.grad`` for every tensor t in ``root``'s graph.

    Runs the rules from the root back, in reverse topological order, so that every
    child of a node has passed it its gradient before the node passes its own on; a
    node used by several children receives the sum of their gradients."""
    grads = {root: torch.ones_like(root.data)}  # ∂root/∂node in this pass
    for node in reversed(topological_order(root)):
        grad = grads.pop(node)
        node.grad = grad if node.grad is None else node.grad + grad
        if node.rule is None:  # a leaf: nothing further back
            continue
        for parent, parent_grad in zip(node.parents, node.vjp(grad)):
            if parent.requires_grad:
                grads[parent] = (
                    grads[parent] + parent_grad if parent in grads else parent_grad
                )


# ---- recording ---------------------------------------------------------------------


def _record(data: torch.Tensor, op: str, parents: tuple, rule: Rule, saved=None):
    """The result of an operation: its value, and its record if it needs a gradient."""
    out = Tensor(data)
    out.op = op
    if any(p.requires_grad for p in parents):
        out.requires_grad, out.parents, out.rule, out.saved = True, parents, rule, saved
    return out


def _elementwise(a: Tensor, b: Tensor, op: str, function, rule: Rule) -> Tensor:
    if a.dtype != b.dtype:
        raise TypeError(
            f"a {op} b: both operands must have the same dtype, got {a.dtype} and "
            f"{b.dtype}"
        )
    try:
        data = function(a.data, b.data)
    except RuntimeError:
        raise ValueError(
            f"a {op} b: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
            "broadcast together (aligned from the right, each pair of sizes must be "
            "equal or one of them 1)"
        ) from None
    return _record(data, op, (a, b), rule)


def _operand(value, like: Tensor, op: str) -> Tensor:
    """``value`` as a Tensor: a Python number or a float torch tensor is a constant."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Tensor(torch.tensor(value, dtype=like.dtype, device=like.data.device))
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return Tensor(value)
    raise TypeError(
        f"a {op} b: the operand must be a Tensor, a float torch.Tensor or a number, got "
        f"{_describe(value)}"
    )


def _axis(dim, tensor: Tensor, op: str) -> int | None:
    """``dim`` as a non-negative axis of ``tensor`` (None stays None)."""
    if dim is None:
        return None
    n = tensor.data.dim()
    if not isinstance(dim, int) or isinstance(dim, bool) or not -n <= dim < n:
        raise ValueError(
            f"{op}: dim must be an integer in [{-n}, {n - 1}] for shape "
            f"{tuple(tensor.shape)}, got {dim!r}"
        )
    return dim % n


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} torch.Tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"


# ---- the book's network on the engine ------------------------------------------------


class Net:
    """784 → 120 → 256 → 10 with ReLUs, on the engine: a forward pass and nothing else.

    ``parameters`` wraps the given tensors (named as in ``scratch.Net``), without
    copying them; the gradients come from ``backward()`` on the loss."""

    def __init__(self, parameters: dict[str, torch.Tensor]):
        self.parameters = {
            name: Tensor(p, requires_grad=True, name=name)
            for name, p in parameters.items()
        }

    def forward(self, images: torch.Tensor) -> Tensor:
        x = Tensor(validate.images(images, "autograd.Net.forward"), name="X")
        p = self.parameters
        h = (x @ p["fc1.W"].T + p["fc1.b"]).relu()
        h = (h @ p["fc2.W"].T + p["fc2.b"]).relu()
        return h @ p["fc3.W"].T + p["fc3.b"]

    def __call__(self, images: torch.Tensor) -> Tensor:
        return self.forward(images)


def engine_copy(torch_net) -> Net:
    """An engine Net holding copies of ``torch_net``'s weights (same dtype and device)."""
    return Net(
        {
            name: torch_net.get_parameter(torch_name).detach().clone()
            for name, torch_name in lockstep.TORCH_NAMES.items()
        }
    )


def three_way_gradients(
    torch_net, images: torch.Tensor, labels: torch.Tensor
) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """∂L/∂θ of the mean cross-entropy on a batch, for every parameter θ of
    ``torch_net``, three ways: (the engine's, ``scratch.Net.backward``'s, torch
    autograd's), each network holding ``torch_net``'s weights."""
    engine_net, scratch_net = engine_copy(torch_net), lockstep.scratch_copy(torch_net)
    cross_entropy(engine_net(images), labels).backward()
    criterion = scratch.CrossEntropyLoss()
    scratch_net.backward(criterion.backward(scratch_net(images), labels))
    torch_net.zero_grad()
    torch.nn.functional.cross_entropy(torch_net(images), labels).backward()
    return {
        name: (
            p.grad,
            scratch_net.grads[name],
            torch_net.get_parameter(lockstep.TORCH_NAMES[name]).grad,
        )
        for name, p in engine_net.parameters.items()
    }


def make_engine_step(
    net: Net, lr: float = RECIPE.lr, momentum: float = RECIPE.momentum
):
    """``step(images, labels)``: forward, loss, ``backward()``, the book's SGD update;
    returns the batch's loss (the contract of ``make_scratch_step``). The loss node
    of the latest step stays in ``step.loss``."""
    optimizer = scratch.SGD(
        {name: p.data for name, p in net.parameters.items()}, lr, momentum
    )

    def step(images: torch.Tensor, labels: torch.Tensor) -> float:
        device = net.parameters["fc1.W"].data.device
        images, labels = images.to(device), labels.to(device)
        for p in net.parameters.values():
            p.grad = None  # the gradients of this batch alone, as zero_grad()
        step.loss = cross_entropy(net(images), labels)
        step.loss.backward()
        optimizer.step({name: p.grad for name, p in net.parameters.items()})
        return step.loss.item()

    step.loss = None
    return step


def relu_outputs(root: Tensor) -> list[torch.Tensor]:
    """The values of the relu nodes of ``root``'s graph, in forward order: read off
    the engine's own record."""
    return [node.data for node in topological_order(root) if node.op == "relu"]


def run_lockstep(
    torch_net,
    engine_net: Net,
    batches,
    steps: int | None = None,
    lr: float = RECIPE.lr,
    momentum: float = RECIPE.momentum,
    log=None,
) -> lockstep.Lockstep:
    """Step a PyTorch ``Net`` and an engine ``Net`` on the same batches with the same
    SGD settings, recording what :func:`mnistbook.lockstep.run_lockstep` records."""
    step_torch = make_torch_step(
        torch_net,
        torch.nn.CrossEntropyLoss(),
        torch.optim.SGD(torch_net.parameters(), lr=lr, momentum=momentum),
    )
    step_engine = make_engine_step(engine_net, lr, momentum)
    record = lockstep.Lockstep()
    pairs = [
        (torch_net.get_parameter(lockstep.TORCH_NAMES[name]), p.data)
        for name, p in engine_net.parameters.items()
    ]

    def both(images, labels) -> float:
        record.torch_losses.append(step_torch(images, labels))
        loss = step_engine(images, labels)
        record.weight_difference.append(
            lockstep.max_weight_difference(torch_net, None, pairs)
        )
        h1, h2 = relu_outputs(step_engine.loss)
        record.relu_disagreements.append(
            int(
                (torch_masks["fc1"] != (h1 > 0)).sum()
                + (torch_masks["fc2"] != (h2 > 0)).sum()
            )
        )
        return loss

    source = itertools.islice(batches, steps) if steps else batches
    with lockstep.relu_masks(torch_net) as torch_masks:
        record.scratch_losses = fit(both, source, epochs=1, log=log)
    return record

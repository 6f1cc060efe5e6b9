"""The workbook's checks of the autograd engine: each passes the book's code and an independent
correct version, and fails with its named diagnosis on every known mistake."""

from collections import deque

import pytest
import torch

from mnistbook import autograd
from mnistbook import functional as F
from mnistbook.workbook import (
    check_add_vjp,
    check_backpropagate,
    check_relu_vjp,
    check_topological_order,
    summary,
)


def failed_with(result, *phrases, link=None):
    assert not result.passed and not result.pending, result
    for phrase in phrases:
        assert phrase in result.message, result
    if link:
        assert any(link in s.url for s in result.sections), result
    return result


# ---- independent correct implementations ----------------------------------------------------------


def looped_add_vjp(node, grad):
    """Sums axis by axis, from the last, with explicit loops over the shapes."""
    out = []
    for parent in node.parents:
        g, shape = grad, tuple(parent.shape)
        while g.dim() > len(shape):
            g = g.sum(0)
        for axis in range(len(shape)):
            if shape[axis] == 1 and g.shape[axis] != 1:
                g = g.sum(axis, keepdim=True)
        out.append(g)
    return tuple(out)


def where_relu_vjp(node, grad):
    z = node.parents[0].data
    return (torch.where(z > 0, grad, torch.zeros_like(grad)),)


def kahn_order(root):
    """Kahn's algorithm: count each node's parents, release a node once all are listed."""
    nodes, stack = {}, [root]
    while stack:
        node = stack.pop()
        if node not in nodes:
            nodes[node] = [p for p in node.parents if p.requires_grad]
            stack.extend(nodes[node])
    waiting = {node: len(parents) for node, parents in nodes.items()}
    users = {node: [] for node in nodes}
    for node, parents in nodes.items():
        for parent in parents:
            users[parent].append(node)
    ready = deque(node for node, count in waiting.items() if count == 0)
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for user in users[node]:
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    return order


def recursive_order(root):
    order, seen = [], set()

    def visit(node):
        if node not in seen and node.requires_grad:
            seen.add(node)
            for parent in node.parents:
                visit(parent)
            order.append(node)

    visit(root)
    return order


def counting_backpropagate(root):
    """Passes a node's gradient on once every use has sent its share: no global order at all."""
    order = recursive_order(root)
    pending = {node: 0 for node in order}
    for node in order:
        for parent in node.parents:
            if parent.requires_grad:
                pending[parent] += 1
    grads, ready = {root: torch.ones_like(root.data)}, [root]
    while ready:
        node = ready.pop()
        grad = grads.pop(node)
        node.grad = grad if node.grad is None else node.grad + grad
        for parent, share in zip(node.parents, node.vjp(grad) if node.parents else ()):
            if parent.requires_grad:
                grads[parent] = grads[parent] + share if parent in grads else share
                pending[parent] -= 1
                if pending[parent] == 0:
                    ready.append(parent)


@pytest.mark.parametrize(
    "check, implementations",
    [
        (check_add_vjp, [autograd.add_vjp, looped_add_vjp]),
        (check_relu_vjp, [autograd.relu_vjp, where_relu_vjp]),
        (
            check_topological_order,
            [autograd.topological_order, kahn_order, recursive_order],
        ),
        (check_backpropagate, [autograd.backpropagate, counting_backpropagate]),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_correct_implementations_pass(check, implementations):
    for implementation in implementations:
        result = check(implementation)
        assert result.passed, result
        assert "\n" not in result.message and len(result.message) < 200


def test_stubs_are_not_implemented_yet_and_the_summary_says_so():
    def stub(*args):
        raise NotImplementedError("your code here")

    results = [
        check(stub)
        for check in (
            check_add_vjp,
            check_relu_vjp,
            check_topological_order,
            check_backpropagate,
        )
    ]
    assert all(r.pending and not r.passed for r in results), results
    assert summary(*results).pending


# ---- the rule of the broadcasting addition --------------------------------------------------------


def test_add_vjp_mistakes():
    broadcasting = "autograd.html#autograd-broadcasting"
    failed_with(
        check_add_vjp(lambda node, grad: (grad, grad)),
        "the sum over the broadcast axis is missing",
        "shape of the sum, (4, 3)",
        "(3,)",
        link=broadcasting,
    )

    def mean(node, grad):
        return tuple(
            F.sum_to_shape(grad, p.shape) * p.data.numel() / grad.numel()
            for p in node.parents
        )

    failed_with(
        check_add_vjp(mean),
        "the mean over the broadcast axis, not the sum",
        link=broadcasting,
    )

    def first_row(node, grad):
        a, b = node.parents
        return F.sum_to_shape(grad, a.shape), grad[
            0
        ] if b.data.dim() == 1 else F.sum_to_shape(grad, b.shape)

    failed_with(check_add_vjp(first_row), "first row", link=broadcasting)

    def no_keepdim(node, grad):
        out = []
        for p in node.parents:
            g = F.sum_to_shape(grad, p.shape)
            out.append(g.squeeze() if g.dim() == 2 and 1 in g.shape else g)
        return tuple(out)

    failed_with(check_add_vjp(no_keepdim), "keepdim=True", link=broadcasting)
    failed_with(
        check_add_vjp(lambda node, grad: autograd.add_vjp(node, grad)[::-1]),
        "swapped",
    )
    failed_with(
        check_add_vjp(lambda node, grad: grad),
        "returned a tensor",
        "one gradient per parent",
    )
    failed_with(
        check_add_vjp(lambda node, grad: [F.sum_to_shape(grad, node.parents[0].shape)]),
        "of length 1",
        "not 2 gradients",
    )


# ---- the rule of relu -----------------------------------------------------------------------------


def test_relu_vjp_mistakes():
    failed_with(
        check_relu_vjp(lambda node, grad: (grad.clamp_min(0),)),
        "max(g, 0)",
        link="failure-modes.html#failure-relu-forward",
    )
    failed_with(
        check_relu_vjp(lambda node, grad: (grad * (grad > 0),)),
        "the gradient's sign",
    )
    failed_with(
        check_relu_vjp(lambda node, grad: (grad * (node.parents[0].data >= 0),)),
        "z = 0 exactly",
    )
    failed_with(
        check_relu_vjp(lambda node, grad: (grad * node.data,)),
        "times the node's value",
    )
    failed_with(check_relu_vjp(lambda node, grad: (grad,)), "the mask is missing")
    failed_with(
        check_relu_vjp(lambda node, grad: F.relu_backward(node.data, grad)),
        "returned a tensor",
        "return (grad_z,)",
    )
    failed_with(
        check_relu_vjp(lambda node, grad: (grad.mul_(node.data > 0),)), "in place"
    )

    def zeroes_its_value(node, grad):
        node.data[node.data <= 0] = 0.0
        node.data.mul_(0)
        return (grad,)

    failed_with(
        check_relu_vjp(zeroes_its_value), "changed a value of the graph in place"
    )

    def clamps_its_operand(node, grad):  # the operand z, not the node's value h
        z = node.parents[0].data
        z.clamp_(min=0)
        return (grad * (z > 0),)

    failed_with(
        check_relu_vjp(clamps_its_operand), "changed a value of the graph in place"
    )


# ---- the topological order ------------------------------------------------------------------------


def root_first(root):
    order, seen, stack = [], set(), [root]
    while stack:
        node = stack.pop()
        if node not in seen and node.requires_grad:
            seen.add(node)
            order.append(node)
            stack.extend(node.parents)
    return order


def breadth_first_reversed_from_the_root(root):
    order, seen, queue = [], {root}, deque([root])
    while queue:
        node = queue.popleft()
        order.append(node)
        for parent in node.parents:
            if parent.requires_grad and parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return order[::-1]


def no_visited_set(root):
    order = []

    def visit(node):
        for parent in node.parents:
            if parent.requires_grad:
                visit(parent)
        order.append(node)

    visit(root)
    return order


def with_constants(root):
    order, seen = [], set()

    def visit(node):
        if node not in seen:
            seen.add(node)
            for parent in node.parents:
                visit(parent)
            order.append(node)

    visit(root)
    return order


def test_topological_order_mistakes():
    order = "autograd.html#autograd-topological-order"
    failed_with(check_topological_order(root_first), "starts at the root", link=order)
    failed_with(
        check_topological_order(breadth_first_reversed_from_the_root),
        "before",
        "which it was computed from",
        "breadth-first",
        link=order,
    )
    failed_with(  # an order sorted by something else: no breadth-first search to blame
        check_topological_order(
            lambda root: sorted(autograd.topological_order(root), key=lambda n: n.name)
        ),
        "every node must come after all its parents",
        "sorted by anything else",
        link=order,
    )
    failed_with(
        check_topological_order(no_visited_set),
        "times",
        "set of the nodes already visited",
        link=order,
    )
    failed_with(
        check_topological_order(with_constants),
        "lists X, which needs no gradient",
        link=order,
    )
    failed_with(
        check_topological_order(
            lambda root: [n for n in autograd.topological_order(root) if n.parents]
        ),
        "leaves out W, c, V",
        link=order,
    )
    failed_with(check_topological_order(lambda root: {root}), "should return a list")
    failed_with(
        check_topological_order(lambda root: [root.data]),
        "the Tensor objects of the graph",
    )


# ---- the backward pass ----------------------------------------------------------------------------


def dict_pass(order_of, add=True, accumulate=True, seed=torch.ones_like):
    """The book's pass with one piece changed: the order, adding the uses, adding to .grad, the seed."""

    def backpropagate(root):
        grads = {root: seed(root.data)}
        for node in order_of(root):
            grad = grads.pop(node)
            node.grad = (
                grad if node.grad is None or not accumulate else node.grad + grad
            )
            if node.rule is None:
                continue
            for parent, share in zip(node.parents, node.vjp(grad)):
                if parent.requires_grad:
                    grads[parent] = (
                        grads[parent] + share if add and parent in grads else share
                    )

    return backpropagate


def reverse(order_of):
    return lambda root: order_of(root)[::-1]


def propagates_grad(root):
    """micrograd's way without zero_grad: the running .grad is what gets passed on."""
    root.grad = torch.ones_like(root.data) if root.grad is None else root.grad + 1
    for node in reversed(autograd.topological_order(root)):
        if node.rule is None:
            continue
        for parent, share in zip(node.parents, node.vjp(node.grad)):
            if parent.requires_grad:
                parent.grad = share if parent.grad is None else parent.grad + share


def stores_leaves_early(root):
    """Each node's gradient passed on as soon as the breadth-first walk reaches it."""
    grads = {root: torch.ones_like(root.data)}
    for node in breadth_first_reversed_from_the_root(root)[::-1]:
        grad = grads.pop(node)
        node.grad = grad if node.grad is None else node.grad + grad
        if node.rule is not None:
            for parent, share in zip(node.parents, node.vjp(grad)):
                if parent.requires_grad:
                    grads[parent] = grads[parent] + share if parent in grads else share


def test_backpropagate_mistakes():
    accumulation = "autograd.html#autograd-accumulation"
    order = "autograd.html#autograd-topological-order"
    failed_with(
        check_backpropagate(dict_pass(reverse(autograd.topological_order), add=False)),
        "only one of its",
        "added, not assigned",
        link=accumulation,
    )
    failed_with(
        check_backpropagate(dict_pass(autograd.topological_order)),
        "KeyError",
        "reverse topological order",
        link=order,
    )
    failed_with(
        check_backpropagate(dict_pass(reverse(breadth_first_reversed_from_the_root))),
        "wrong order",
        link=order,
    )
    failed_with(check_backpropagate(stores_leaves_early), "wrong order", link=order)
    failed_with(
        check_backpropagate(
            dict_pass(reverse(autograd.topological_order), accumulate=False)
        ),
        "second",
        "assigned .grad instead of adding",
        link=accumulation,
    )
    failed_with(
        check_backpropagate(propagates_grad),
        "a second time",
        "other than this pass's own",
    )
    failed_with(
        check_backpropagate(
            dict_pass(reverse(autograd.topological_order), seed=torch.zeros_like)
        ),
        "root's gradient is 0",
    )
    failed_with(
        check_backpropagate(dict_pass(reverse(no_visited_set))), "KeyError", "each once"
    )
    failed_with(check_backpropagate(lambda root: None), "no node's rule ran")

    def returns_the_gradients(root):
        autograd.backpropagate(root)
        return {node: node.grad for node in autograd.topological_order(root)}

    failed_with(
        check_backpropagate(returns_the_gradients), "returned a dict", "returns None"
    )

    def grads_for_everyone(root):  # the data, which needs none, gets a gradient too
        autograd.backpropagate(root)
        for node in with_constants(root):
            if node.grad is None:
                node.grad = torch.zeros_like(node.data)

    failed_with(check_backpropagate(grads_for_everyone), "needs no gradient")

    def stores_the_constants_shares(
        root,
    ):  # what a rule hands a constant is stored, not dropped
        grads = {root: torch.ones_like(root.data)}
        for node in reversed(autograd.topological_order(root)):
            grad = grads.pop(node)
            node.grad = grad if node.grad is None else node.grad + grad
            for parent, share in zip(node.parents, node.vjp(grad) if node.rule else ()):
                if parent.requires_grad:
                    grads[parent] = grads[parent] + share if parent in grads else share
                elif share is not None:
                    parent.grad = share

    failed_with(check_backpropagate(stores_the_constants_shares), "needs no gradient")

    def adds_in_place(
        root,
    ):  # .grad starts as the very gradient passed on, then grows in place
        grads = {root: torch.ones_like(root.data)}
        for node in reversed(autograd.topological_order(root)):
            grad = grads.pop(node)
            if node.grad is None:
                node.grad = grad
            else:
                node.grad += grad
            for parent, share in zip(node.parents, node.vjp(grad) if node.rule else ()):
                if parent.requires_grad:
                    grads[parent] = grads[parent] + share if parent in grads else share

    failed_with(
        check_backpropagate(adds_in_place),
        "shared its memory",
        "in-place +=",
        link=accumulation,
    )


def test_the_messages_name_the_nodes_of_the_graph():
    result = failed_with(
        check_backpropagate(dict_pass(reverse(autograd.topological_order), add=False))
    )
    assert any(name in result.message for name in ("h ", "x ", "a ")), result

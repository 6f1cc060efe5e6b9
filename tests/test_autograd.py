"""The autograd engine against torch.autograd in float64: random graphs, every operation,
values used twice, broadcasting, long chains, gradients adding up over backward() calls; the
network on the engine against scratch.Net and torch on real MNIST; the torch.autograd.Function
bridge; and every error naming what was expected and what came."""

import random

import matplotlib.patches
import pytest
import torch
import torch.nn.functional as TF

from mnistbook import (
    autograd,
    batches,
    bench,
    custom_gradients,
    gradcheck,
    lockstep,
    model,
    plots,
    scratch,
    seeding,
    training,
)
from mnistbook import functional as F
from mnistbook.autograd import Tensor, cross_entropy

DTYPE = torch.float64


def pair(shape, g, requires_grad=True, name=""):
    """The same random values as an engine Tensor and as a torch leaf."""
    data = torch.randn(shape, generator=g, dtype=DTYPE)
    return (
        Tensor(data, requires_grad=requires_grad, name=name),
        data.clone().requires_grad_(requires_grad),
    )


def assert_same_gradients(leaves, rtol=1e-10):
    for ours, theirs in leaves:
        if theirs.grad is None:  # needs no gradient, or the loss does not depend on it
            assert ours.grad is None
        else:
            assert ours.grad is not None and ours.grad.shape == ours.data.shape
            torch.testing.assert_close(ours.grad, theirs.grad, rtol=rtol, atol=1e-12)


# ---- random graphs ------------------------------------------------------------------------------

BROADCAST_SHAPES = [(4,), (1, 4), (3, 1), (), (3, 4)]


def random_program(seed: int, steps: int = 25):
    """A random graph over (3, 4) values, built twice (engine, torch) from the same draws: every
    operation, operands drawn with replacement (so values get reused), broadcast operands of
    every kind, constants beside parameters."""
    rng, g = random.Random(seed), torch.Generator().manual_seed(seed)
    leaves = [pair((3, 4), g, requires_grad=i != 1) for i in range(3)]
    pool = list(leaves)
    labels = torch.randint(0, 4, (3,), generator=g)

    def pick():
        return rng.choice(pool)

    for _ in range(steps):
        (a, ta), (b, tb) = pick(), pick()
        kind = rng.randrange(12)
        if kind in (0, 1, 2):  # +, -, * of two values (possibly the same one)
            op = ["__add__", "__sub__", "__mul__"][kind]
            new = getattr(a, op)(b), getattr(ta, op)(tb)
        elif kind == 3:  # a broadcast operand, on either side
            c, tc = pair(
                rng.choice(BROADCAST_SHAPES), g, requires_grad=rng.random() < 0.8
            )
            leaves.append((c, tc))
            op = rng.choice(["__add__", "__sub__", "__mul__"])
            new = (
                (getattr(a, op)(c), getattr(ta, op)(tc))
                if rng.random() < 0.5
                else (getattr(c, op)(a), getattr(tc, op)(ta))
            )
        elif kind == 4:
            new = a.relu(), TF.relu(ta)
        elif kind == 5:
            new = -a, -ta
        elif kind == 6:  # a @ (bᵀ @ a): matrix products and transposes, back to (3, 4)
            new = a @ (b.T @ a) * 0.1, ta @ (tb.T @ ta) * 0.1
        elif kind == 7:
            M, tM = pair((4, 4), g)
            leaves.append((M, tM))
            new = a @ M, ta @ tM
        elif kind == 8:
            new = (
                a.reshape(12).reshape(4, 3).reshape(3, 4),
                ta.reshape(12).reshape(4, 3).reshape(3, 4),
            )
        elif kind == 9:
            dim, keep = rng.choice([0, 1, -1]), rng.random() < 0.5
            reduce = rng.choice(["sum", "mean"])
            r, tr = (
                getattr(a, reduce)(dim=dim, keepdim=keep),
                getattr(ta, reduce)(dim=dim, keepdim=keep),
            )
            if not keep:
                shape = (1, 4) if dim == 0 else (3, 1)
                r, tr = r.reshape(*shape), tr.reshape(*shape)
            new = b * r, tb * tr
        elif kind == 10:
            dim = rng.choice([0, 1, -1])
            new = a.log_softmax(dim=dim), ta.log_softmax(dim=dim)
        else:  # Python numbers on either side
            new = 2.0 * a - 1.5 + (3 + b) * 0.5, 2.0 * ta - 1.5 + (3 + tb) * 0.5
        pool.append(new)
    (last, tlast), (other, tother) = pool[-1], pick()
    loss = cross_entropy(last, labels) + (other * last).mean() + last.sum() * 0.01
    tloss = (
        TF.cross_entropy(tlast, labels) + (tother * tlast).mean() + tlast.sum() * 0.01
    )
    return loss, tloss, leaves


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_match_torch_autograd(seed):
    loss, tloss, leaves = random_program(seed)
    torch.testing.assert_close(loss.data, tloss.detach(), rtol=1e-12, atol=1e-12)
    loss.backward()
    tloss.backward()
    assert_same_gradients(leaves)


def test_gradients_add_up_over_two_backward_calls_until_reset():
    loss, tloss, leaves = random_program(3)
    loss.backward()
    loss.backward()
    tloss.backward(retain_graph=True)
    tloss.backward()
    assert_same_gradients(leaves)
    for ours, _ in leaves:
        ours.grad = None
    loss.backward()
    for ours, theirs in leaves:
        if theirs.grad is not None:
            torch.testing.assert_close(2 * ours.grad, theirs.grad)


def test_a_value_used_twice_gets_the_sum_of_both_paths():
    x = Tensor(torch.tensor(3.0, dtype=DTYPE), requires_grad=True)
    (x * x + x).backward()
    assert x.grad.item() == 7.0  # 2x + 1
    g = torch.Generator().manual_seed(0)
    (h, th), (u, tu) = pair((2, 5), g), pair((2, 5), g)
    r, tr = h.relu(), TF.relu(th)
    (r * u + r * r + r).sum().backward()
    (tr * tu + tr * tr + tr).sum().backward()
    assert_same_gradients([(h, th), (u, tu)])


def test_broadcast_gradients_are_summed_to_each_operands_shape():
    g = torch.Generator().manual_seed(1)
    for shape_a, shape_b in [
        ((5, 3), (3,)),
        ((3,), (5, 3)),
        ((5, 1), (1, 3)),
        ((2, 5, 3), (5, 1)),
        ((5, 3), ()),
    ]:
        (a, ta), (b, tb) = pair(shape_a, g), pair(shape_b, g)
        (w, tw) = pair(torch.broadcast_shapes(shape_a, shape_b), g, requires_grad=False)
        ((a + b) * w).sum().backward()
        ((ta + tb) * tw).sum().backward()
        assert_same_gradients([(a, ta), (b, tb)])


def test_the_bias_gradient_is_the_column_sums_of_G():
    g = torch.Generator().manual_seed(2)
    G = torch.randn(4, 3, generator=g, dtype=DTYPE)
    torch.testing.assert_close(F.sum_to_shape(G, (3,)), G.sum(0))
    torch.testing.assert_close(F.sum_to_shape(G, (1, 3)), G.sum(0, keepdim=True))
    torch.testing.assert_close(F.sum_to_shape(G, (4, 1)), G.sum(1, keepdim=True))
    torch.testing.assert_close(F.sum_to_shape(G, ()), G.sum())
    assert F.sum_to_shape(G, (4, 3)) is G


def test_a_long_chain():
    g = torch.Generator().manual_seed(4)
    (x, tx), (w, tw) = pair((3,), g), pair((3,), g)
    y, ty = x, tx
    for _ in range(3000):  # far deeper than Python's recursion limit
        y, ty = (
            (y * 0.999 + w * 0.001).relu() + 0.001,
            TF.relu(ty * 0.999 + tw * 0.001) + 0.001,
        )
    y.sum().backward()
    ty.sum().backward()
    assert_same_gradients([(x, tx), (w, tw)])


def test_every_operation_alone():
    g = torch.Generator().manual_seed(5)
    (a, ta), (b, tb) = pair((3, 4), g), pair((4, 2), g)
    labels = torch.tensor([0, 1, 1])
    cases = {
        "matmul": (lambda: (a @ b).sum(), lambda: (ta @ tb).sum()),
        "T": (lambda: (a.T * a.T).sum(), lambda: (ta.T * ta.T).sum()),
        "reshape": (
            lambda: (a.reshape(2, 6) * a.reshape(2, 6)).sum(),
            lambda: (ta.reshape(2, 6) ** 2).sum(),
        ),
        "sum": (
            lambda: (a.sum(dim=1) * a.sum(dim=1)).sum(),
            lambda: (ta.sum(1) ** 2).sum(),
        ),
        "mean": (
            lambda: (a.mean(dim=0, keepdim=True) * a).mean(),
            lambda: (ta.mean(0, keepdim=True) * ta).mean(),
        ),
        "neg": (lambda: (-a * a).sum(), lambda: (-ta * ta).sum()),
        "sub": (lambda: (a - a * a).sum(), lambda: (ta - ta * ta).sum()),
        "relu": (lambda: (a.relu() * a).sum(), lambda: (TF.relu(ta) * ta).sum()),
        "log_softmax": (
            lambda: (a.log_softmax(dim=0) * a).sum(),
            lambda: (ta.log_softmax(0) * ta).sum(),
        ),
        "cross_entropy": (
            lambda: cross_entropy(a @ b, labels[:3] % 2),
            lambda: TF.cross_entropy(ta @ tb, labels % 2),
        ),
    }
    for name, (ours, theirs) in cases.items():
        for leaf in (a, b):
            leaf.grad = None
        for leaf in (ta, tb):
            leaf.grad = None
        ours().backward()
        theirs().backward()
        for leaf, tleaf in ((a, ta), (b, tb)):
            if tleaf.grad is None:
                assert leaf.grad is None, name
            else:
                torch.testing.assert_close(
                    leaf.grad, tleaf.grad, rtol=1e-10, atol=1e-12, msg=name
                )


def test_cross_entropy_spelt_out_in_the_other_operations_is_the_same_loss():
    g = torch.Generator().manual_seed(11)
    (z, _), labels = pair((5, 4), g), torch.tensor([0, 3, 1, 1, 2])
    Y = Tensor(F.one_hot(labels, 4, DTYPE))
    spelt = -(z.log_softmax(dim=1) * Y).sum(dim=1).mean()
    one_node = cross_entropy(z, labels)
    assert (
        len(autograd.topological_order(spelt))
        == len(autograd.topological_order(one_node)) + 4
    )
    torch.testing.assert_close(spelt.data, one_node.data)
    spelt.backward()
    first, z.grad = z.grad, None
    one_node.backward()
    torch.testing.assert_close(first, z.grad)


def test_formulas_added_to_functional_match_autograd():
    g = torch.Generator().manual_seed(6)
    A, B = (
        torch.randn(3, 5, generator=g, dtype=DTYPE),
        torch.randn(5, 2, generator=g, dtype=DTYPE),
    )
    G = torch.randn(3, 2, generator=g, dtype=DTYPE)
    expected = gradcheck.autograd_gradients(
        lambda A, B: (G * (A @ B)).sum(), {"A": A, "B": B}
    )
    dA, dB = F.matmul_backward(A, B, G)
    torch.testing.assert_close(dA, expected["A"])
    torch.testing.assert_close(dB, expected["B"])
    assert F.matmul_backward(A, B, G, a_grad=False)[0] is None
    z = 3 * torch.randn(4, 6, generator=g, dtype=DTYPE)
    Gz = torch.randn(4, 6, generator=g, dtype=DTYPE)
    expected = gradcheck.autograd_gradients(
        lambda z: (Gz * torch.log_softmax(z, -1)).sum(), {"z": z}
    )
    torch.testing.assert_close(
        F.log_softmax_backward(F.log_softmax(z), Gz), expected["z"]
    )
    expected = gradcheck.autograd_gradients(
        lambda z: (Gz[:, 0] * z.sum(1)).sum(), {"z": z}
    )
    torch.testing.assert_close(F.sum_backward(Gz[:, 0], z.shape, 1), expected["z"])


def test_nothing_is_recorded_or_computed_for_branches_that_need_no_gradient(
    monkeypatch,
):
    asked = []
    matmul_backward = F.matmul_backward
    monkeypatch.setattr(
        F,
        "matmul_backward",
        lambda a, b, g, a_grad=True, b_grad=True: (
            asked.append((a_grad, b_grad)),
            matmul_backward(a, b, g, a_grad, b_grad),
        )[1],
    )
    g = torch.Generator().manual_seed(7)
    (X, _), (W, _), (C, _) = (
        pair((4, 5), g, False),
        pair((3, 5), g),
        pair((5, 5), g, False),
    )
    constant = (X @ C).relu() * 2.0
    assert (
        not constant.requires_grad and constant.parents == () and constant.rule is None
    )
    loss = ((X @ W.T) * (constant @ W.T)).sum()
    order = autograd.topological_order(loss)
    assert X not in order and C not in order and constant not in order
    loss.backward()
    assert asked == [(False, True), (False, True)]  # never ∂L/∂X: X needs no gradient
    assert X.grad is None and C.grad is None and W.grad.shape == (3, 5)


def test_topological_order_lists_each_node_once_after_its_parents():
    loss, _, _ = random_program(8)
    order = autograd.topological_order(loss)
    assert len(order) == len(set(order)) and order[-1] is loss
    place = {node: i for i, node in enumerate(order)}
    for node in order:
        assert all(place[p] < place[node] for p in node.parents if p.requires_grad)


# ---- the network on the engine ------------------------------------------------------------------


def test_the_engine_network_equals_scratch_and_torch_on_real_batches(train_tensors):
    images, labels = train_tensors
    torch_net, _ = lockstep.twin_nets(seed=seeding.SEED, dtype=DTYPE)
    for start in (0, 1000):
        x, y = images[start : start + 32].double(), labels[start : start + 32]
        torch.testing.assert_close(
            autograd.engine_copy(torch_net)(x).data,
            torch_net(x).detach(),
            rtol=1e-12,
            atol=1e-12,
        )
        for name, (engine, hand, reference) in autograd.three_way_gradients(
            torch_net, x, y
        ).items():
            assert engine.shape == hand.shape == reference.shape, name
            assert gradcheck.relative_error(engine, hand) < 1e-12, name
            assert gradcheck.relative_error(engine, reference) < 1e-12, name


def test_the_engine_network_trains_in_lockstep_with_torch_in_float64(train_tensors):
    images, labels = train_tensors
    torch_net, _ = lockstep.twin_nets(seed=seeding.SEED, dtype=DTYPE)
    engine_net = autograd.engine_copy(torch_net)
    first = slice(0, 1200)  # 300 steps of 4: the first 1200 images, shuffled
    source = batches.InMemoryBatches(
        images[first].double(),
        labels[first],
        training.RECIPE.batch_size,
        generator=seeding.generator(),
    )
    record = autograd.run_lockstep(torch_net, engine_net, source, steps=300)
    assert (
        len(record.weight_difference) == 300 and max(record.weight_difference) < 1e-12
    )
    assert record.first_disagreement() is None
    assert (
        max(abs(a - b) for a, b in zip(record.torch_losses, record.scratch_losses))
        < 1e-12
    )
    assert record.scratch_losses[-1] < record.scratch_losses[0] or sum(
        record.scratch_losses[-50:]
    ) < sum(record.scratch_losses[:50])


def test_the_engine_step_is_the_scratch_step_with_fresh_gradients_each_step(
    train_tensors,
):
    images, labels = train_tensors
    torch_net, scratch_net = lockstep.twin_nets(seed=seeding.SEED, dtype=DTYPE)
    engine_net = autograd.engine_copy(torch_net)
    engine_step = autograd.make_engine_step(engine_net)
    scratch_step = scratch.make_scratch_step(
        scratch_net,
        scratch.CrossEntropyLoss(),
        scratch.SGD(scratch_net.parameters, lr=0.001, momentum=0.9),
    )
    for start in range(0, 20, 4):
        x, y = images[start : start + 4].double(), labels[start : start + 4]
        assert abs(engine_step(x, y) - scratch_step(x, y)) < 1e-12
    for (
        name,
        p,
    ) in (
        engine_net.parameters.items()
    ):  # the last batch's gradients, not a sum over steps
        assert gradcheck.relative_error(p.grad, scratch_net.grads[name]) < 1e-12, name
        assert gradcheck.relative_error(p.data, scratch_net.parameters[name]) < 1e-12, (
            name
        )
    assert isinstance(engine_step.loss, Tensor) and engine_step.loss.data.dim() == 0


def test_relu_outputs_are_read_off_the_graph():
    torch_net, _ = lockstep.twin_nets(seed=0)
    x = torch.randn(5, 784)
    loss = cross_entropy(
        autograd.engine_copy(torch_net)(x), torch.zeros(5, dtype=torch.long)
    )
    h1, h2 = autograd.relu_outputs(loss)
    torch.testing.assert_close(h1, TF.relu(torch_net.fc1(x)).detach())
    torch.testing.assert_close(
        h2, TF.relu(torch_net.fc2(TF.relu(torch_net.fc1(x)))).detach()
    )


def test_the_graph_figure_draws_one_box_per_node():
    torch_net, _ = lockstep.twin_nets(seed=0)
    loss = cross_entropy(
        autograd.engine_copy(torch_net)(torch.randn(4, 784)), torch.tensor([0, 1, 2, 3])
    )
    figure = plots.autograd_graph(loss)
    boxes = [
        p
        for p in figure.axes[0].patches
        if isinstance(p, matplotlib.patches.FancyBboxPatch)
    ]
    assert (
        len(boxes) == len(autograd.topological_order(loss)) + 1
    )  # and X, which needs no gradient
    random_loss, _, _ = random_program(9, steps=8)
    plots.autograd_graph(random_loss)  # any graph can be drawn


def test_bench_times_the_engine_step_beside_the_others(train_tensors):
    images, labels = train_tensors
    seconds = bench.step_seconds(
        images, labels, 4, steps=3, repeats=1, which=bench.STEPS
    )
    assert set(seconds) == set(bench.STEPS) and all(s > 0 for s in seconds.values())
    assert set(bench.step_seconds(images, labels, 4, steps=2, repeats=1)) == {
        "torch autograd",
        "scratch",
    }
    with pytest.raises(ValueError, match="which must name steps of"):
        bench.step_seconds(images, labels, 4, steps=2, which=("engines",))


# ---- the torch.autograd.Function bridge ----------------------------------------------------------


def test_the_functions_pass_gradcheck():
    g = torch.Generator().manual_seed(10)
    x, W, b, z = (
        torch.randn(*s, dtype=DTYPE, generator=g, requires_grad=True)
        for s in ((4, 5), (3, 5), (3,), (4, 5))
    )
    assert torch.autograd.gradcheck(custom_gradients.LinearFunction.apply, (x, W, b))
    assert torch.autograd.gradcheck(custom_gradients.ReLUFunction.apply, (z,))
    data = x.detach()  # an input that needs no gradient: its gradient is not computed
    assert torch.autograd.gradcheck(custom_gradients.LinearFunction.apply, (data, W, b))


def test_the_bridge_network_trains_as_pytorchs_own(train_tensors):
    images, labels = train_tensors
    nets = []
    for cls in (custom_gradients.Net, model.Net):
        torch.manual_seed(seeding.SEED)
        nets.append(cls())
    ours, theirs = nets
    assert all(
        torch.equal(p, q) for p, q in zip(ours.parameters(), theirs.parameters())
    )
    assert [n for n, _ in ours.named_parameters()] == [
        n for n, _ in theirs.named_parameters()
    ]
    losses = []
    for net in nets:
        step = training.make_torch_step(
            net,
            torch.nn.CrossEntropyLoss(),
            torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9),
        )
        source = batches.InMemoryBatches(
            images, labels, 32, generator=seeding.generator()
        )
        losses.append(
            training.fit(
                step, (b for b, _ in zip(source, range(60))), epochs=1, log=None
            )
        )
    assert sum(losses[0][-10:]) < sum(losses[0][:10])  # it learns
    for p, q in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


# ---- errors say what was expected and what came ------------------------------------------------------


def test_errors_name_what_was_expected_and_what_came():
    a = Tensor(torch.zeros(3, 4), requires_grad=True)
    with pytest.raises(
        TypeError,
        match=r"floating-point torch.Tensor, got a torch.int64 torch.Tensor of shape \(2,\)",
    ):
        Tensor(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="got a list"):
        Tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"scalar \(0-dim\).*got shape \(3, 4\)"):
        a.backward()
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        Tensor(torch.zeros(())).backward()
    with pytest.raises(
        ValueError, match=r"a \+ b: shapes \(3, 4\) and \(5,\) cannot be broadcast"
    ):
        a + Tensor(torch.zeros(5))
    with pytest.raises(ValueError, match=r"a \* b: shapes \(3, 4\) and \(2, 4\)"):
        a * Tensor(torch.zeros(2, 4))
    with pytest.raises(
        ValueError,
        match=r"a @ b: shapes \(3, 4\) and \(5, 2\) do not fit: a has 4 columns, b has 5 rows",
    ):
        a @ Tensor(torch.zeros(5, 2))
    with pytest.raises(
        ValueError, match=r"needs two matrices \(2-D\), got shapes \(3, 4\) and \(4,\)"
    ):
        a @ Tensor(torch.zeros(4))
    with pytest.raises(
        ValueError, match=r"\.T: needs a matrix \(2-D\), got shape \(4,\)"
    ):
        _ = Tensor(torch.zeros(4)).T
    with pytest.raises(
        ValueError, match=r"cannot reshape \(3, 4\) \(12 entries\) to \(5,\)"
    ):
        a.reshape(5)
    with pytest.raises(
        TypeError, match="same dtype, got torch.float32 and torch.float64"
    ):
        a + Tensor(torch.zeros(4, dtype=DTYPE))
    with pytest.raises(TypeError, match="got a str"):
        a * "2"
    with pytest.raises(
        ValueError,
        match=r"sum: dim must be an integer in \[-2, 1\] for shape \(3, 4\), got 2",
    ):
        a.sum(dim=2)
    with pytest.raises(
        TypeError,
        match=r"labels must be an integer tensor \(int64\), got a torch.float32",
    ):
        cross_entropy(a, torch.zeros(3))
    with pytest.raises(
        ValueError, match=r"labels must lie in \[0, 3\], got values from 0 to 7"
    ):
        cross_entropy(a, torch.tensor([0, 7, 1]))
    with pytest.raises(
        ValueError, match=r"logits must have shape \(B, K\) with B ≥ 1, got \(4,\)"
    ):
        cross_entropy(Tensor(torch.zeros(4)), torch.tensor([0]))
    with pytest.raises(
        TypeError,
        match="logits must be an autograd Tensor, got a torch.float32 torch.Tensor",
    ):
        cross_entropy(torch.zeros(3, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(
        ValueError, match=r"images must have shape \(B, 1, 28, 28\) or \(B, 784\)"
    ):
        autograd.Net(lockstep.scratch_copy(model.Net()).parameters)(torch.zeros(2, 10))

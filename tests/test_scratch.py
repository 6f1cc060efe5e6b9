"""The from-scratch network: each piece against torch autograd, and the whole against torch."""

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from mnistbook import batches, gradcheck, lockstep, metrics, scratch, seeding, training

from conftest import DEVICES

f64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "batch, n_in, n_out", [(1, 784, 120), (6, 120, 256), (3, 256, 10)]
)
def test_linear_backward_vs_autograd(device, batch, n_in, n_out):
    torch.manual_seed(batch)
    layer = scratch.Linear(n_in, n_out, dtype=f64, device=device)
    x = torch.randn(batch, n_in, dtype=f64, device=device)
    G = torch.randn(batch, n_out, dtype=f64, device=device)
    checks = gradcheck.check_linear(layer, x, G, samples=10)
    assert max(c.vs_autograd for c in checks) < 1e-12
    assert max(c.vs_finite_differences for c in checks) < gradcheck.GOOD


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 120), (9, 256)])
def test_relu_backward_vs_autograd(device, shape):
    z = torch.randn(*shape, dtype=f64, device=device)
    checks = gradcheck.check_relu(scratch.ReLU(), z, torch.randn_like(z), samples=None)
    assert (
        checks[0].vs_autograd == 0 and checks[0].vs_finite_differences < gradcheck.GOOD
    )


def test_relu_at_exactly_zero_passes_no_gradient_like_torch():
    relu = scratch.ReLU()
    z = torch.tensor([[-1.0, 0.0, 0.0, 2.0]])
    relu.forward(z)
    leaf = z.clone().requires_grad_(True)
    torch.relu(leaf).sum().backward()
    assert (
        relu.backward(torch.ones(1, 4)).tolist()
        == leaf.grad.tolist()
        == [[0.0, 0.0, 0.0, 1.0]]
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch", [1, 5])
def test_loss_backward_vs_autograd(device, batch):
    logits = torch.randn(batch, 10, dtype=f64, device=device) * 4
    labels = torch.randint(0, 10, (batch,), device=device)
    checks = gradcheck.check_loss(
        scratch.CrossEntropyLoss(), logits, labels, samples=None
    )
    assert (
        checks[0].vs_autograd < 1e-14
        and checks[0].vs_finite_differences < gradcheck.GOOD
    )


@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_loss_with_logits_of_a_thousand_is_finite_and_correct(dtype):
    logits = torch.tensor(
        [[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]], dtype=dtype
    )
    labels = torch.tensor([0, 2])
    criterion = scratch.CrossEntropyLoss()
    leaf = logits.clone().requires_grad_(True)
    expected = TF.cross_entropy(leaf, labels)
    expected.backward()
    loss, grad = criterion.forward(logits, labels), criterion.backward(logits, labels)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(grad, leaf.grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(4))
def test_whole_net_gradients_vs_autograd_and_finite_differences(
    device, real_batch, seed
):
    """Whatever generator draws the weights (seeds here; a GPU draws others), a sampled
    entry whose perturbation crosses a ReLU kink is left out, not read as an error."""
    X, y = (t.to(device) for t in real_batch)
    torch.manual_seed(seed)
    net = scratch.Net(dtype=f64, device=device)
    checks = gradcheck.check_net(
        net, scratch.CrossEntropyLoss(), X[:1], y[:1], samples=10
    )
    checks += gradcheck.check_net(net, scratch.CrossEntropyLoss(), X, y, samples=10)
    assert max(c.vs_autograd for c in checks) < 1e-12
    assert max(c.worst for c in checks) < gradcheck.GOOD, gradcheck.report(checks)


def test_a_perturbation_across_a_kink_is_left_out_and_counted(real_batch):
    X, y = real_batch
    torch.manual_seed(0)
    net = scratch.Net(dtype=f64)
    with (
        torch.no_grad()
    ):  # unit 0 of layer 1 sits 1e-6 above its kink for the first image
        net.fc1.b[0] -= (X[:1] @ net.fc1.W[0] + net.fc1.b[0]).item() - 1e-6
    logits = net.forward(X[:1])
    net.backward(scratch.CrossEntropyLoss().backward(logits, y[:1]))
    criterion = scratch.CrossEntropyLoss()

    def ours():
        return criterion.forward(net.forward(X[:1]), y[:1])

    aware = gradcheck.finite_differences(
        ours, net.fc1.b, torch.tensor([0, 1]), 1e-5, lambda: gradcheck.relu_pattern(net)
    )
    blind = gradcheck.finite_differences(ours, net.fc1.b, torch.tensor([0, 1]), 1e-5)
    assert aware[0].isnan() and not aware[1].isnan() and aware[1] == blind[1]
    assert abs(blind[0] - net.grads["fc1.b"][0]) > 1e-3 * abs(net.grads["fc1.b"][0])
    checks = gradcheck.check_net(
        net, criterion, X[:1], y[:1], samples=120
    )  # all of fc1.b
    fc1_b = next(c for c in checks if c.name == "fc1.b")
    assert fc1_b.at_kinks >= 1 and fc1_b.worst < gradcheck.GOOD


def test_linear_is_initialised_like_nn_linear():
    torch.manual_seed(3)
    theirs = nn.Linear(120, 256)
    torch.manual_seed(3)
    ours = scratch.Linear(120, 256)
    assert torch.equal(ours.W, theirs.weight.detach()) and torch.equal(
        ours.b, theirs.bias.detach()
    )


def test_parameters_are_the_layers_tensors():
    net = scratch.Net()
    assert list(net.parameters) == [
        "fc1.W",
        "fc1.b",
        "fc2.W",
        "fc2.b",
        "fc3.W",
        "fc3.b",
    ]
    assert net.parameters["fc2.W"] is net.fc2.W and net.parameters["fc3.b"] is net.fc3.b
    assert net.relu1 is not net.relu2


def test_sgd_matches_torch_optim_sgd_over_twenty_steps_with_momentum():
    g = gen(0)
    params = {"a": torch.randn(7, 5, generator=g), "b": torch.randn(5, generator=g)}
    theirs = [p.clone().requires_grad_(True) for p in params.values()]
    ours = scratch.SGD(params, lr=0.05, momentum=0.9)
    torch_sgd = torch.optim.SGD(theirs, lr=0.05, momentum=0.9)
    for _ in range(20):
        grads = {name: torch.randn(p.shape, generator=g) for name, p in params.items()}
        for t, grad in zip(theirs, grads.values()):
            t.grad = grad.clone()
        torch_sgd.step()
        ours.step(grads)
        for p, t in zip(params.values(), theirs):
            assert torch.equal(p, t.detach())


def test_sgd_without_momentum_keeps_no_buffers():
    params = {"w": torch.zeros(3)}
    sgd = scratch.SGD(params, lr=0.5)
    sgd.step({"w": torch.ones(3)})
    assert params["w"].tolist() == [-0.5] * 3 and sgd.buffers == {}


@pytest.mark.parametrize("device", DEVICES)
def test_a_whole_step_equals_torchs(device, real_batch):
    X, y = (t.to(device) for t in real_batch)
    torch_net, ours = lockstep.twin_nets(seed=1, dtype=f64, device=device)
    record = lockstep.run_lockstep(torch_net, ours, [(X, y)] * 3, lr=0.01, momentum=0.9)
    assert max(record.weight_difference) < 1e-14
    assert record.torch_losses == pytest.approx(record.scratch_losses, rel=1e-13)


def test_works_under_no_grad_and_never_builds_a_graph(real_batch):
    X, y = real_batch
    net, criterion = scratch.Net(dtype=f64), scratch.CrossEntropyLoss()
    with torch.no_grad():
        net.backward(criterion.backward(net.forward(X), y))
    assert all(not g.requires_grad and g.grad_fn is None for g in net.grads.values())


def test_short_training_on_a_subset_beats_90_percent(train_tensors, test_tensors):
    images, labels = train_tensors
    torch.manual_seed(0)
    net = scratch.Net()
    step = scratch.make_scratch_step(
        net,
        scratch.CrossEntropyLoss(),
        scratch.SGD(net.parameters, lr=0.01, momentum=0.9),
    )
    training.fit(
        step,
        batches.InMemoryBatches(
            images[:20_000], labels[:20_000], 32, generator=seeding.generator()
        ),
        epochs=1,
        log=None,
    )
    test_images, test_labels = test_tensors
    confusion = metrics.confusion_matrix(metrics.predict(net, test_images), test_labels)
    assert metrics.accuracy(confusion) > 90


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: scratch.Net().forward(torch.zeros(4, 3, 28, 28)),
            ValueError,
            r"\(B, 1, 28, 28\) or \(B, 784\).*got \(4, 3, 28, 28\)",
        ),
        (
            lambda: scratch.Linear(784, 120).forward(torch.zeros(4, 100)),
            ValueError,
            r"\(B, 784\).*got \(4, 100\)",
        ),
        (
            lambda: scratch.Linear(784, 120).backward(torch.zeros(4, 120)),
            RuntimeError,
            "backward\\(\\) called before forward\\(\\)",
        ),
        (
            lambda: scratch.ReLU().backward(torch.zeros(4, 120)),
            RuntimeError,
            "before forward",
        ),
        (
            lambda: scratch.CrossEntropyLoss().forward(
                torch.zeros(4, 10), torch.tensor([0, 1, 2, 10])
            ),
            ValueError,
            r"labels must lie in \[0, 9\], got values from 0 to 10",
        ),
        (
            lambda: scratch.CrossEntropyLoss().forward(
                torch.zeros(4, 10), torch.tensor([0, 1, 2, -1])
            ),
            ValueError,
            "got values from -1 to 2",
        ),
        (
            lambda: scratch.CrossEntropyLoss().forward(
                torch.zeros(4, 10), torch.zeros(4)
            ),
            TypeError,
            "labels must be an integer tensor",
        ),
        (
            lambda: scratch.CrossEntropyLoss().forward(
                torch.zeros(4, 10), torch.zeros(3, dtype=torch.int64)
            ),
            ValueError,
            r"labels must have shape \(4,\), got \(3,\)",
        ),
        (
            lambda: scratch.CrossEntropyLoss().forward(
                torch.zeros(10), torch.zeros(1, dtype=torch.int64)
            ),
            ValueError,
            r"logits must have shape \(B, K\)",
        ),
        (
            lambda: scratch.SGD({"w": torch.zeros(1)}, lr=0.1).step({}),
            KeyError,
            "no gradient for",
        ),
        (lambda: scratch.SGD({"w": torch.zeros(1)}, lr=-1), ValueError, "lr > 0"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_shared_relu_with_different_widths_is_named():
    relu = scratch.ReLU()
    relu.forward(torch.zeros(4, 120))
    relu.forward(torch.zeros(4, 256))
    with pytest.raises(ValueError, match="shared by two layers"):
        relu.backward(torch.zeros(4, 120))

"""Every line of the failure-modes chapter's summary table: each check fires for its bug and
stays silent for the correct code."""

import math

import pytest
import torch

from mnistbook import bugs, gradcheck, scratch
from mnistbook import diagnostics as D


@pytest.fixture(scope="module")
def data(train_tensors, test_tensors):
    images, labels = train_tensors
    check_images, check_labels = test_tensors
    return (
        images,
        labels,
        check_images[:32].double().reshape(32, 784),
        check_labels[:32],
    )


def quick(data, patch=None, hidden=(120, 256)):
    if patch is None:
        return D.quick_checks(*data, hidden=hidden)
    with patch():
        return D.quick_checks(*data, hidden=hidden)


def test_correct_code_passes_every_check(data):
    checks = quick(data)
    assert checks.gradient < gradcheck.GOOD
    assert abs(checks.initial_gap) < 0.1
    assert checks.tiny_batch < 0.05
    assert D.first_nonfinite(checks.run.losses) is None
    assert D.loss_curve(checks.run.losses) == "falls"


def test_ascent_is_seen_by_training_checks_not_by_the_gradient_check(data):
    checks = quick(data, bugs.optimizer_ascends)
    assert (
        checks.gradient < gradcheck.GOOD
    )  # the gradients are right; the update is not
    assert D.first_nonfinite(checks.run.losses) is not None
    assert D.loss_curve(checks.run.losses) == "diverged"
    assert not checks.tiny_batch < 0.05


@pytest.mark.parametrize(
    "patch", [bugs.activations_for_gradients, bugs.relu_forward_in_backward]
)
def test_wrong_backward_is_seen_by_gradient_check_tiny_batch_and_loss_curve(
    data, patch
):
    checks = quick(data, patch)
    worst = {c.name: c.worst for c in checks.gradients}
    assert all(
        worst[name] > gradcheck.WRONG for name in ("fc1.W", "fc1.b", "fc2.W", "fc2.b")
    )
    assert (
        worst["fc3.W"] < gradcheck.GOOD and worst["fc3.b"] < gradcheck.GOOD
    )  # the top is right
    assert checks.tiny_batch > 0.5
    assert D.loss_curve(checks.run.losses) == "stalls at chance"


def test_shared_relu_of_different_widths_crashes_with_a_named_error(data):
    images, labels = data[:2]
    with bugs.shared_relu():
        net = scratch.Net()
        logits = net.forward(images[:4])
        with pytest.raises(ValueError, match="shared by two layers"):
            net.backward(scratch.CrossEntropyLoss().backward(logits, labels[:4]))


def test_shared_relu_of_equal_widths_is_seen_only_by_the_gradient_check(data):
    checks = quick(data, bugs.shared_relu, hidden=(120, 120))
    worst = {c.name: c.worst for c in checks.gradients}
    assert worst["fc1.W"] > gradcheck.WRONG and worst["fc1.b"] > gradcheck.WRONG
    assert all(
        worst[name] < gradcheck.GOOD for name in ("fc2.W", "fc2.b", "fc3.W", "fc3.b")
    )
    assert checks.tiny_batch < 0.05
    assert D.first_nonfinite(checks.run.losses) is None
    assert D.loss_curve(checks.run.losses) == "falls"
    assert quick(data, hidden=(120, 120)).gradient < gradcheck.GOOD


def test_shadowed_loss_crashes_on_the_first_step_before_any_update(data):
    images, labels = data[:2]
    torch.manual_seed(0)
    net = scratch.Net()
    before = {name: p.clone() for name, p in net.parameters.items()}
    with pytest.raises(
        RuntimeError, match="Mismatch in shape"
    ):  # in torch's Tensor.backward
        bugs.train_shadowing_loss(
            net, scratch.SGD(net.parameters, lr=0.1), [(images[:4], labels[:4])] * 2
        )
    assert all(torch.equal(before[name], p) for name, p in net.parameters.items())


def test_gradient_not_divided_is_b_times_too_large_and_fails_the_gradient_check(data):
    checks = quick(data, bugs.gradient_of_sum)
    assert (
        checks.gradient > gradcheck.WRONG
        and D.loss_curve(checks.run.losses) == "stalls at chance"
    )
    assert checks.tiny_batch > 0.5
    logits, labels = torch.randn(64, 10, dtype=torch.float64), data[1][:64]
    correct = scratch.CrossEntropyLoss().backward(logits, labels)
    with bugs.gradient_of_sum():
        assert torch.allclose(
            scratch.CrossEntropyLoss().backward(logits, labels), 64 * correct
        )


def test_summed_loss_is_seen_by_initial_loss_and_autograd_not_by_finite_differences(
    data,
):
    _, _, X, y = data
    with bugs.sum_instead_of_mean():
        torch.manual_seed(0)
        checks = gradcheck.check_net(
            scratch.Net(dtype=torch.float64), scratch.CrossEntropyLoss(), X, y
        )
        gap = quick(data).initial_gap
    assert max(c.vs_finite_differences for c in checks) < gradcheck.GOOD
    assert min(c.vs_autograd for c in checks) > gradcheck.WRONG
    assert gap > 100 * math.log(10)  # about (1000 − 1) ln 10 on the 1000 images used


def test_unshifted_softmax_is_seen_only_by_the_nan_guard_once_logits_grow(data):
    images, labels = data[:2]
    checks = quick(data, bugs.unshifted_softmax)
    assert (
        checks.gradient < gradcheck.GOOD
        and D.first_nonfinite(checks.run.losses) is None
    )
    with bugs.unshifted_softmax():
        naive = D.short_run(images, labels, steps=100, lr=0.3)
    stable = D.short_run(images, labels, steps=100, lr=0.3)
    assert D.first_nonfinite(naive.losses) is not None
    assert D.first_nonfinite(stable.losses) is None
    step = D.first_nonfinite(naive.losses)
    assert math.isfinite(naive.losses[step - 2]) and not math.isfinite(
        naive.losses[step - 1]
    )
    with bugs.unshifted_softmax():
        before = D.short_run(
            images, labels, steps=step - 1, lr=0.3
        )  # up to the step before
        trace = D.nonfinite_trace(
            before.net, scratch.CrossEntropyLoss(), *before.next_batch
        )
    assert trace["largest logit"] > math.log(torch.finfo(torch.float32).max)
    assert trace["non-finite probabilities"] > 0 and math.isinf(trace["loss"])
    assert trace["non-finite gradient entries"] > 0


def test_forgotten_zero_grad_is_seen_by_the_stale_gradient_check_and_the_loss_curve(
    data,
):
    images, labels = data[:2]
    losses, stale = D.torch_short_run(images, labels)
    assert stale < 1e-6 and D.loss_curve(losses) == "falls"
    with bugs.forgotten_zero_grad():
        losses, stale = D.torch_short_run(images, labels)
    assert stale > gradcheck.WRONG and D.loss_curve(losses) != "falls"
    assert torch.optim.SGD.zero_grad is torch.optim.Optimizer.zero_grad  # restored


@pytest.mark.parametrize(
    "lr, verdict",
    [(1.0, "stalls at chance"), (0.01, "falls"), (1e-5, "stalls at chance")],
)
def test_learning_rate_too_large_or_too_small_is_seen_by_the_loss_curve(
    data, lr, verdict
):
    images, labels = data[:2]
    run = D.short_run(images, labels, steps=2 * math.ceil(len(images) / 64), lr=lr)
    assert D.loss_curve(run.losses) == verdict


def test_patches_are_undone_after_the_block():
    originals = (
        scratch.SGD.update,
        scratch.Net.backward,
        scratch.ReLU.backward,
        scratch.Net.__init__,
        scratch.CrossEntropyLoss.forward,
        scratch.CrossEntropyLoss.backward,
        D.F.softmax,
        D.F.log_softmax,
    )
    for patch in (
        bugs.optimizer_ascends,
        bugs.activations_for_gradients,
        bugs.relu_forward_in_backward,
        bugs.shared_relu,
        bugs.sum_instead_of_mean,
        bugs.unshifted_softmax,
    ):
        with patch():
            pass
    assert originals == (
        scratch.SGD.update,
        scratch.Net.backward,
        scratch.ReLU.backward,
        scratch.Net.__init__,
        scratch.CrossEntropyLoss.forward,
        scratch.CrossEntropyLoss.backward,
        D.F.softmax,
        D.F.log_softmax,
    )


def test_the_nan_guard_counts_steps_from_one():
    assert D.first_nonfinite([2.3, 2.1, float("nan"), float("inf")]) == 3
    assert D.first_nonfinite([float("inf")]) == 1
    assert D.first_nonfinite([2.3, 2.2]) is None

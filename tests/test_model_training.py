"""The PyTorch network, its training loop and its evaluation."""

import math

import pytest
import torch

from mnistbook import batches, metrics, model, seeding, training

from conftest import DEVICES


def test_net_maps_images_to_ten_logits():
    net = model.Net()
    assert net(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert net(torch.zeros(1, 784)).shape == (1, 10)
    assert (
        sum(p.numel() for p in net.parameters())
        == 784 * 120 + 120 + 120 * 256 + 256 + 256 * 10 + 10
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (
            torch.zeros(4, 3, 28, 28),
            r"\(B, 1, 28, 28\) or \(B, 784\).*got \(4, 3, 28, 28\)",
        ),
        (torch.zeros(4, 28, 28), r"got \(4, 28, 28\)"),
        (torch.zeros(4, 784, dtype=torch.int64), "floating-point"),
    ],
)
def test_net_rejects_wrong_inputs_naming_expected_and_actual(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        model.Net()(bad)


@pytest.mark.parametrize("device", DEVICES)
def test_a_few_hundred_steps_reduce_the_loss(train_tensors, device, capsys):
    images, labels = train_tensors
    source = batches.InMemoryBatches(
        images[:20_000].to(device),
        labels[:20_000].to(device),
        4,
        generator=seeding.generator(),
    )
    net, _ = training.train_fresh_net(source, steps=400, device=device)
    recipe = training.RECIPE
    step = training.make_torch_step(
        net,
        torch.nn.CrossEntropyLoss(),
        torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum),
    )
    losses = training.fit(
        step,
        [(images[i : i + 4], labels[i : i + 4]) for i in range(0, 400, 4)],
        epochs=1,
        log_every=50,
    )
    assert sum(losses) / len(losses) < 0.8 * math.log(10)
    first, second = sum(losses[:50]) / 50, sum(losses[50:]) / 50
    assert (
        capsys.readouterr().out
        == f"[1,    50] loss: {first:.3f}\n[1,   100] loss: {second:.3f}\n"
    )


def test_metrics_read_the_confusion_matrix():
    predictions = torch.tensor([0, 1, 1, 2, 2, 2])
    labels = torch.tensor([0, 1, 2, 2, 2, 1])
    c = metrics.confusion_matrix(predictions, labels, num_classes=3)
    assert c.tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 2]]
    assert metrics.accuracy(c) == pytest.approx(400 / 6)
    assert metrics.per_class_accuracy(c).tolist() == pytest.approx([100, 50, 200 / 3])
    with pytest.raises(
        ValueError, match=r"labels must lie in \[0, 2\], got values from 0 to 3"
    ):
        metrics.confusion_matrix(
            predictions, torch.tensor([0, 1, 2, 3, 2, 1]), num_classes=3
        )


def test_predict_works_for_any_callable(test_tensors):
    images, _ = test_tensors
    seeding.seed_everything()
    net = model.Net()
    assert torch.equal(
        metrics.predict(net, images[:2500], batch_size=1000),
        net(images[:2500]).argmax(1),
    )


def test_a_safetensors_checkpoint_reloads_the_same_network(tmp_path, test_tensors):
    from safetensors.torch import load_file, save_file

    images, labels = test_tensors
    seeding.seed_everything()
    net = model.Net()
    save_file(net.state_dict(), tmp_path / "net.safetensors")
    reloaded = model.Net()
    reloaded.load_state_dict(load_file(tmp_path / "net.safetensors"))
    assert all(
        torch.equal(a, b) for a, b in zip(net.parameters(), reloaded.parameters())
    )
    assert torch.equal(
        metrics.predict(net, images[:500]), metrics.predict(reloaded, images[:500])
    )


def test_the_standard_errors_of_an_accuracy_and_of_a_difference():
    assert metrics.standard_error(95.0, 10_000) == pytest.approx(
        100 * (0.95 * 0.05 / 10_000) ** 0.5
    )
    labels = torch.tensor([0, 1, 2, 3])
    a = torch.tensor([0, 1, 2, 0])  # right on 3 of 4
    b = torch.tensor([0, 1, 0, 3])  # right on 3 of 4, wrong elsewhere
    difference = torch.tensor([0.0, 0.0, 1.0, -1.0])  # a's correctness minus b's
    assert metrics.difference_standard_error(a, b, labels) == pytest.approx(
        100 * difference.std().item() / 2
    )
    assert (
        metrics.difference_standard_error(a, a, labels) == 0.0
    )  # the same predictions

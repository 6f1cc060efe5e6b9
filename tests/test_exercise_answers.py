"""The numbers of the exercises' solutions, computed.

A solution's arithmetic is done by hand on purpose, so it cannot be glued; this file recomputes
every number a solution states, so that a slip in one fails a test. One test per chapter."""

import math

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from mnistbook import batches, model


def test_tensors():
    # ex-tensors-by-hand: L = (ReLU(w x + b) − 9)², x = 2, b = 1
    for w, expected in ((3.0, (4.0, -8.0, -4.0)), (-1.0, (81.0, 0.0, 0.0))):
        wt = torch.tensor(w, requires_grad=True)
        bt = torch.tensor(1.0, requires_grad=True)
        loss = (TF.relu(wt * 2.0 + bt) - 9.0) ** 2
        loss.backward()
        assert (loss.item(), wt.grad.item(), bt.grad.item()) == expected
    # ex-tensors-count
    assert sum(p.numel() for p in nn.Linear(120, 256).parameters()) == 30_976
    sizes = [
        sum(p.numel() for p in layer.parameters())
        for layer in (model.Net().fc1, model.Net().fc2, model.Net().fc3)
    ]
    assert sizes == [94_200, 30_976, 2_570] and sum(sizes) == 127_746
    # ex-tensors-accumulate: k backward calls add 8 each
    w = torch.tensor(3.0, requires_grad=True)
    for _ in range(3):
        ((TF.relu(w * 2.0 + 1.0) - 5.0) ** 2).backward()
    assert w.grad.item() == 24.0


def test_next():
    # ex-next-conv-shapes
    conv = nn.Conv2d(6, 16, 3)
    x = torch.zeros(32, 6, 24, 24)
    assert tuple(conv(x).shape) == (32, 16, 22, 22)
    assert tuple(TF.unfold(x, 3).transpose(1, 2).reshape(-1, 54).shape) == (15_488, 54)
    assert sum(p.numel() for p in conv.parameters()) == 880
    # ex-next-adam-first
    g = torch.tensor([100.0, 0.01], dtype=torch.float64)
    adam = -0.001 * g / (g.abs() + 1e-8)
    assert adam[0].item() == pytest.approx(-0.001, rel=1e-9)
    assert adam[1].item() == pytest.approx(-0.001 / 1.000001, rel=1e-12)
    assert round(adam[1].item(), 9) == -0.000999999
    assert (-0.001 * g).tolist() == pytest.approx([-0.1, -0.00001])


def test_backprop():
    def network(x, target):
        p = {
            n: torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for n, v in (("w1", 0.5), ("b1", -0.5), ("w2", 3.0), ("b2", 1.0))
        }
        z1 = p["w1"] * x + p["b1"]
        z2 = p["w2"] * TF.relu(z1) + p["b2"]
        loss = 0.5 * (z2 - target) ** 2
        loss.backward()
        return (
            z1.item(),
            z2.item(),
            loss.item(),
            {n: t.grad.item() for n, t in p.items()},
        )

    # section "Backpropagation by hand on numbers"
    assert network(2.0, 1.0) == (
        0.5,
        2.5,
        1.125,
        {"w1": 9.0, "b1": 4.5, "w2": 0.75, "b2": 1.5},
    )
    # ex-bp-numbers: x = −1, target 1, then target 2
    assert network(-1.0, 1.0) == (
        -1.0,
        1.0,
        0.0,
        {"w1": 0.0, "b1": 0.0, "w2": 0.0, "b2": 0.0},
    )
    assert network(-1.0, 2.0)[3] == {"w1": 0.0, "b1": 0.0, "w2": 0.0, "b2": -1.0}
    # ex-bp-shapes, B = 16
    net = model.Net()
    x = torch.zeros(16, 784)
    h1 = TF.relu(net.fc1(x))
    h2 = TF.relu(net.fc2(h1))
    G3 = torch.zeros(16, 10)
    assert tuple((G3.T @ h2).shape) == (10, 256) and tuple(
        (G3 @ net.fc3.weight).shape
    ) == (16, 256)
    assert tuple((torch.zeros(16, 256).T @ h1).shape) == (256, 120)


def test_softmax():
    # section "What p − y says" and ex-softmax-pmy-hand
    p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    assert (
        p - torch.tensor([1.0, 0, 0], dtype=torch.float64)
    ).tolist() == pytest.approx([-0.3, 0.2, 0.1])
    p = torch.tensor([0.1, 0.6, 0.3], dtype=torch.float64)
    grad = p - torch.tensor([0.0, 0, 1], dtype=torch.float64)
    assert grad.tolist() == pytest.approx([0.1, 0.6, -0.7])
    assert (-0.5 * grad).tolist() == pytest.approx([-0.05, -0.3, 0.35])


def test_likelihood():
    # ex-likelihood-by-hand
    losses = [-math.log(0.7), -math.log(0.1)]
    assert round(losses[0], 3) == 0.357 and round(losses[1], 3) == 2.303
    assert round(sum(losses) / 2, 3) == 1.330


def test_pytorch():
    # ex-pytorch-steps
    assert 60_000 // 4 == 15_000 and 15_000 // 2000 == 7
    assert math.ceil(60_000 / 64) == 938 and 60_000 - 937 * 64 == 32
    # ex-pytorch-momentum
    v, steps = 0.0, []
    for g in (1.0, 1.0, 1.0):
        v = 0.9 * v + g
        steps.append(v)
    assert steps == pytest.approx([1.0, 1.9, 2.71])
    assert 0.001 / (1 - 0.9) == pytest.approx(0.01)
    v, seen = 0.0, []
    for g in (1.0, -1.0, 1.0, -1.0):
        v = 0.9 * v + g
        seen.append(v)
    assert seen[:3] == pytest.approx([1.0, -0.1, 0.91])
    assert seen[3] == pytest.approx(-0.181)
    assert round(1 / 1.9, 2) == 0.53
    # ex-pytorch-per-class: the class sizes of the MNIST test set
    _, labels = batches.mnist_tensors(train=False)
    counts = torch.bincount(labels, minlength=10)
    assert counts.min().item() == 892 and counts.argmin().item() == 5
    assert counts.max().item() == 1135 and counts.argmax().item() == 1


def test_scratch():
    # ex-scratch-step
    from mnistbook import scratch

    theta = torch.tensor([0.5], dtype=torch.float64)
    sgd = scratch.SGD({"t": theta}, lr=0.1, momentum=0.9)
    sgd.step({"t": torch.tensor([0.2], dtype=torch.float64)})
    assert theta.item() == pytest.approx(0.48)
    sgd.step({"t": torch.tensor([-0.1], dtype=torch.float64)})
    assert theta.item() == pytest.approx(0.472)
    assert 0.5 - 0.1 * 0.2 + 0.1 * 0.1 == pytest.approx(0.49)


def test_training_scratch():
    assert 2 * 60_000 // 4 == 30_000
    u = 2.0**-24
    assert u == pytest.approx(6e-8, rel=0.01)
    assert 0.3 * u == pytest.approx(1.8e-8, rel=0.01)
    assert round(1e-6 / (0.3 * u)) == 56


def test_failure_modes():
    assert round(64 * math.log(10), 1) == 147.4
    assert 4 * 0.001 == pytest.approx(0.004) and 64 * 0.01 == pytest.approx(0.64)

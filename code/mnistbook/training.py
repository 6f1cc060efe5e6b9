"""One training loop for both networks, printing the seed notebook's running-loss lines."""

import itertools
import time
from collections.abc import Callable, Iterable

import torch

from . import seeding
from .batches import InMemoryBatches, mnist_tensors
from .model import Net

Step = Callable[[torch.Tensor, torch.Tensor], float]

#: The seed notebook's recipe: mini-batches of 4, SGD with learning rate 0.001 and momentum 0.9, 2 epochs.
BATCH_SIZE, LR, MOMENTUM, EPOCHS = 4, 0.001, 0.9, 2


def torch_step(net: torch.nn.Module, criterion, optimizer) -> Step:
    """One optimisation step on a mini-batch, the PyTorch way; returns the batch's loss."""
    device = next(net.parameters()).device

    def step(inputs: torch.Tensor, labels: torch.Tensor) -> float:
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()  # gradients accumulate in .grad unless cleared
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def fit(step: Step, batches: Iterable, epochs: int = 2, log_every: int = 2000,
        log: Callable[[str], None] | None = print) -> list[float]:
    """Run ``step`` over every mini-batch for ``epochs`` epochs; return the loss of every step.

    Every ``log_every`` mini-batches it prints ``[epoch, batch] loss: mean`` of the losses
    since the last line, as the seed notebook does. ``log=None`` keeps it quiet.
    """
    losses = []
    for epoch in range(epochs):
        running = 0.0
        for i, (inputs, labels) in enumerate(batches, start=1):
            loss = step(inputs, labels)
            losses.append(loss)
            running += loss
            if log and i % log_every == 0:
                log(f"[{epoch + 1}, {i:5d}] loss: {running / log_every:.3f}")
                running = 0.0
    return losses


def train_fresh_net(batch_source: Iterable, steps: int, seed: int = seeding.SEED, device=None):
    """Train a freshly seeded ``Net`` with the recipe on the first ``steps`` batches.

    Returns (net, seconds): the net, e.g. to compare weights, and the wall-clock training time.
    """
    seeding.seed_everything(seed)
    net = Net().to(device)
    step = torch_step(net, torch.nn.CrossEntropyLoss(),
                      torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM))
    start = time.perf_counter()
    fit(step, itertools.islice(batch_source, steps), epochs=1, log=None)
    return net, time.perf_counter() - start


def briefly_trained_net(steps: int = 2000, device=None) -> Net:
    """A Net after ``steps`` steps of the recipe: real logits for the derivation chapters, fast."""
    images, labels = mnist_tensors(train=True, device=device)
    net, _ = train_fresh_net(InMemoryBatches(images, labels, BATCH_SIZE,
                                             generator=seeding.generator()), steps, device=device)
    return net

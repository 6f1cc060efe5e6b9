"""One training loop for both networks, printing the original notebook's running-loss
lines."""

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from . import seeding
from .batches import InMemoryBatches, mnist_tensors
from .model import Net

#: A step function: one optimisation step on a mini-batch (inputs, labels); returns its
#: loss.
Step = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass(frozen=True)
class Recipe:
    """How the original notebook trains; chapters and tests take every number from
    here."""

    batch_size: int = 4
    lr: float = 0.001
    momentum: float = 0.9
    epochs: int = 2
    log_every: int = 2000  # print the running loss every this many mini-batches


#: The original notebook's recipe.
RECIPE = Recipe()


def make_torch_step(net: torch.nn.Module, criterion, optimizer) -> Step:
    """Build the step function of ``net``, the PyTorch way.

    The returned ``step(inputs, labels)`` runs forward, loss, backward and the
    optimiser's update on one mini-batch, and returns the batch's loss."""
    device = next(net.parameters()).device

    def step(inputs: torch.Tensor, labels: torch.Tensor) -> float:
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()  # gradients accumulate in .grad unless cleared
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def fit(
    step: Step,
    batches: Iterable,
    epochs: int = RECIPE.epochs,
    log_every: int = RECIPE.log_every,
    log: Callable[[str], None] | None = print,
) -> list[float]:
    """Run ``step`` over every mini-batch for ``epochs`` epochs; return the loss of
    every step.

    Every ``log_every`` mini-batches it prints ``[epoch, batch] loss: mean`` of the
    losses since the last line, as the original notebook does. ``log=None`` keeps it
    quiet."""
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


def train_fresh_net(
    batch_source: Iterable, steps: int, seed: int = seeding.SEED, device=None
):
    """Train a freshly seeded ``Net`` with the recipe on the first ``steps`` batches.

    Returns (net, seconds): the net, e.g. to compare weights, and the wall-clock
    training time."""
    seeding.seed_everything(seed)
    net = Net().to(device)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=RECIPE.lr, momentum=RECIPE.momentum
    )
    step = make_torch_step(net, torch.nn.CrossEntropyLoss(), optimizer)
    start = time.perf_counter()
    fit(step, itertools.islice(batch_source, steps), epochs=1, log=None)
    return net, time.perf_counter() - start


def briefly_trained_net(steps: int = 2000, device=None) -> Net:
    """A Net after ``steps`` steps of the recipe: real logits for the derivation
    chapters, fast."""
    images, labels = mnist_tensors(train=True, device=device)
    source = InMemoryBatches(
        images, labels, RECIPE.batch_size, generator=seeding.generator()
    )
    net, _ = train_fresh_net(source, steps, device=device)
    return net

"""Checks that expose a buggy network, each cheap enough to run before a long training.

* :func:`gradient_error` — the worst relative error of the analytic gradients against
  torch autograd and against finite differences (CS231n thresholds in
  :mod:`~mnistbook.gradcheck`);
* :func:`initial_loss_gap` — an untrained classifier should score about ln K;
* :func:`overfit_tiny_batch` — a working network drives the loss of one small batch to
  ~0;
* :func:`first_nonfinite` — the NaN guard: the first step whose loss is not a finite
  number, and :func:`nonfinite_trace`, which shows where in a step the first inf or NaN
  appears;
* :func:`loss_curve` — the loss curve's verdict: did the loss diverge, stall at chance
  (ln K), or fall?
* :func:`stale_gradient_error` — does ``.grad`` hold this batch's gradient, and only it?
* :func:`dead_units` — how many hidden units never activate at all?

`quick_checks` runs the first five on a fresh scratch network inside a bug's ``with``
block."""

import itertools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from . import functional as F
from . import gradcheck, scratch, seeding
from .batches import InMemoryBatches
from .model import Net
from .training import fit, make_torch_step


def initial_loss_gap(
    net, criterion, images: Tensor, labels: Tensor, num_classes: int = 10
) -> float:
    """Loss of an untrained network minus ln K: near 0 when the loss is the mean
    cross-entropy.

    Works for the torch and the scratch classes alike (both are callable)."""
    return float(criterion(net(images), labels)) - math.log(num_classes)


def overfit_tiny_batch(
    net: scratch.Net,
    images: Tensor,
    labels: Tensor,
    steps: int = 200,
    lr: float = 0.05,
    momentum: float = 0.9,
) -> list[float]:
    """Losses of ``steps`` steps on one batch; a working network ends near zero."""
    step = scratch.make_scratch_step(
        net,
        scratch.CrossEntropyLoss(),
        scratch.SGD(net.parameters, lr=lr, momentum=momentum),
    )
    return fit(step, [(images, labels)], epochs=steps, log=None)


def first_nonfinite(losses: list[float]) -> int | None:
    """The NaN guard: the first step whose loss is NaN or infinite, or None.

    Steps count from 1, as in the training log and on the loss curves' x-axes.
    """
    return next(
        (step for step, loss in enumerate(losses, start=1) if not math.isfinite(loss)),
        None,
    )


def loss_curve(losses: list[float], window: int = 50, num_classes: int = 10) -> str:
    """The loss curve's verdict on the mean of the last ``window`` losses: "diverged" if
    it is not finite, "stalls at chance" if it is at least 0.9 ln K (no better than
    guessing), else "falls"."""
    last = sum(losses[-window:]) / len(losses[-window:])
    if not math.isfinite(last):
        return "diverged"
    return "stalls at chance" if last >= 0.9 * math.log(num_classes) else "falls"


def stale_gradient_error(
    step, net: torch.nn.Module, criterion, images: Tensor, labels: Tensor
) -> float:
    """Run one training ``step``; compare the ``.grad`` it leaves with this batch's
    gradient.

    The reference is computed first, at the weights the step starts from. A correct step
    leaves exactly it; a step that does not clear ``.grad`` leaves the sum of all so
    far."""
    params = list(net.parameters())
    fresh = torch.autograd.grad(criterion(net(images), labels), params)
    step(images, labels)
    return max(gradcheck.relative_error(p.grad, g) for p, g in zip(params, fresh))


@torch.no_grad()
def nonfinite_trace(
    net: scratch.Net, criterion, images: Tensor, labels: Tensor
) -> dict:
    """Follow one step's forward and backward pass and count where values stop being
    finite."""
    logits = net.forward(images)
    probabilities = F.softmax(logits)
    loss = criterion.forward(logits, labels)
    net.backward(criterion.backward(logits, labels))
    return {
        "largest logit": logits.max().item(),
        "non-finite probabilities": int((~probabilities.isfinite()).sum()),
        "loss": loss.item(),
        "non-finite gradient entries": sum(
            int((~g.isfinite()).sum()) for g in net.grads.values()
        ),
    }


@dataclass
class Run:
    """A short training run: the network after it, its per-step losses, and the next
    batch."""

    net: scratch.Net
    losses: list[float]
    next_batch: tuple[Tensor, Tensor]


def short_run(
    images: Tensor,
    labels: Tensor,
    steps: int,
    batch_size: int = 64,
    lr: float = 0.01,
    momentum: float = 0.9,
    hidden: tuple[int, int] = (120, 256),
    seed: int = seeding.SEED,
) -> Run:
    """Train a freshly seeded scratch network for ``steps`` steps of shuffled batches.

    Run it inside a bug's ``with`` block to see what the bug does to training.
    """
    torch.manual_seed(seed)
    net = scratch.Net(dtype=images.dtype, device=images.device, hidden=hidden)
    step = scratch.make_scratch_step(
        net,
        scratch.CrossEntropyLoss(),
        scratch.SGD(net.parameters, lr=lr, momentum=momentum),
    )
    source = InMemoryBatches(
        images, labels, batch_size, generator=seeding.generator(seed)
    )
    # epoch after epoch
    stream = itertools.chain.from_iterable(itertools.repeat(source))
    with torch.no_grad():
        losses = fit(step, itertools.islice(stream, steps), epochs=1, log=None)
    return Run(net, losses, next(stream))


@dataclass
class Checks:
    """The quick checks of one network configuration, and the short run behind the last
    two."""

    gradients: list[gradcheck.Check]
    initial_gap: float
    tiny_batch: float
    run: Run

    @property
    def gradient(self) -> float:
        """The worst error of any gradient, against either reference."""
        return max(c.worst for c in self.gradients)

    def __str__(self) -> str:
        rows = {
            "gradient check, worst relative error": (
                f"{self.gradient:.1e} ({gradcheck.verdict(self.gradient)})"
            ),
            "loss at initialisation − ln 10": f"{self.initial_gap:.3f}",
            "tiny batch, loss after 200 steps": f"{self.tiny_batch:.3f}",
            "NaN guard, first non-finite step": str(first_nonfinite(self.run.losses)),
            "loss, mean of the last 50 steps": f"{sum(self.run.losses[-50:]) / 50:.3f}",
            "loss curve": loss_curve(self.run.losses),
        }
        width = max(map(len, rows))
        return "\n".join(f"{label:{width}s}  {value}" for label, value in rows.items())


def quick_checks(
    images: Tensor,
    labels: Tensor,
    check_images: Tensor,
    check_labels: Tensor,
    hidden: tuple[int, int] = (120, 256),
    steps: int = 300,
) -> Checks:
    """Every check on a freshly seeded scratch network; run it inside a bug's ``with``
    block.

    ``check_images`` (float64) serve the gradient check; ``images`` the rest: 1000 of
    them the initial loss, 16 the tiny batch, all of them a short run of ``steps``
    batches of 64."""
    torch.manual_seed(seeding.SEED)
    net64 = scratch.Net(dtype=torch.float64, hidden=hidden)
    gradients = gradcheck.check_net(
        net64, scratch.CrossEntropyLoss(), check_images, check_labels
    )
    torch.manual_seed(seeding.SEED)
    net = scratch.Net(hidden=hidden)
    gap = initial_loss_gap(
        net, scratch.CrossEntropyLoss(), images[:1000], labels[:1000]
    )
    tiny = overfit_tiny_batch(net, images[:16], labels[:16])[-1]
    return Checks(gradients, gap, tiny, short_run(images, labels, steps, hidden=hidden))


def torch_short_run(
    images: Tensor,
    labels: Tensor,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 0.01,
    momentum: float = 0.9,
) -> tuple[list[float], float]:
    """The PyTorch recipe for ``steps`` batches: the losses, then
    :func:`stale_gradient_error` of one more step. Run it inside a bug's ``with``
    block."""
    seeding.seed_everything()
    net = Net()
    criterion = torch.nn.CrossEntropyLoss()
    step = make_torch_step(
        net, criterion, torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    )
    source = InMemoryBatches(images, labels, batch_size, generator=seeding.generator())
    losses = fit(step, itertools.islice(source, steps), epochs=1, log=None)
    return losses, stale_gradient_error(step, net, criterion, *next(iter(source)))


@torch.no_grad()
def dead_units(net: scratch.Net, images: Tensor) -> tuple[float, float]:
    """Fraction of each hidden layer's units that output 0 for every one of
    ``images``."""
    net.forward(images)
    return tuple(
        (relu.h == 0).all(dim=0).double().mean().item()
        for relu in (net.relu1, net.relu2)
    )

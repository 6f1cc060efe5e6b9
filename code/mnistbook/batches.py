"""Mini-batches two ways: torchvision's DataLoader, and the same batches from tensors
in memory.

For every sample of every epoch, the DataLoader wraps the stored uint8 image in a PIL
image and runs the transform on it. :func:`mnist_tensors` applies the identical
arithmetic to the whole split once, and :class:`InMemoryBatches` draws from its
generator exactly what a seeded DataLoader draws, epoch after epoch, so both yield
bit-identical batches; one is just many times faster.
"""

import math

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from . import seeding


def mnist_tensors(
    train: bool = True, device=None, dtype=torch.float32
) -> tuple[Tensor, Tensor]:
    """The whole split as (images (N, 1, 28, 28) in [-1, 1], labels (N,) int64).

    Same operations, in the same order and precision, as ``ToTensor()`` then
    ``Normalize((0.5,), (0.5,))``, so every value equals the DataLoader's bit for bit.
    """
    from .data import mnist  # torchvision (1.5 CPU-s to import) only when MNIST is read

    dataset = mnist(train, transform=None)
    images = dataset.data.unsqueeze(1).to(torch.float32).div(255).sub(0.5).div(0.5)
    return images.to(device=device, dtype=dtype), dataset.targets.to(device)


def seeded_loader(
    dataset,
    batch_size: int = 4,
    shuffle: bool = True,
    num_workers: int = 2,
    seed: int = seeding.SEED,
) -> DataLoader:
    """The original notebook's DataLoader, with its shuffling and its workers seeded."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=seeding.generator(seed),
        worker_init_fn=seeding.seed_worker,
    )


class InMemoryBatches:
    """Iterate (images, labels) mini-batches of tensors held in memory (on any device).

    With ``shuffle=True`` each epoch draws from ``generator`` what a DataLoader with
    ``shuffle=True, generator=...`` draws (torch's ``RandomSampler``): one 64-bit
    number (the base seed for its workers), a ``randperm`` that orders the epoch,
    and, once the order is used up, a second ``randperm`` of which the sampler keeps
    nothing but which still advances the generator. Equal seeds therefore give equal
    batches in every epoch; ``tests/test_batches.py`` checks it against torch's own
    DataLoader.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
    ):
        if len(images) != len(labels):
            raise ValueError(
                f"InMemoryBatches: {len(images)} images but {len(labels)} labels"
            )
        if batch_size < 1:
            raise ValueError(
                f"InMemoryBatches: batch_size must be ≥ 1, got {batch_size}"
            )
        if shuffle and generator is None:
            raise ValueError(
                "InMemoryBatches: shuffle=True needs a generator, "
                "e.g. seeding.generator()"
            )
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.generator = batch_size, shuffle, generator

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def _order(self) -> Tensor:
        n = len(self.images)
        if not self.shuffle:
            return torch.arange(n)
        # the DataLoader's base seed for its workers: drawn, unused, as the DataLoader does
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return torch.randperm(n, generator=self.generator)

    def _sampler_runs_dry(self) -> None:
        """``RandomSampler`` ends an epoch with ``randperm(n)[:0]``: nothing, but a
        draw."""
        if self.shuffle:
            torch.randperm(len(self.images), generator=self.generator)

    def __iter__(self):
        order = self._order().to(self.images.device)
        n, size = len(order), self.batch_size
        for start in range(0, n, size):
            if start + size > n:  # a short last batch: the sampler ran dry filling it
                self._sampler_runs_dry()
            index = order[start : start + size]
            yield self.images[index], self.labels[index]
        if n % size == 0:  # a full last batch: the sampler runs dry on the next request
            self._sampler_runs_dry()

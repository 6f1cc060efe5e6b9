"""The arithmetic of splitting a mini-batch: which average of the shards' gradients is
the whole batch's gradient, and what ``DistributedSampler`` hands each process.

For a batch of B examples split into shards of B^(ρ) examples, the mean loss is
L = Σ_ρ (B^(ρ) / B) L^(ρ), so its gradient is Σ_ρ (B^(ρ) / B) g^(ρ) with g^(ρ) the gradient of shard
k's mean loss. Every function here works on one process; the checks run in float64.
"""

import itertools

import torch
from torch import Tensor
from torch.utils.data.distributed import DistributedSampler

from ..batches import InMemoryBatches


def split(
    images: Tensor, labels: Tensor, sizes: list[int]
) -> list[tuple[Tensor, Tensor]]:
    """The batch cut, in order, into consecutive shards of the given sizes."""
    if sum(sizes) != len(labels) or min(sizes) < 1:
        raise ValueError(
            f"split: shard sizes must be ≥ 1 and add up to the batch's {len(labels)} "
            f"examples, got {sizes}"
        )
    return list(zip(images.split(sizes), labels.split(sizes)))


def even_sizes(batch_size: int, world_size: int) -> list[int]:
    """Shard sizes as a data-parallel loop cuts a batch: as equal as possible, the
    larger first (``torch.tensor_split``)."""
    return [len(part) for part in torch.arange(batch_size).tensor_split(world_size)]


def gradient(net: torch.nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """∇ of the mean cross-entropy of ``net`` on the batch: all parameters, one vector."""
    loss = torch.nn.functional.cross_entropy(net(images), labels)
    return torch.cat(
        [g.flatten() for g in torch.autograd.grad(loss, list(net.parameters()))]
    )


def shard_gradients(
    net, images: Tensor, labels: Tensor, sizes: list[int]
) -> list[Tensor]:
    """g^(ρ): the gradient of each shard's own mean loss, as each process computes it."""
    return [gradient(net, x, y) for x, y in split(images, labels, sizes)]


def weighted_mean(gradients: list[Tensor], sizes: list[int]) -> Tensor:
    """Σ_ρ (B^(ρ) / B) g^(ρ): the whole batch's gradient, for any shard sizes."""
    total = sum(sizes)
    return sum(size / total * g for size, g in zip(sizes, gradients))


def plain_mean(gradients: list[Tensor]) -> Tensor:
    """(1/R) Σ_ρ g^(ρ): what an all-reduce divided by the number of processes gives."""
    return sum(gradients) / len(gradients)


def counted_gradient(net, images: Tensor, labels: Tensor, counts: Tensor) -> Tensor:
    """The gradient of Σ_n c_n L_n / Σ_n c_n: the mean loss over a multiset in which
    example i appears c_i times."""
    losses = torch.nn.functional.cross_entropy(net(images), labels, reduction="none")
    counts = counts.to(losses.dtype)
    loss = (counts * losses).sum() / counts.sum()
    return torch.cat(
        [g.flatten() for g in torch.autograd.grad(loss, list(net.parameters()))]
    )


def sampler_shards(
    dataset_size: int, world_size: int, epoch: int = 0, seed: int = 0
) -> list[list[int]]:
    """The indices ``DistributedSampler`` (shuffle on) gives each rank in one epoch.

    With ``num_replicas`` and ``rank`` given it needs no process group, so the shards
    of every rank can be listed from one process."""
    shards = []
    for rank in range(world_size):
        sampler = DistributedSampler(
            range(dataset_size), num_replicas=world_size, rank=rank, seed=seed
        )
        sampler.set_epoch(epoch)
        shards.append(list(sampler))
    return shards


def counts(shards: list[list[int]], dataset_size: int) -> Tensor:
    """How many times each example appears in the shards of one epoch."""
    every = torch.tensor(list(itertools.chain.from_iterable(shards)))
    return torch.bincount(every, minlength=dataset_size)


def last_batch(images: Tensor, labels: Tensor, batch_size: int, generator) -> tuple:
    """The last mini-batch of one shuffled epoch: the short one, when the dataset's size
    is not a multiple of ``batch_size``. (The epoch is drawn over positions, so only the
    last batch's images are gathered.)"""
    positions = torch.arange(len(images))
    *_, (last, _) = InMemoryBatches(
        positions, positions, batch_size, generator=generator
    )
    return images[last], labels[last]


def loss_weight(shard_size: int, batch_size: int, world_size: int) -> float:
    """R·B^(ρ)/B: scale a shard's mean loss by this and the average over the R processes
    that DDP takes becomes Σ_ρ (B^(ρ) / B) g^(ρ), the whole batch's gradient."""
    return world_size * shard_size / batch_size

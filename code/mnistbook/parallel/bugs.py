"""The classic data-parallel bugs, each run as a practitioner would run it.

Each is the correct code of :mod:`~mnistbook.parallel.replicas` with one change, on the
line marked ``BUG``. Every function here runs in every process of a launch."""

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from .. import seeding
from .replicas import (
    flat_weights,
    fresh_net,
    replica_spread,
    scratch_replica,
    sum_over_processes,
)
from .shards import loss_weight


def summed_replica(rank, world_size, images, labels, steps, log_every, dtype):
    """The scratch network with its gradients summed over the processes, not averaged."""
    run = (rank, world_size, images, labels, steps, log_every, dtype)
    return scratch_replica(*run, sync=sum_over_processes)  # BUG: never divided by R


def weights_and_spread(net) -> tuple[Tensor, float]:
    """This replica's weights, and how far the replicas are apart (a collective)."""
    weights = flat_weights(net)
    return weights, replica_spread(weights)


def replica_seeded_apart(rank, world_size, images, labels, steps, log_every, dtype):
    """The scratch network with averaged gradients, each replica initialised from its
    own seed; records its weights and the spread of the replicas."""
    seed = seeding.SEED + rank  # BUG: a different start in every process
    run = (rank, world_size, images, labels, steps, log_every, dtype)
    return scratch_replica(*run, seed=seed, observe=weights_and_spread)


def ddp_seeded_apart(rank: int, dtype=torch.float64, device=None) -> tuple:
    """The same bug under DDP: the spread of the replicas before and after wrapping."""
    seed = seeding.SEED + rank  # BUG: a different start in every process
    net = fresh_net(dtype, device, seed)
    before = replica_spread(flat_weights(net))
    net = DistributedDataParallel(net)  # broadcasts rank 0's weights to every replica
    return before, replica_spread(flat_weights(net))


def epoch_orders(sampler: DistributedSampler, epochs: int, set_epoch: bool) -> list:
    """The order in which ``sampler`` serves this process's examples, epoch by epoch."""
    orders = []
    for epoch in range(epochs):
        if set_epoch:  # BUG when False: the shuffle is seeded with seed + epoch
            sampler.set_epoch(epoch)
        orders.append(list(sampler))
    return orders


def sampler_orders(dataset_size: int, epochs: int = 2) -> dict[str, list]:
    """Every epoch's order of this process's shard, with and without ``set_epoch``."""
    orders = {}
    for set_epoch in (True, False):
        sampler = DistributedSampler(range(dataset_size))  # the group's rank and size
        orders[f"set_epoch={set_epoch}"] = epoch_orders(sampler, epochs, set_epoch)
    return orders


def unequal_shard_gradients(rank, world_size, images, labels) -> dict[str, Tensor]:
    """DDP's gradient for one batch cut into unequal shards: averaged plainly (the
    bug), and with each shard's loss weighted by R·B^(ρ)/B (the fix)."""
    net = DistributedDataParallel(fresh_net(images.dtype, images.device))
    x, y = images.tensor_split(world_size)[rank], labels.tensor_split(world_size)[rank]
    gradients = {}
    for name, weight in (
        ("plain", 1.0),  # BUG when the shards differ in size
        ("weighted", loss_weight(len(y), len(labels), world_size)),
    ):
        net.zero_grad()
        (weight * torch.nn.functional.cross_entropy(net(x), y)).backward()
        gradients[name] = torch.cat([p.grad.flatten() for p in net.parameters()]).cpu()
    return gradients

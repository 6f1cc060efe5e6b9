"""Every experiment of the chapter, run in sequence by the processes of one launch.

Starting processes costs seconds (each imports torch), so the chapter launches once:
each process runs :func:`run_experiments` and rank 0 returns the records; the
single-process runs they are compared with run in the chapter's own process."""

from dataclasses import dataclass, field

import torch

from .. import seeding
from ..batches import mnist_tensors
from . import bugs, cost
from .processes import backend, device
from .replicas import Trajectory, ddp_replica, flat_weights, fresh_net, scratch_replica
from .shards import last_batch


@dataclass(frozen=True)
class Plan:
    """How long each experiment runs."""

    steps: int = 400  # of each data-parallel run compared with one process
    log_every: int = 50  # weights compared after every this many steps
    bug_steps: int = 200  # of each run with a bug
    short_batch_size: int = 13  # 60 000 = 4615 × 13 + 5: the last batch holds 5
    sampler_epochs: int = 2
    cost_batch_sizes: tuple[int, ...] = (4, 64, 512, 2048)
    cost_examples: int = 1024  # per timing (at least 5 steps, at most 50)


@dataclass
class Results:
    """What rank 0 saw, experiment by experiment."""

    plan: Plan
    backend: str
    world_size: int
    ddp64: Trajectory = field(default_factory=dict)
    ddp32: Trajectory = field(default_factory=dict)
    scratch64: Trajectory = field(default_factory=dict)
    summed: Trajectory = field(default_factory=dict)
    seeded_apart: Trajectory = field(default_factory=dict)  # (weights, spread)
    ddp_seeded_apart: tuple = ()  # spread before and after wrapping in DDP
    sampler_orders: dict = field(default_factory=dict)
    unequal: dict = field(default_factory=dict)
    costs: list = field(default_factory=list)
    allreduce_alone: float = 0.0  # seconds, the gradient's all-reduce by itself


def run_experiments(rank: int, world_size: int, plan: Plan) -> Results | None:
    """Run in every process of a launch: each experiment in turn; rank 0 returns all
    the records."""
    images, labels = mnist_tensors(train=True)
    where = device()
    run = (rank, world_size, images, labels)
    results = Results(plan, backend(world_size), world_size)
    results.ddp64 = ddp_replica(*run, plan.steps, plan.log_every, torch.float64, where)
    results.ddp32 = ddp_replica(*run, plan.steps, plan.log_every, torch.float32, where)
    results.scratch64 = scratch_replica(
        *run, plan.steps, plan.log_every, torch.float64, where
    )
    bug_run = (*run, plan.bug_steps, plan.log_every, torch.float64)
    results.summed = bugs.summed_replica(*bug_run)
    results.seeded_apart = bugs.replica_seeded_apart(*bug_run)
    results.ddp_seeded_apart = bugs.ddp_seeded_apart(rank, device=where)
    results.sampler_orders = bugs.sampler_orders(len(labels), plan.sampler_epochs)
    short = short_batch(images, labels, plan.short_batch_size)
    results.unequal = bugs.unequal_shard_gradients(
        rank, world_size, short[0].to(where, torch.float64), short[1].to(where)
    )
    sizes = plan.cost_batch_sizes
    results.costs = cost.measure(*run, sizes, plan.cost_examples, device=where)
    results.allreduce_alone = cost.allreduce_alone(
        len(flat_weights(fresh_net())), device=where
    )
    return results if rank == 0 else None


def short_batch(images, labels, batch_size: int):
    """The last, short batch of the first shuffled epoch at ``batch_size``."""
    return last_batch(images, labels, batch_size, seeding.generator())


def ddp_run(rank: int, world_size: int, steps: int, log_every: int, dtype: str):
    """``python -m mnistbook.parallel``'s run, in every process: DDP on the recipe's
    batches; returns this process's trajectory of the weights."""
    images, labels = mnist_tensors(train=True)
    return ddp_replica(
        rank,
        world_size,
        images,
        labels,
        steps,
        log_every,
        getattr(torch, dtype),
        device(),
    )

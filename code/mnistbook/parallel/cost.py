"""What data parallelism costs: time per training step against the number of processes
and the batch size, and how much of it the all-reduce takes.

A global batch of B examples is trained either by one process or by R processes with
B/R examples each and DDP. DDP's all-reduce is timed by a communication hook that does
what DDP's default does (divide by R, all-reduce), synchronously. Timings are the best of
a few interleaved repeats; they are reported, never asserted."""

import itertools
import statistics
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .. import seeding
from ..batches import InMemoryBatches
from ..training import RECIPE, make_torch_step
from .replicas import fresh_net


@dataclass
class Cost:
    """Seconds per step of one configuration; ``allreduce_seconds`` of them were spent
    in ``all_reduce`` calls (``allreduces`` per step)."""

    batch_size: int
    processes: int
    step_seconds: float
    allreduce_seconds: float = 0.0
    allreduces: float = 0.0


class AllReduceTimer:
    """State of :func:`timed_allreduce`: seconds spent and calls made."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def timed_allreduce(timer: AllReduceTimer, bucket: dist.GradBucket):
    """A DDP communication hook: the mean of the bucket's gradients over the processes,
    as DDP's default computes it, but waited for here so that it can be timed."""
    start = time.perf_counter()
    tensor = bucket.buffer().div_(dist.get_world_size())
    dist.all_reduce(tensor)
    timer.seconds += time.perf_counter() - start
    timer.calls += 1
    future = torch.futures.Future()
    future.set_result(tensor)
    return future


def _sgd_step(net):
    optimizer = torch.optim.SGD(
        net.parameters(), lr=RECIPE.lr, momentum=RECIPE.momentum
    )
    return make_torch_step(net, torch.nn.CrossEntropyLoss(), optimizer)


def _seconds_per_step(step, batches) -> float:
    start = time.perf_counter()
    for x, y in batches:
        step(x, y)
    return (time.perf_counter() - start) / len(batches)


def measure(
    rank: int,
    world_size: int,
    images,
    labels,
    batch_sizes,
    examples: int = 1024,
    repeats: int = 3,
    device=None,
) -> list[Cost]:
    """Time per step of one process (rank 0, alone, the others waiting) and of all
    ``world_size`` processes with DDP, for each global batch size, in float32; each
    timing runs ``examples`` examples (at least 5 steps, at most 50). Every process
    must call it."""
    costs = []
    for batch_size in batch_sizes:
        steps = min(50, max(5, examples // batch_size))
        source = InMemoryBatches(
            images, labels, batch_size, generator=seeding.generator()
        )
        batches = [
            (x.to(device), y.to(device)) for x, y in itertools.islice(source, steps)
        ]
        shards = [
            (x.tensor_split(world_size)[rank], y.tensor_split(world_size)[rank])
            for x, y in batches
        ]
        single = _sgd_step(fresh_net(device=device))
        ddp, timer = DistributedDataParallel(fresh_net(device=device)), AllReduceTimer()
        ddp.register_comm_hook(timer, timed_allreduce)
        parallel = _sgd_step(ddp)
        best = {
            1: Cost(batch_size, 1, float("inf")),
            world_size: Cost(batch_size, world_size, float("inf")),
        }
        for _ in range(repeats):
            if rank == 0:
                single(*batches[0])  # warm-up, not timed
                seconds = _seconds_per_step(single, batches)
                best[1].step_seconds = min(best[1].step_seconds, seconds)
            dist.barrier()
            parallel(*shards[0])  # warm-up (DDP arranges its buckets on its first step)
            timer.reset()
            seconds = _seconds_per_step(parallel, shards)
            if seconds < best[world_size].step_seconds:
                best[world_size] = Cost(
                    batch_size,
                    world_size,
                    seconds,
                    timer.seconds / steps,
                    timer.calls / steps,
                )
        costs.extend(best.values())
    return costs


def allreduce_alone(numel: int, repeats: int = 50, device=None) -> float:
    """Median seconds of ``repeats`` all-reduces of ``numel`` float32 numbers, each
    started right after a barrier: the exchange itself, without a late process to wait
    for. Every process must call it."""
    tensor, seconds = torch.ones(numel, device=device), []
    for _ in range(repeats):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(tensor)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def table(costs: list[Cost]) -> str:
    """The measurements side by side: per batch size, ms per step with one and with R
    processes, the all-reduce's share, and the speed-up."""
    by_batch = {}
    for cost in costs:
        by_batch.setdefault(cost.batch_size, {})[cost.processes] = cost
    k = max(cost.processes for cost in costs)
    header = (
        f"{'batch':>6} {'1 process':>10} {f'{k} processes':>12} "
        f"{'in all-reduce':>14} {'share':>6} {'speed-up':>9}"
    )
    lines = [header]
    for batch_size, row in by_batch.items():
        one, many = row[1], row[k]
        lines.append(
            f"{batch_size:6d} {1e3 * one.step_seconds:7.2f} ms {1e3 * many.step_seconds:9.2f} ms "
            f"{1e3 * many.allreduce_seconds:11.2f} ms "
            f"{many.allreduce_seconds / many.step_seconds:6.0%} "
            f"{one.step_seconds / many.step_seconds:8.2f}×"
        )
    return "\n".join(lines)

"""Data-parallel training two ways, and the single process it must equal.

Every process holds a replica of the network, takes its shard of each of the recipe's
mini-batches, computes the gradient of its shard's mean loss, and averages the gradients
with the other processes before the update. ``DistributedDataParallel`` (DDP) does the
averaging for the PyTorch network during ``backward``; for the scratch network an
all-reduce of its gradient dictionary does it by hand. Both record their weights after
every ``log_every``-th step, to be compared with :func:`single_process`.
"""

import itertools
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from .. import scratch, seeding
from ..batches import InMemoryBatches
from ..lockstep import TORCH_NAMES, scratch_copy
from ..model import Net
from ..training import RECIPE, fit, make_torch_step
from . import processes

#: The parameters in a fixed order, by their scratch names (fc1.W, fc1.b, ..., fc3.b).
NAMES = tuple(TORCH_NAMES)

#: step → what was recorded after that step (the weights, as one vector)
Trajectory = dict[int, object]


def flat_weights(net) -> Tensor:
    """Every weight and bias of a torch, DDP or scratch network as one vector (CPU)."""
    if isinstance(net, scratch.Net):
        params = [net.parameters[name] for name in NAMES]
    else:
        module = getattr(net, "module", net)  # DDP keeps the network as .module
        params = [module.get_parameter(TORCH_NAMES[name]) for name in NAMES]
    return torch.cat([p.detach().flatten() for p in params]).cpu()


def fresh_net(dtype=torch.float32, device=None, seed: int = seeding.SEED) -> Net:
    """The book's network, initialised from ``seed`` as the PyTorch chapter does."""
    torch.manual_seed(seed)
    return Net().to(dtype=dtype, device=device)


def recipe_batches(
    images: Tensor,
    labels: Tensor,
    dtype=torch.float32,
    device=None,
    batch_size: int = RECIPE.batch_size,
) -> Iterator:
    """The recipe's shuffled mini-batches (the book's seed), each converted to ``dtype``
    on ``device`` as it is served."""
    source = InMemoryBatches(images, labels, batch_size, generator=seeding.generator())
    for x, y in source:
        yield x.to(device=device, dtype=dtype), y.to(device)


def shard(batches: Iterable, rank: int, world_size: int) -> Iterator:
    """Rank ``rank``'s consecutive part of every batch, the parts as equal as possible."""
    for x, y in batches:
        yield x.tensor_split(world_size)[rank], y.tensor_split(world_size)[rank]


def train(
    step, batches: Iterable, steps: int, log_every: int, observe: Callable[[], object]
) -> Trajectory:
    """Run ``step`` on the first ``steps`` batches; record ``observe()`` after every
    ``log_every``-th step."""
    trajectory, count = {}, itertools.count(1)

    def logged(x, y):
        loss = step(x, y)
        done = next(count)
        if done % log_every == 0:
            trajectory[done] = observe()
        return loss

    fit(logged, itertools.islice(batches, steps), epochs=1, log=None)
    return trajectory


def single_process(
    kind: str,
    images,
    labels,
    steps: int,
    log_every: int,
    dtype=torch.float64,
    lr: float = RECIPE.lr,
    device=None,
) -> Trajectory:
    """One process on the recipe's whole batches of 4: the run to equal.

    ``kind`` is "torch" (autograd and ``torch.optim.SGD``) or "scratch" (the book's
    hand-written network and SGD); both start from :func:`fresh_net`'s weights."""
    net = fresh_net(dtype, device)
    if kind == "torch":
        optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=RECIPE.momentum)
        step = make_torch_step(net, torch.nn.CrossEntropyLoss(), optimizer)
    elif kind == "scratch":
        net = scratch_copy(net)
        optimizer = scratch.SGD(net.parameters, lr=lr, momentum=RECIPE.momentum)
        step = scratch.make_scratch_step(net, scratch.CrossEntropyLoss(), optimizer)
    else:
        raise ValueError(
            f'single_process: kind must be "torch" or "scratch", got {kind!r}'
        )
    batches = recipe_batches(images, labels, dtype, device)
    return train(step, batches, steps, log_every, lambda: flat_weights(net))


def ddp_replica(
    rank: int,
    world_size: int,
    images,
    labels,
    steps: int,
    log_every: int,
    dtype=torch.float64,
    device=None,
) -> Trajectory:
    """This process's part of DDP training: its shard of every recipe batch."""
    net = DistributedDataParallel(fresh_net(dtype, device))
    optimizer = torch.optim.SGD(
        net.parameters(), lr=RECIPE.lr, momentum=RECIPE.momentum
    )
    step = make_torch_step(net, torch.nn.CrossEntropyLoss(), optimizer)
    batches = shard(recipe_batches(images, labels, dtype, device), rank, world_size)
    return train(step, batches, steps, log_every, lambda: flat_weights(net))


def sum_over_processes(grads: dict[str, Tensor]) -> None:
    """Replace each gradient, in place, by its sum over the processes.

    The six tensors travel as one: every all-reduce pays a fixed latency, which is why
    DDP, too, packs gradients into buckets."""
    flat = torch.cat([g.flatten() for g in grads.values()])
    dist.all_reduce(flat)  # the sum over all processes, the same on each of them
    for g, total in zip(
        grads.values(), flat.split([g.numel() for g in grads.values()])
    ):
        g.copy_(total.view_as(g))


def average_gradients(grads: dict[str, Tensor]) -> None:
    """Replace each gradient, in place, by its mean over the processes."""
    sum_over_processes(grads)
    for g in grads.values():
        g.div_(dist.get_world_size())


class AllReduced:
    """An optimiser that first makes the gradients agree across the processes (with
    ``sync``), then steps: every replica takes the same step."""

    def __init__(self, optimizer: scratch.SGD, sync=average_gradients):
        self.optimizer, self.sync = optimizer, sync

    def step(self, grads: dict[str, Tensor]) -> None:
        self.sync(grads)
        self.optimizer.step(grads)


def scratch_replica(
    rank: int,
    world_size: int,
    images,
    labels,
    steps: int,
    log_every: int,
    dtype=torch.float64,
    device=None,
    sync=average_gradients,
    seed: int = seeding.SEED,
    observe=flat_weights,
) -> Trajectory:
    """This process's part of data-parallel training of the scratch network, its
    gradients made to agree by ``sync``; records ``observe(net)``."""
    net = scratch_copy(fresh_net(dtype, device, seed))
    optimizer = AllReduced(
        scratch.SGD(net.parameters, RECIPE.lr, RECIPE.momentum), sync
    )
    step = scratch.make_scratch_step(net, scratch.CrossEntropyLoss(), optimizer)
    batches = shard(recipe_batches(images, labels, dtype, device), rank, world_size)
    return train(step, batches, steps, log_every, lambda: observe(net))


def replica_spread(weights: Tensor) -> float:
    """max over processes r and entries of |θ_r − θ_0|: 0 when every replica holds the
    same weights. Every process must call it."""
    weights = weights.to(processes.device())  # NCCL all-reduces GPU tensors only
    first = weights.clone()
    dist.broadcast(first, src=0)
    spread = (weights - first).abs().max().reshape(1)
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    return spread.item()


def differences(a: Trajectory, b: Trajectory) -> dict[int, float]:
    """max |θ_a − θ_b| after each step both trajectories recorded."""
    return {step: (a[step] - b[step]).abs().max().item() for step in a if step in b}

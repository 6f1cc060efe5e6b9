"""Measured speed: where a training epoch's time goes, and how close it is to the
hardware's limit.

Run ``python -m mnistbook.bench`` for the full report (about two minutes on two CPU
cores). Timings are the best of several interleaved repeats, so a busy machine distorts
them less; they are reported, never asserted."""

import argparse
import itertools
import time

import torch

from . import autograd, batches, scratch, seeding
from .data import mnist
from .lockstep import twin_nets
from .training import RECIPE, make_torch_step, train_fresh_net

#: multiply-adds per sample: the forward pass, then ∂L/∂W of each layer and ∂L/∂X of
#: layers 2 and 3
LAYERS = [(784, 120), (120, 256), (256, 10)]
FORWARD_MACS = sum(i * o for i, o in LAYERS)
BACKWARD_MACS = FORWARD_MACS + sum(i * o for i, o in LAYERS[1:])


def step_flops(batch_size: int) -> int:
    """Floating-point operations (2 per multiply-add) of one training step's matrix
    products."""
    return 2 * (FORWARD_MACS + BACKWARD_MACS) * batch_size


def epoch_flops(samples: int = 60_000) -> int:
    """Floating-point operations (2 per multiply-add) of one training epoch's matrix
    products."""
    return 2 * (FORWARD_MACS + BACKWARD_MACS) * samples


def peak_flops(size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a large float32 matrix product, the best of ``repeats`` timings: the rate a
    step's arithmetic is compared with (a measurement, so a step can occasionally beat it)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


#: The steps :func:`step_seconds` can time: PyTorch's, the hand-written network's, and
#: the network on the book's autograd engine (:mod:`mnistbook.autograd`).
STEPS = ("torch autograd", "scratch", "engine")


def step_seconds(
    images,
    labels,
    batch_size: int,
    steps: int,
    repeats: int = 3,
    which: tuple[str, ...] = STEPS[:2],
) -> dict[str, float]:
    """Seconds per training step of each step named in ``which`` (by default the torch
    autograd step and the scratch step; add "engine" for the autograd engine's).

    All train from the same weights on the same batches; the repeats are interleaved.
    """
    unknown = set(which) - set(STEPS)
    if unknown:
        raise ValueError(f"step_seconds: which must name steps of {STEPS}, got {which}")
    torch_net, scratch_net = twin_nets(seeding.SEED, device=images.device)
    steps_by_name = {
        "torch autograd": make_torch_step(
            torch_net,
            torch.nn.CrossEntropyLoss(),
            torch.optim.SGD(
                torch_net.parameters(), lr=RECIPE.lr, momentum=RECIPE.momentum
            ),
        ),
        "scratch": scratch.make_scratch_step(
            scratch_net,
            scratch.CrossEntropyLoss(),
            scratch.SGD(scratch_net.parameters, lr=RECIPE.lr, momentum=RECIPE.momentum),
        ),
    }
    if "engine" in which:
        steps_by_name["engine"] = autograd.make_engine_step(
            autograd.engine_copy(torch_net)
        )
    steps_by_name = {name: steps_by_name[name] for name in which}
    source = itertools.cycle(
        list(
            itertools.islice(
                batches.InMemoryBatches(
                    images, labels, batch_size, generator=seeding.generator()
                ),
                steps,
            )
        )
    )
    best = {name: float("inf") for name in steps_by_name}
    for _ in range(repeats):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            for _ in range(steps):
                step(*next(source))
            best[name] = min(best[name], (time.perf_counter() - start) / steps)
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=2000, help="training steps per measurement"
    )
    args = parser.parse_args(argv)
    images, labels = batches.mnist_tensors(train=True)
    samples = len(images)
    peak = peak_flops()
    flops = epoch_flops(samples)
    print(
        f"one epoch = {flops / 1e9:.1f} GFLOP of matrix products; a large product runs at "
        f"{peak / 1e9:.0f} GFLOP/s, at which an epoch's products take {flops / peak:.2f} s\n"
    )

    loader_net, loader = train_fresh_net(
        batches.seeded_loader(mnist(train=True)), args.steps
    )
    memory_net, memory = train_fresh_net(
        batches.InMemoryBatches(
            images, labels, RECIPE.batch_size, generator=seeding.generator()
        ),
        args.steps,
    )
    same = all(
        torch.equal(a, b)
        for a, b in zip(loader_net.parameters(), memory_net.parameters())
    )
    per_epoch = samples / RECIPE.batch_size / args.steps
    print(
        f"batch {RECIPE.batch_size}, torch autograd step, {args.steps} steps "
        f"(identical weights: {same})"
    )
    print(f"  DataLoader (2 workers)  {loader * per_epoch:7.1f} s/epoch")
    print(
        f"  in-memory batches       {memory * per_epoch:7.1f} s/epoch   "
        f"{loader / memory:5.1f}x faster\n"
    )

    print(
        f"{'batch':>5s} {'torch autograd':>16s} {'scratch':>10s} "
        f"{'scratch speed-up':>17s} {'engine':>10s} {'products':>12s}"
    )
    for batch_size in (4, 64):
        steps = max(args.steps * RECIPE.batch_size // batch_size, 50)
        seconds = step_seconds(images, labels, batch_size, steps, which=STEPS)
        epoch = {name: s * samples / batch_size for name, s in seconds.items()}
        print(
            f"{batch_size:5d} {epoch['torch autograd']:14.1f} s "
            f"{epoch['scratch']:8.1f} s "
            f"{epoch['torch autograd'] / epoch['scratch']:16.2f}x "
            f"{epoch['engine']:8.1f} s "
            f"{flops / peak:10.2f} s"
        )
    print(
        "\n(times are seconds per epoch of 60 000 images, measured on part of an epoch)"
    )


if __name__ == "__main__":
    main()

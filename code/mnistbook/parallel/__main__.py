"""``python -m mnistbook.parallel --steps N``: DDP on the recipe's batches, split across
processes, against one process on the whole batches; rank 0 prints the largest weight
difference and the exit status says whether it is rounding.

Under ``torchrun --nproc-per-node R`` each process is one rank of torchrun's group; run
directly, the module launches ``--processes`` itself (:func:`~.processes.launch`)."""

import argparse
import faulthandler
import os
import sys

import torch

from .. import seeding
from ..batches import mnist_tensors
from .experiments import ddp_run
from .processes import device, launch, process_group
from .replicas import ddp_replica, differences, single_process

#: Largest difference that is still rounding, per dtype (the chapter measures both).
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistbook.parallel", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--steps", type=int, default=200, help="training steps (200)")
    parser.add_argument(
        "--log-every",
        type=int,
        default=100,
        help="compare the weights after every this many steps (100)",
    )
    parser.add_argument("--dtype", choices=sorted(TOLERANCE), default="float64")
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="processes to launch when not started by torchrun (2)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds before the run gives up (300)",
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or args.log_every < 1:
        parser.error(
            f"--steps and --log-every must be ≥ 1, got {args.steps} and "
            f"{args.log_every}"
        )
    log_every = min(args.log_every, args.steps)
    run = (args.steps, log_every, args.dtype)
    seeding.seed_everything()
    if "RANK" in os.environ:  # started by torchrun: one rank of its group
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        faulthandler.dump_traceback_later(args.timeout, exit=True)  # never hang
        images, labels = mnist_tensors(train=True)
        with process_group(rank, world_size, local_rank=local_rank):
            trajectory = ddp_replica(
                rank,
                world_size,
                images,
                labels,
                args.steps,
                log_every,
                getattr(torch, args.dtype),
                device(),
            )
        faulthandler.cancel_dump_traceback_later()
        if rank != 0:
            return 0
    else:
        world_size = args.processes
        trajectory = launch(ddp_run, run, world_size, timeout=args.timeout)
        images, labels = mnist_tensors(train=True)
    reference = single_process(
        "torch",
        images,
        labels,
        args.steps,
        log_every,
        dtype=getattr(torch, args.dtype),
        device=device(),
    )
    largest = max(differences(trajectory, reference).values())
    print(
        f"DDP on {world_size} processes against one process, {args.steps} steps, "
        f"{args.dtype}: largest weight difference {largest:.1e}"
    )
    return 0 if largest <= TOLERANCE[args.dtype] else 1


if __name__ == "__main__":
    sys.exit(main())

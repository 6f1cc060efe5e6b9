"""A loop of all-reduces in which one process fails on purpose, in one of the ways
processes fail: to show, and to test, what a launch does then.

It imports nothing of the book but the launcher, so its processes start in about half
the time of the training ones."""

import os
import signal
import time

import torch
import torch.distributed as dist

from . import processes

#: The ways :func:`failing_loop` can fail.
FAULTS = ("raise", "hang", "die", "abort")


class InjectedFault(RuntimeError):
    """Raised on purpose by :func:`failing_loop`."""


def failing_loop(
    rank: int,
    world_size: int,
    fail_rank: int,
    fail_step: int,
    fault: str = "raise",
    steps: int = 10,
) -> int:
    """``steps`` steps, each an all-reduce of a counter; at step ``fail_step`` rank
    ``fail_rank`` raises, hangs, dies or aborts (``fault``) while the others wait for it in
    their all-reduce. Returns the counter when nothing fails."""
    if fault not in FAULTS:
        raise ValueError(f"failing_loop: fault must be one of {FAULTS}, got {fault!r}")
    counter = torch.zeros(1, device=processes.device())
    for step in range(1, steps + 1):
        if rank == fail_rank and step == fail_step:
            if fault == "raise":
                raise InjectedFault(f"rank {rank} raises at step {step}, on purpose")
            if fault == "hang":
                time.sleep(24 * 3600)
            if fault == "abort":  # as a C++ library fails: a line on stderr, abort()
                os.write(2, f"rank {rank}: terminate called at step {step}\n".encode())
                os.abort()
            os.kill(os.getpid(), signal.SIGKILL)  # "die": no traceback, no clean-up
        counter += 1
        dist.all_reduce(counter)
    return int(counter.item())

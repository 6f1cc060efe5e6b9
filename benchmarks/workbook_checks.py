"""Time every workbook check on one CPU core, on the book's own answer (which passes).

Prints each check's first call (which pays torch's one-time warm-up, as a learner's first run
does) and the best of three later calls, beside a reference measured in the same run: the book's
gradient check of the whole network on 32 images (``gradcheck.check_net``), as the chapter
"Implementing the network from scratch" runs it. The checks come from the registry,
``mnistbook.workbook.EXERCISES``; the training check is timed once.

Run: ``python benchmarks/workbook_checks.py`` (``--no-training`` skips the training check;
``--smoke`` times each quick check once, as the tests do to keep this script working).
"""

import argparse
import functools
import importlib
import time

import torch

from mnistbook import gradcheck, scratch
from mnistbook.batches import mnist_tensors
from mnistbook.workbook import EXERCISES


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def best_of(function, repeats: int) -> float:
    return min(seconds(function) for _ in range(repeats))


def answer(exercise):
    module, name = exercise.solution.split(":")
    return getattr(importlib.import_module(module), name)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-training", action="store_true", help="skip the training check"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="each quick check once, no training"
    )
    args = parser.parse_args(argv)
    repeats = 1 if args.smoke else 3
    torch.set_num_threads(1)
    images, labels = mnist_tensors(train=False)
    X, y = images[:32].double().reshape(32, 784), labels[:32]
    reference = best_of(
        lambda: gradcheck.check_net(
            scratch.Net(dtype=torch.float64), scratch.CrossEntropyLoss(), X, y
        ),
        repeats,
    )
    print(f"{'':45s} {'first call':>10s} {'best of ' + str(repeats):>10s}")
    print(
        f"{'reference: gradcheck.check_net, 32 images':45s} {'':10s} {1000 * reference:7.1f} ms"
    )
    slow = [e for e in EXERCISES.values() if e.time_limit > 60]
    for exercise in EXERCISES.values():
        if exercise in slow or not exercise.solution:
            continue
        run = functools.partial(exercise.check, answer(exercise))
        first = seconds(run)
        result = run()
        assert result.passed, result
        print(
            f"{exercise.name:45s} {1000 * first:7.1f} ms {1000 * best_of(run, repeats):7.1f} ms"
        )
    if not (args.no_training or args.smoke):
        for exercise in slow:
            start = time.perf_counter()
            result = exercise.check(answer(exercise))
            print(
                f"{exercise.name + ' (once)':45s} {time.perf_counter() - start:7.1f} s   {result.message}"
            )


if __name__ == "__main__":
    main()

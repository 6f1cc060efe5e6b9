"""Time every workbook check on one CPU core, on the book's own implementation (which passes).

Prints each check's first call (which pays torch's one-time warm-up, as a learner's first run
does) and the best of three later calls, beside a reference measured in the same run: the book's gradient check of the whole network on 32 images (``gradcheck.check_net``), as
the chapter "Implementing the network from scratch" runs it. The training check is timed once.
Run: ``python benchmarks/workbook_checks.py`` (add ``--no-training`` to skip the training check).
"""

import sys
import time

import torch

from mnistbook import functional as F, gradcheck, scratch
from mnistbook.batches import mnist_tensors
from mnistbook.workbook import (check_cross_entropy, check_cross_entropy_grad, check_linear, check_net,
                                check_relu, check_sgd, check_softmax_jacobian, check_training)


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    torch.set_num_threads(1)
    images, labels = mnist_tensors(train=False)
    X, y = images[:32].double().reshape(32, 784), labels[:32]
    print(f"{'':45s} {'first call':>10s} {'best of 3':>10s}")
    reference = best_of(lambda: gradcheck.check_net(scratch.Net(dtype=torch.float64), scratch.CrossEntropyLoss(), X, y))
    print(f"{'reference: gradcheck.check_net, 32 images':45s} {'':10s} {1000 * reference:7.1f} ms")
    checks = {
        "check_cross_entropy": lambda: check_cross_entropy(F.cross_entropy),
        "check_cross_entropy_grad": lambda: check_cross_entropy_grad(F.cross_entropy_grad),
        "check_softmax_jacobian": lambda: check_softmax_jacobian(F.softmax_jacobian),
        "check_linear": lambda: check_linear(scratch.Linear),
        "check_relu": lambda: check_relu(scratch.ReLU),
        "check_net": lambda: check_net(scratch.Net),
        "check_sgd": lambda: check_sgd(scratch.SGD),
    }
    for name, check in checks.items():
        first = seconds(check)
        assert check().passed, name
        print(f"{name:45s} {1000 * first:7.1f} ms {1000 * best_of(check):7.1f} ms")
    if "--no-training" not in sys.argv:
        start = time.perf_counter()
        result = check_training(scratch.train_step)
        print(f"{'check_training (once)':45s} {time.perf_counter() - start:7.1f} s   {result.message}")


if __name__ == "__main__":
    main()

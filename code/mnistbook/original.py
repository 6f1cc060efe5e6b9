"""The original notebook's from-scratch code, as written, so the book can run it.

The notebook's Part 3 leaves most bodies as ``pass`` for the reader to fill in, and its classes
call each other in ways that fail before any arithmetic happens. The classes below are the
notebook's, line for line (indentation aside); :class:`Linear` and :class:`ReLU` get the book's
working bodies, so that the notebook's own :class:`Net` can run as far as it goes. The book
never trains with them: :func:`run_as_written` shows where each one stops.
"""

import torch

from . import scratch


class NLLLoss:
    """The notebook's loss skeleton: ``__call__`` passes one argument to a two-argument forward."""

    def __call__(self, x):
        return self.forward(x)

    def forward(self, outputs, labels):
        pass

    def backward(self, outputs, labels):
        pass


class LinearSkeleton:
    """The notebook's ``Linear`` as handed to the reader: ``__init__`` sets no ``W`` or ``b``."""

    def __init__(self, dim_in, dim_out):
        pass


LinearSkeleton.__name__ = LinearSkeleton.__qualname__ = "Linear"  # its name in the notebook


class Linear(scratch.Linear):
    """The book's working ``Linear``, callable as the notebook's ``Net`` calls it."""

    def __call__(self, x):
        return self.forward(x)


class ReLU(scratch.ReLU):
    """The book's working ``ReLU``, callable as the notebook's ``Net`` calls it."""

    def __call__(self, x):
        return self.forward(x)


class Net:
    """The notebook's ``Net``: one shared ReLU, and a ``backward`` that hands ``z`` to every layer."""

    layer = Linear  # the notebook's Linear, filled in; LinearSkeleton as handed out

    def __init__(self):
        self.fc1 = self.layer(28 * 28, 120)
        self.fc2 = self.layer(120, 256)
        self.fc3 = self.layer(256, 10)
        self.relu = ReLU()
        self.parameters = {
            "fc1.W": self.fc1.W,
            "fc1.b": self.fc1.b,
            "fc2.W": self.fc2.W,
            "fc2.b": self.fc2.b,
            "fc3.W": self.fc3.W,
            "fc3.b": self.fc3.b,
        }
        self._grad = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        x = torch.reshape(x, (x.shape[0], -1))  # flatten all dimension except batch
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        x = self.fc3(x)
        return x

    def backward(self, z):
        self._grad = {}
        dz, dW, db = self.fc3.backward(z)
        self._grad["fc3.W"] = dW
        self._grad["fc3.b"] = db
        dz = self.relu(z)
        dz, dW, db = self.fc2.backward(z)
        self._grad["fc2.W"] = dW
        self._grad["fc2.b"] = db
        dz = self.relu.backward(z)
        dz, dW, db = self.fc1.backward(z)
        self._grad["fc1.W"] = dW
        self._grad["fc1.b"] = db


class NetAsHandedOut(Net):
    """The notebook's ``Net`` over its ``Linear`` skeleton, as a reader first runs it."""

    layer = LinearSkeleton


def run_as_written(images: torch.Tensor, labels: torch.Tensor) -> dict[str, str]:
    """Run each step of the notebook's Parts 3 to 5 that fails; return what each raised.

    The training loop's ``optimizer`` is never created in Part 4 or 5, so in the notebook the
    name still holds Part 1's ``optim.SGD``: it is recreated here the same way.
    """
    net = Net()
    logits = net(images)
    gradient = scratch.CrossEntropyLoss().backward(logits, labels)
    part1_optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.001,
                                      momentum=0.9)
    attempts = {
        "NLLLoss()(outputs, labels)": lambda: NLLLoss()(logits, labels),
        "Net() over the Linear skeleton": NetAsHandedOut,
        "net.backward(dz)": lambda: net.backward(gradient),
        "optimizer.step(net._grad)": lambda: part1_optimizer.step(net._grad),
    }
    outcome = {}
    for statement, attempt in attempts.items():
        try:
            attempt()
            outcome[statement] = "ran without an error"
        except (TypeError, AttributeError, ValueError, RuntimeError) as error:
            outcome[statement] = f"{type(error).__name__}: {error}"
    return outcome

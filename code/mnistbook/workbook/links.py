"""Where the book explains each thing a check can find wrong: one base URL, one record per
section.

Each section is a constant (``links.LINEAR``), so a misspelt name fails at import, never while a
check runs. Its anchor is the explicit label the chapter gives the section (``(backprop-linear)=``
before the heading), which does not change when the heading's words do. Change :data:`BASE` (or
:func:`book_url`) and every message links elsewhere: relative links work in the built book, where
the workbook pages sit beside the chapters; the Colab twins set ``MNISTBOOK_BOOK_URL`` to the
published book's address, so there the links are absolute.
"""

import os
from dataclasses import dataclass

#: Prefix of every link: ``$MNISTBOOK_BOOK_URL``, else "" for links relative to a page of the
#: built book.
BASE = os.environ.get("MNISTBOOK_BOOK_URL", "")


def book_url(page: str, anchor: str = "") -> str:
    """The address of a section of the book, e.g. ``book_url("backprop", "backprop-linear")``."""
    return f"{BASE}{page}.html" + (f"#{anchor}" if anchor else "")


@dataclass(frozen=True)
class Section:
    title: str
    page: str  # the chapter, book/<page>.md
    label: str  # the label before the section's heading, its anchor in the HTML

    @property
    def url(self) -> str:
        return book_url(self.page, self.label)


MEAN = Section("The loss of a mini-batch: the mean", "likelihood", "likelihood-mean")
JACOBIAN = Section("The Jacobian of the softmax", "softmax", "softmax-jacobian")
LOSS_GRADIENT = Section(
    "The gradient of the loss: p − 𝐲", "softmax", "softmax-loss-gradient"
)
OVERFLOW = Section(
    "Computing the softmax without overflow", "softmax", "softmax-overflow"
)
LINEAR = Section("A linear layer", "backprop", "backprop-linear")
RELU = Section("A ReLU", "backprop", "backprop-relu")
NETWORK = Section("The whole network", "backprop", "backprop-network")
INITIALISATION = Section(
    "Why U(−1/√n_in, 1/√n_in)", "scratch", "scratch-initialisation"
)
SCRATCH_NETWORK = Section(
    "Implementing the network from scratch: the network", "scratch", "scratch-network"
)
OPTIMISER = Section(
    "Implementing the network from scratch: the optimiser",
    "scratch",
    "scratch-optimizer",
)
MOMENTUM = Section(
    "A loss function and an optimiser", "pytorch", "pytorch-loss-optimiser"
)
TRAINING_STEP = Section(
    "One training step, by hand", "training-scratch", "training-scratch-step"
)
BUG_ASCENT = Section(
    "Failure modes 1: the optimiser adds the gradient",
    "failure-modes",
    "failure-ascent",
)
BUG_ACTIVATIONS = Section(
    "Failure modes 2: backward is handed the activations",
    "failure-modes",
    "failure-activations",
)
BUG_RELU_FORWARD = Section(
    "Failure modes 3: the ReLU's forward where its backward belongs",
    "failure-modes",
    "failure-relu-forward",
)
BUG_SHARED_RELU = Section(
    "Failure modes 4: one ReLU shared by two layers",
    "failure-modes",
    "failure-shared-relu",
)
BUG_SHADOWED_LOSS = Section(
    "Failure modes 5: the loss object shadowed by its own value",
    "failure-modes",
    "failure-shadowed-loss",
)
BUG_NOT_DIVIDED = Section(
    "Failure modes 6: the gradient not divided by the batch size",
    "failure-modes",
    "failure-not-divided",
)
BUG_UNSHIFTED = Section(
    "Failure modes 7: softmax without subtracting the maximum",
    "failure-modes",
    "failure-unshifted",
)
ENGINE_RULES = Section(
    "Autograd from scratch: a tensor that remembers where it came from",
    "autograd",
    "autograd-tensor",
)
ENGINE_ORDER = Section(
    "Autograd from scratch: the order of the backward pass",
    "autograd",
    "autograd-topological-order",
)
ENGINE_ACCUMULATION = Section(
    "Autograd from scratch: a value used twice", "autograd", "autograd-accumulation"
)
ENGINE_BROADCASTING = Section(
    "Autograd from scratch: broadcasting, and the bias's gradient",
    "autograd",
    "autograd-broadcasting",
)

#: Every section a message can link to, by a short name (for code that names them by string).
SECTIONS = {
    "mean": MEAN,
    "jacobian": JACOBIAN,
    "loss-gradient": LOSS_GRADIENT,
    "overflow": OVERFLOW,
    "linear": LINEAR,
    "relu": RELU,
    "network": NETWORK,
    "initialisation": INITIALISATION,
    "scratch-network": SCRATCH_NETWORK,
    "optimiser": OPTIMISER,
    "momentum": MOMENTUM,
    "training-step": TRAINING_STEP,
    "bug-ascent": BUG_ASCENT,
    "bug-activations": BUG_ACTIVATIONS,
    "bug-relu-forward": BUG_RELU_FORWARD,
    "bug-shared-relu": BUG_SHARED_RELU,
    "bug-shadowed-loss": BUG_SHADOWED_LOSS,
    "bug-not-divided": BUG_NOT_DIVIDED,
    "bug-unshifted": BUG_UNSHIFTED,
    "engine-rules": ENGINE_RULES,
    "engine-order": ENGINE_ORDER,
    "engine-accumulation": ENGINE_ACCUMULATION,
    "engine-broadcasting": ENGINE_BROADCASTING,
}

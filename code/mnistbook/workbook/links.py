"""Where the book explains each thing a check can find wrong: one base URL, one table of sections.

Change :data:`BASE` (or :func:`book_url`) and every message links elsewhere: relative links
work in the built book, where the workbook pages sit beside the chapters; the Colab twins set
``MNISTBOOK_BOOK_URL`` to the published book's address, so there the links are absolute.
"""

import os
from dataclasses import dataclass

#: Prefix of every link: ``$MNISTBOOK_BOOK_URL``, else "" for links relative to a page of the
#: built book.
BASE = os.environ.get("MNISTBOOK_BOOK_URL", "")


def book_url(page: str, anchor: str = "") -> str:
    """The address of a section of the book, e.g. ``book_url("backprop", "a-linear-layer")``."""
    return f"{BASE}{page}.html" + (f"#{anchor}" if anchor else "")


@dataclass(frozen=True)
class Section:
    title: str
    page: str
    anchor: str

    @property
    def url(self) -> str:
        return book_url(self.page, self.anchor)


# The anchors are the ids Sphinx gives the headings of the chapters.
SECTIONS = {
    "mean": Section("The loss of a mini-batch: the mean", "likelihood", "the-loss-of-a-mini-batch-the-mean"),
    "jacobian": Section("The Jacobian of the softmax", "softmax", "the-jacobian-of-the-softmax"),
    "loss-gradient": Section("The gradient of the loss: p − y", "softmax", "the-gradient-of-the-loss-p-y"),
    "overflow": Section("Computing the softmax without overflow", "softmax", "computing-the-softmax-without-overflow"),
    "linear": Section("A linear layer", "backprop", "a-linear-layer"),
    "relu": Section("A ReLU", "backprop", "a-relu"),
    "network": Section("The whole network", "backprop", "the-whole-network"),
    "scratch-network": Section("Implementing the network from scratch: the network", "scratch", "the-network"),
    "optimiser": Section("Implementing the network from scratch: the optimiser", "scratch", "the-optimiser"),
    "momentum": Section("A loss function and an optimiser", "pytorch", "a-loss-function-and-an-optimiser"),
    "training-step": Section("One training step, by hand", "training-scratch", "one-training-step-by-hand"),
    "bug-ascent": Section("Failure modes 1: the optimiser adds the gradient", "failure-modes",
                          "the-optimiser-adds-the-gradient"),
    "bug-activations": Section("Failure modes 2: backward is handed the activations", "failure-modes",
                               "backward-is-handed-the-activations-instead-of-the-gradient"),
    "bug-relu-forward": Section("Failure modes 3: the ReLU's forward where its backward belongs", "failure-modes",
                                "the-relu-s-forward-where-its-backward-belongs"),
    "bug-shared-relu": Section("Failure modes 4: one ReLU shared by two layers", "failure-modes",
                               "one-relu-shared-by-two-layers"),
    "bug-shadowed-loss": Section("Failure modes 5: the loss object shadowed by its own value", "failure-modes",
                                 "the-loss-object-shadowed-by-its-own-value"),
    "bug-not-divided": Section("Failure modes 6: the gradient not divided by the batch size", "failure-modes",
                               "the-gradient-not-divided-by-the-batch-size"),
    "bug-unshifted": Section("Failure modes 7: softmax without subtracting the maximum", "failure-modes",
                             "softmax-without-subtracting-the-maximum"),
}

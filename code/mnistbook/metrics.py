"""Predictions, the confusion matrix, and the accuracies read off it."""

import torch
from torch import Tensor

from . import validate


@torch.no_grad()
def predict(model, images: Tensor, batch_size: int = 1000) -> Tensor:
    """The predicted class of every image; ``model`` maps a batch of images to
    logits."""
    chunks = [
        model(images[i : i + batch_size]).argmax(dim=1)
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks).cpu()


def confusion_matrix(
    predictions: Tensor, labels: Tensor, num_classes: int = 10
) -> Tensor:
    """Counts C[true, predicted] as an int64 (num_classes, num_classes) tensor."""
    labels = labels.cpu()
    validate.labels(labels, len(labels), num_classes, "confusion_matrix")
    validate.labels(
        predictions, len(labels), num_classes, "confusion_matrix (predictions)"
    )
    index = labels * num_classes + predictions
    return torch.bincount(index, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def accuracy(confusion: Tensor) -> float:
    """Fraction of all samples on the diagonal, in percent."""
    return 100.0 * confusion.diag().sum().item() / confusion.sum().item()


def per_class_accuracy(confusion: Tensor) -> Tensor:
    """Recall of each true class, in percent: the diagonal over each row's total."""
    return 100.0 * confusion.diag().double() / confusion.sum(dim=1).double()


def standard_error(accuracy_percent: float, n: int) -> float:
    """The standard error of an accuracy measured on ``n`` test images, in percentage
    points: √(p (1 − p) / n), the spread of the estimate over equally likely test sets."""
    p = accuracy_percent / 100
    return 100 * (p * (1 - p) / n) ** 0.5


def difference_standard_error(
    predictions_a: Tensor, predictions_b: Tensor, labels: Tensor
) -> float:
    """The standard error, in percentage points, of the difference of two classifiers'
    accuracies on the same images: the spread of the per-image difference of their
    correctness (1, 0 or −1) over √n. Images both get right, or both wrong, add nothing."""
    labels = labels.cpu()
    difference = (predictions_a.cpu() == labels).double() - (
        predictions_b.cpu() == labels
    ).double()
    return 100 * difference.std().item() / len(labels) ** 0.5

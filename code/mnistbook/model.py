"""The book's classifier in PyTorch: 784 → 120 → 256 → 10 with ReLU between the
layers."""

import torch
from torch import nn

from . import validate
from .validate import guarded


@guarded(forward=validate.images_input)
class Net(nn.Module):
    """A multilayer perceptron for 28×28 digits; it returns logits, not
    probabilities."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 120)
        self.fc2 = nn.Linear(120, 256)
        self.fc3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)  # (B, 1, 28, 28) → (B, 784): all but the batch
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")

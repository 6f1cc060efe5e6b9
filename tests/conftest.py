"""Shared fixtures: the real MNIST tensors, loaded once per test session."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(
    0, str(ROOT / "book" / "_ext")
)  # the book's Sphinx extensions, for their tests

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session")
def train_tensors():
    from mnistbook.batches import mnist_tensors

    return mnist_tensors(train=True)


@pytest.fixture(scope="session")
def test_tensors():
    from mnistbook.batches import mnist_tensors

    return mnist_tensors(train=False)


@pytest.fixture
def real_batch(test_tensors):
    """32 real test digits, flat, in float64, with their labels."""
    images, labels = test_tensors
    return images[:32].double().reshape(32, 784), labels[:32]

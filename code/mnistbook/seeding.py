"""Every seed of the book in one place, so two builds print the same numbers."""

import random

import numpy as np
import torch

SEED = 0


def seed_everything(seed: int = SEED) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) — call once at the top of a chapter."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def generator(seed: int = SEED) -> torch.Generator:
    """A private random stream for shuffling, independent of the global one used by initialisation."""
    return torch.Generator().manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoader workers: derive NumPy's and Python's seeds from torch's."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)

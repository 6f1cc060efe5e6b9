"""Every seed of the book in one place, so two builds print the same numbers."""

import random

import numpy as np
import torch

SEED = 0

#: CPU threads for torch. The thread count decides how a sum is split, so it changes
#: results in the last bits: fixed, it cannot make two builds differ. One thread is also
#: the fastest for this small network at batch 4, and leaves the other cores to chapters
#: executing beside it.
THREADS = 1


def seed_everything(seed: int = SEED) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and fix torch's CPU threads.

    Call it once at the top of a chapter.
    """
    torch.set_num_threads(THREADS)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def generator(seed: int = SEED) -> torch.Generator:
    """A private random stream for shuffling, independent of the global one used by
    initialisation."""
    return torch.Generator().manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoader workers: derive NumPy's and Python's seeds from
    torch's."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)

"""Where the book keeps data and checkpoints, overridable by one environment
variable."""

import os
from pathlib import Path

DATA_ENV = "MNISTBOOK_DATA"


def repo_root() -> Path | None:
    """The book's repository when the package runs from a checkout, else None (e.g.
    Colab)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "_toc.yml").is_file() else None


def _base() -> Path:
    return repo_root() or Path.cwd()


def data_root() -> Path:
    """The folder that holds ``MNIST/raw/``: ``$MNISTBOOK_DATA``, else
    ``<repo>/data``."""
    override = os.environ.get(DATA_ENV)
    return Path(override).expanduser().resolve() if override else _base() / "data"


def checkpoint_path(name: str = "mnist_net.pt") -> Path:
    """A file under ``<repo>/checkpoints/`` (ignored by git), the folder created on
    demand."""
    folder = _base() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name

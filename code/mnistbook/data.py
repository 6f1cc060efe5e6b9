"""MNIST through ``torchvision.datasets.MNIST(download=True)``, with one clear error
when it fails.

Offline, with a corrupt archive or an unwritable folder, torchvision raises deep urllib,
gzip or permission errors. :func:`mnist` turns each into :class:`MNISTUnavailableError`,
which names the folder, the four archives and how to get them, and it removes whatever a
failed attempt wrote, so no half-extracted file is mistaken for data on the next run.
"""

import contextlib
import gzip
import hashlib
import io
import os
from pathlib import Path

import torchvision
from torchvision import transforms

from .paths import DATA_ENV, data_root

# The four archives and their md5 sums, as torchvision checks them.
ARCHIVES = dict(torchvision.datasets.MNIST.resources)

#: The original notebook's transform: PIL image (uint8, 0–255) → float tensor in [0, 1]
#: → [-1, 1].
NOTEBOOK_TRANSFORM = transforms.Compose(
    [transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]
)


class MNISTUnavailableError(RuntimeError):
    """MNIST could be neither found nor downloaded; the message says where to put it."""


def raw_folder(root: Path | None = None) -> Path:
    """Where torchvision looks for the four archives: ``<data root>/MNIST/raw``."""
    return Path(root or data_root()) / "MNIST" / "raw"


def mnist(train: bool = True, transform=NOTEBOOK_TRANSFORM, root: Path | None = None):
    """The training (60 000) or test (10 000) split as a torchvision dataset.

    Downloads the archives on first use; raises :class:`MNISTUnavailableError` when that
    is impossible, after removing anything the failed attempt left behind.
    """
    root = Path(root or data_root())
    folder = raw_folder(root)
    created = [p for p in (root, root / "MNIST", folder) if not p.exists()]
    before = set(folder.iterdir()) if folder.is_dir() else set()
    try:
        _extract_archives(folder)
        # torchvision reports download progress and retries on stdout/stderr; the error
        # below says it all.
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            return torchvision.datasets.MNIST(
                root, train=train, download=True, transform=transform
            )
    except (
        Exception
    ) as error:  # urllib, gzip, zlib, permission and parsing errors alike
        _remove_new_files(folder, before, created)
        raise MNISTUnavailableError(_explain(root, error)) from None


def _extract_archives(folder: Path) -> None:
    """Extract each intact archive that is present and not yet extracted.

    torchvision extracts in place, so a chapter loading MNIST while another extracts it
    could read a half-written file; here each file is written under a temporary name and
    renamed into place in one step. Missing or corrupt archives are left to torchvision,
    which downloads them."""
    for name, md5 in ARCHIVES.items():
        archive, target = folder / name, folder / name.removesuffix(".gz")
        if target.exists() or not archive.is_file() or _md5(archive) != md5:
            continue
        partial = target.with_name(f"{target.name}.{os.getpid()}.part")
        partial.write_bytes(gzip.decompress(archive.read_bytes()))
        os.replace(partial, target)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _remove_new_files(folder: Path, before: set, created: list) -> None:
    """Delete files a failed attempt wrote (partial downloads, half-extracted files)."""
    if folder.is_dir():
        for path in set(folder.iterdir()) - before:
            with contextlib.suppress(OSError):
                path.unlink()
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()  # only succeeds if empty


def archive_status(folder: Path) -> dict[str, str]:
    """For each of the four archives: 'ok', 'missing', or why it is corrupt."""
    status = {}
    for name, md5 in ARCHIVES.items():
        path = folder / name
        if not path.is_file():
            status[name] = "missing"
            continue
        digest = _md5(path)
        status[name] = (
            "ok"
            if digest == md5
            else f"corrupt: {path.stat().st_size} bytes, md5 {digest}, expected {md5}"
        )
    return status


def _explain(root: Path, error: Exception) -> str:
    folder = raw_folder(root)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    cause = f"{type(error).__name__}: {lines[0]}" + (
        f" … {lines[-1]}" if len(lines) > 1 else ""
    )
    lines = [
        f"MNIST is not available in {folder} and could not be downloaded or read:",
        f"  {cause}",
    ]
    if isinstance(error, PermissionError) or (root.exists() and not _writable(root)):
        lines.append(
            f"The data folder {root} is not writable: set {DATA_ENV} to a folder you "
            "can write to."
        )
    lines.append("The four archives, as torchvision expects them there:")
    status = archive_status(folder)
    lines += [f"  {name:28s} {state}" for name, state in status.items()]
    if all(state == "ok" for state in status.values()):
        extracted = ", ".join(name.removesuffix(".gz") for name in ARCHIVES)
        lines.append(
            "The archives are intact, so an extracted file is damaged: delete "
            f"{extracted} "
            f"from {folder} and run again to extract them afresh."
        )
    mirrors = ", ".join(torchvision.datasets.MNIST.mirrors)
    lines += [
        "How to fix it:",
        f"  - online: run again and torchvision downloads them from {mirrors};",
        f"  - offline: copy the four .gz files into {folder} (mkdir -p it first),",
        (
            "    replacing any marked corrupt; the md5 sums above are the ones "
            "torchvision checks;"
        ),
        f"  - or point {DATA_ENV} at a folder that already holds MNIST/raw/ with them.",
    ]
    return "\n".join(lines)


def _writable(path: Path) -> bool:
    probe = path / ".mnistbook-write-probe"
    try:
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False

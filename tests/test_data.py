"""MNIST loading: shapes and normalisation, and one clear error for every way it can fail."""

import gzip
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
import torchvision

from mnistbook import data, paths
from mnistbook.batches import mnist_tensors


def test_splits_have_the_documented_shapes_and_range(train_tensors, test_tensors):
    for (images, labels), n in ((train_tensors, 60_000), (test_tensors, 10_000)):
        assert images.shape == (n, 1, 28, 28) and images.dtype == torch.float32
        assert labels.shape == (n,) and labels.dtype == torch.int64
        assert images.min() == -1 and images.max() == 1
        assert set(labels.unique().tolist()) == set(range(10))


def test_in_memory_tensors_equal_the_notebook_transform_bit_for_bit(test_tensors):
    images, labels = test_tensors
    dataset = data.mnist(train=False)  # the original notebook's ToTensor + Normalize
    for i in (0, 1, 4321, 9999):
        image, label = dataset[i]
        assert torch.equal(image, images[i]) and label == labels[i]


def test_data_root_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path))
    assert paths.data_root() == tmp_path.resolve()
    monkeypatch.delenv(paths.DATA_ENV)
    assert paths.data_root() == paths.repo_root() / "data"


@pytest.fixture
def offline(monkeypatch):
    """No network: every URL open fails as it does on a machine without internet."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _raw(root):
    return root / "MNIST" / "raw"


def _stage(root, source_root=None):
    """Copy the four verified archives from the book's data folder into root."""
    source = _raw(source_root or paths.data_root())
    _raw(root).mkdir(parents=True)
    for name in data.ARCHIVES:
        shutil.copyfile(source / name, _raw(root) / name)


def test_missing_data_offline_names_folder_archives_and_remedy(tmp_path, offline):
    root = tmp_path / "nowhere"
    with pytest.raises(data.MNISTUnavailableError) as caught:
        data.mnist(train=True, root=root)
    message = str(caught.value)
    assert str(_raw(root)) in message and paths.DATA_ENV in message
    for name in data.ARCHIVES:
        assert f"{name:28s} missing" in message
    assert "name resolution" in message and "Traceback" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not root.exists(), "a failed attempt must not leave empty folders behind"


def test_corrupt_archive_is_named_with_its_checksum(tmp_path, offline):
    _stage(tmp_path)
    archive = _raw(tmp_path) / "train-images-idx3-ubyte.gz"
    archive.chmod(0o644)
    archive.write_bytes(archive.read_bytes()[:5000])  # truncated
    with pytest.raises(data.MNISTUnavailableError) as caught:
        data.mnist(train=True, root=tmp_path)
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz   corrupt: 5000 bytes" in message
    assert data.ARCHIVES["train-images-idx3-ubyte.gz"] in message  # the expected md5
    assert "train-labels-idx1-ubyte.gz   ok" in message


def test_no_half_written_files_survive_a_failed_extraction(
    tmp_path, offline, monkeypatch
):
    _stage(tmp_path)
    before = sorted(p.name for p in _raw(tmp_path).iterdir())
    real_write = Path.write_bytes
    calls = []

    def write_then_fail(path, payload):
        calls.append(path)
        if (
            len(calls) == 2
        ):  # the second archive: write part of it, then the disk "fills up"
            real_write(path, payload[:100])
            raise OSError(28, "No space left on device")
        return real_write(path, payload)

    monkeypatch.setattr(Path, "write_bytes", write_then_fail)
    with pytest.raises(data.MNISTUnavailableError, match="No space left on device"):
        data.mnist(train=True, root=tmp_path)
    assert sorted(p.name for p in _raw(tmp_path).iterdir()) == before


def test_extracted_files_appear_only_whole(tmp_path, monkeypatch):
    """Chapters executed side by side load MNIST at the same time: each extracted file is
    written under a temporary name and renamed into place complete."""
    _stage(tmp_path)
    renamed = {}
    real_replace = data.os.replace

    def replace(source, target):
        assert not Path(target).exists()
        renamed[Path(target).name] = Path(source).read_bytes()
        real_replace(source, target)

    monkeypatch.setattr(data.os, "replace", replace)
    data.mnist(train=False, root=tmp_path)
    for name in data.ARCHIVES:
        whole = gzip.decompress((_raw(tmp_path) / name).read_bytes())
        assert renamed[name.removesuffix(".gz")] == whole
    assert not list(_raw(tmp_path).glob("*.part"))


def test_partial_download_is_removed(tmp_path, monkeypatch):
    def partial_download(url, filename, chunk_size=1024 * 32):
        with open(filename, "wb") as file:
            file.write(b"\x1f\x8b partial")
        raise urllib.error.URLError("connection reset")

    monkeypatch.setattr(torchvision.datasets.utils, "_urlretrieve", partial_download)
    monkeypatch.setattr(
        torchvision.datasets.utils, "_get_redirect_url", lambda url, max_hops: url
    )
    with pytest.raises(data.MNISTUnavailableError):
        data.mnist(train=True, root=tmp_path)
    assert not (tmp_path / "MNIST").exists()


def test_unwritable_data_folder_says_so(tmp_path, monkeypatch, offline):
    import torchvision.datasets.mnist as tv_mnist

    def refuse(path, exist_ok=False):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(tv_mnist.os, "makedirs", refuse)
    with pytest.raises(data.MNISTUnavailableError) as caught:
        data.mnist(train=True, root=tmp_path)
    assert "not writable" in str(caught.value) and paths.DATA_ENV in str(caught.value)


def test_damaged_extracted_file_is_explained(tmp_path, offline):
    _stage(tmp_path)
    data.mnist(train=False, root=tmp_path)  # extracts all four
    (_raw(tmp_path) / "t10k-images-idx3-ubyte").write_bytes(b"\0" * 64)
    with pytest.raises(data.MNISTUnavailableError, match="extracted file is damaged"):
        data.mnist(train=False, root=tmp_path)


def test_tensors_can_go_to_float64():
    images, labels = mnist_tensors(train=False, dtype=torch.float64)
    assert images.dtype == torch.float64 and labels.dtype == torch.int64

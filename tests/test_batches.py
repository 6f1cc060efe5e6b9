"""The in-memory batches are the DataLoader's batches, bit for bit, in every epoch."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from mnistbook import batches, data, seeding


def epochs_of(source, epochs: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Every batch of ``epochs`` full passes over ``source``."""
    return [list(source) for _ in range(epochs)]


def assert_same_epochs(got, expected) -> None:
    for epoch, (ours, theirs) in enumerate(zip(got, expected, strict=True), start=1):
        assert len(ours) == len(theirs), (
            f"epoch {epoch}: {len(ours)} != {len(theirs)} batches"
        )
        for step, ((a, b), (c, d)) in enumerate(zip(ours, theirs), start=1):
            assert torch.equal(a, c) and torch.equal(b, d), (
                f"epoch {epoch}, batch {step} differs"
            )


@pytest.mark.parametrize("n, batch_size", [(20, 4), (21, 4), (20, 3), (7, 8), (5, 1)])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_three_epochs_equal_torchs_dataloader(n, batch_size, num_workers):
    images = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    labels = torch.arange(n) % 10
    loader = DataLoader(
        TensorDataset(images, labels),
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        generator=seeding.generator(7),
    )
    memory = batches.InMemoryBatches(
        images, labels, batch_size, generator=seeding.generator(7)
    )
    assert_same_epochs(epochs_of(memory, 3), epochs_of(loader, 3))


def test_the_end_of_epoch_draw_is_what_makes_later_epochs_equal():
    """Without RandomSampler's empty last randperm, epoch 2 would already differ."""
    images, labels = torch.arange(20.0).unsqueeze(1), torch.arange(20)
    loader = DataLoader(
        TensorDataset(images, labels),
        batch_size=4,
        shuffle=True,
        generator=seeding.generator(7),
    )
    memory = batches.InMemoryBatches(images, labels, 4, generator=seeding.generator(7))
    memory._sampler_runs_dry = lambda: (
        None
    )  # the draw the original in-memory batches missed
    first, second = epochs_of(memory, 2)
    expected_first, expected_second = epochs_of(loader, 2)
    assert_same_epochs([first], [expected_first])
    assert not all(torch.equal(a, c) for (a, _), (c, _) in zip(second, expected_second))


def test_two_full_epochs_on_mnist_equal_the_dataloader(train_tensors):
    images, labels = train_tensors
    loader = batches.seeded_loader(
        TensorDataset(images, labels), batch_size=4, num_workers=0, seed=3
    )
    memory = batches.InMemoryBatches(images, labels, 4, generator=seeding.generator(3))
    for epoch in range(2):
        ours, theirs = list(memory), list(loader)
        assert len(ours) == len(theirs) == len(images) // 4
        for name, position in (("images", 0), ("labels", 1)):
            assert torch.equal(
                torch.cat([b[position] for b in ours]),
                torch.cat([b[position] for b in theirs]),
            ), f"epoch {epoch + 1}: the {name} differ"


@pytest.mark.parametrize("num_workers", [0, 2])
def test_transformed_samples_equal_the_in_memory_tensors(test_tensors, num_workers):
    """The DataLoader over torchvision's MNIST (PIL image, ToTensor, Normalize) gives the same
    first batches as the in-memory tensors: the same values, bit for bit."""
    images, labels = test_tensors
    loader = batches.seeded_loader(
        data.mnist(train=False), batch_size=4, num_workers=num_workers, seed=7
    )
    memory = batches.InMemoryBatches(
        images, labels, batch_size=4, generator=seeding.generator(7)
    )
    for step, ((a, b), (c, d)) in enumerate(zip(loader, memory)):
        assert torch.equal(a, c) and torch.equal(b, d)
        if step == 300:
            break


def test_same_permutation_same_batches_including_the_last_short_one(test_tensors):
    images, labels = test_tensors
    memory = batches.InMemoryBatches(
        images[:10], labels[:10], batch_size=4, shuffle=False
    )
    loader = DataLoader(TensorDataset(images[:10], labels[:10]), batch_size=4)
    got = list(memory)
    assert [len(x) for x, _ in got] == [4, 4, 2] and len(memory) == 3
    assert_same_epochs([got], [list(loader)])


def test_every_sample_once_per_epoch(test_tensors):
    images, labels = test_tensors
    memory = batches.InMemoryBatches(
        images, labels, batch_size=64, generator=seeding.generator()
    )
    seen = torch.cat([y for _, y in memory])
    assert torch.equal(seen.sort().values, labels.sort().values)


def test_bad_arguments_are_refused(test_tensors):
    images, labels = test_tensors
    with pytest.raises(ValueError, match="10000 images but 9999 labels"):
        batches.InMemoryBatches(images, labels[:-1], 4, generator=seeding.generator())
    with pytest.raises(ValueError, match="needs a generator"):
        batches.InMemoryBatches(images, labels, 4)
    with pytest.raises(ValueError, match="batch_size must be ≥ 1"):
        batches.InMemoryBatches(images, labels, 0, generator=seeding.generator())

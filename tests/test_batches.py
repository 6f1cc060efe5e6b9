"""The in-memory batches are the DataLoader's batches, bit for bit, only faster."""

import itertools

import pytest
import torch
from mnistbook import batches, data, seeding


@pytest.mark.parametrize("num_workers", [0, 2])
def test_fast_path_yields_exactly_the_dataloader_batches(test_tensors, num_workers):
    images, labels = test_tensors
    loader = batches.seeded_loader(data.mnist(train=False), batch_size=4, num_workers=num_workers,
                                   seed=7)
    memory = batches.InMemoryBatches(images, labels, batch_size=4, generator=seeding.generator(7))
    for _ in range(2):  # the second epoch checks that both advance their generators alike
        for (a, b), (c, d) in itertools.islice(zip(loader, memory), 300):
            assert torch.equal(a, c) and torch.equal(b, d)


def test_same_permutation_same_batches_including_the_last_short_one(test_tensors):
    images, labels = test_tensors
    memory = batches.InMemoryBatches(images[:10], labels[:10], batch_size=4, shuffle=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images[:10], labels[:10]),
                                         batch_size=4)
    got = list(memory)
    assert [len(x) for x, _ in got] == [4, 4, 2] and len(memory) == 3
    for (a, b), (c, d) in zip(got, loader):
        assert torch.equal(a, c) and torch.equal(b, d)


def test_every_sample_once_per_epoch(test_tensors):
    images, labels = test_tensors
    memory = batches.InMemoryBatches(images, labels, batch_size=64, generator=seeding.generator())
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

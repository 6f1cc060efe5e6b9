"""Scratch and torch, from identical weights on identical batches, step for step."""

import torch
from mnistbook import batches, lockstep, seeding
from mnistbook.training import RECIPE


def run(train_tensors, dtype, steps=1000):
    images, labels = train_tensors
    torch_net, scratch_net = lockstep.twin_nets(seed=seeding.SEED, dtype=dtype)
    assert lockstep.max_weight_difference(torch_net, scratch_net) == 0
    source = batches.InMemoryBatches(images.to(dtype), labels, RECIPE.batch_size,
                                     generator=seeding.generator())
    return lockstep.run_lockstep(torch_net, scratch_net, source, steps=steps)  # the recipe's SGD


def test_float32_weights_agree_to_1e6_over_1000_steps(train_tensors):
    record = run(train_tensors, torch.float32)
    assert len(record.weight_difference) == 1000
    assert max(record.weight_difference) < 1e-6


def test_float64_weights_agree_to_1e12_over_1000_steps(train_tensors):
    record = run(train_tensors, torch.float64)
    assert max(record.weight_difference) < 1e-12
    assert max(abs(a - b) for a, b in zip(record.torch_losses, record.scratch_losses)) < 1e-12

"""Scratch and torch, from identical weights on identical batches, step for step."""

import torch

from mnistbook import batches, lockstep, seeding
from mnistbook.training import RECIPE


def run(train_tensors, dtype, steps=1000):
    images, labels = train_tensors
    torch_net, scratch_net = lockstep.twin_nets(seed=seeding.SEED, dtype=dtype)
    assert lockstep.max_weight_difference(torch_net, scratch_net) == 0
    source = batches.InMemoryBatches(
        images.to(dtype), labels, RECIPE.batch_size, generator=seeding.generator()
    )
    # the recipe's SGD
    return lockstep.run_lockstep(torch_net, scratch_net, source, steps=steps)


def test_float32_weights_agree_to_1e6_over_1000_steps(train_tensors):
    record = run(train_tensors, torch.float32)
    assert len(record.weight_difference) == 1000
    assert max(record.weight_difference) < 1e-6


def test_float64_weights_agree_to_1e12_over_1000_steps(train_tensors):
    record = run(train_tensors, torch.float64)
    assert max(record.weight_difference) < 1e-12
    assert (
        len(record.relu_disagreements) == 1000 and record.first_disagreement() is None
    )
    assert (
        max(abs(a - b) for a, b in zip(record.torch_losses, record.scratch_losses))
        < 1e-12
    )


def test_steps_of_the_record_count_from_one():
    record = lockstep.Lockstep(
        weight_difference=[0.0, 1e-7, 3e-6, 1e-3], relu_disagreements=[0, 0, 2, 5]
    )
    assert record.first_disagreement() == 3
    assert record.first_step_above(1e-6) == 3
    assert record.first_step_above(1e-2) is None


def test_the_relu_masks_are_those_of_the_torch_net_and_the_hooks_go_away():
    torch_net, _ = lockstep.twin_nets(seed=0)
    x = torch.randn(5, 784)
    with lockstep.relu_masks(torch_net) as masks:
        torch_net(x)
        assert torch.equal(masks["fc1"], torch_net.fc1(x) > 0)
        assert torch.equal(
            masks["fc2"], torch_net.fc2(torch.relu(torch_net.fc1(x))) > 0
        )
    assert not torch_net.fc1._forward_hooks and not torch_net.fc2._forward_hooks


def test_the_twins_first_round_differently_in_the_loss_gradient(train_tensors):
    """What training-scratch's In-depth section relies on: the forward passes, and the backward
    passes from one and the same ∂L/∂logits, agree to the bit; only the loss's gradient differs,
    by float32 rounding."""
    images, labels = train_tensors
    twins = lockstep.twin_nets(seed=seeding.SEED)
    stages = lockstep.first_step_differences(*twins, images[:4], labels[:4])
    assert stages["logits"] == (0, 40, 0.0)
    assert stages["∂L/∂θ from the same ∂L/∂logits"][::2] == (0, 0.0)
    differ, entries, largest = stages["∂L/∂logits"]
    assert entries == 40 and 0 < largest < 1e-6, stages

"""Train a PyTorch ``Net`` and a scratch ``Net`` side by side and measure how far apart
they drift."""

import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from . import scratch
from .model import Net
from .training import RECIPE, fit, make_torch_step

#: scratch parameter name → torch parameter name
TORCH_NAMES = {
    f"{layer}.{p}": f"{layer}.{t}"
    for layer in ("fc1", "fc2", "fc3")
    for p, t in (("W", "weight"), ("b", "bias"))
}


def scratch_copy(torch_net: Net) -> scratch.Net:
    """A scratch Net holding copies of ``torch_net``'s weights, in the same dtype and
    device."""
    weight = torch_net.fc1.weight
    twin = scratch.Net(dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        for name, param in twin.parameters.items():
            param.copy_(torch_net.get_parameter(TORCH_NAMES[name]))
    return twin


def twin_nets(seed: int, dtype=torch.float32, device=None) -> tuple[Net, scratch.Net]:
    """A freshly seeded torch Net and a scratch Net with identical weights."""
    torch.manual_seed(seed)
    torch_net = Net().to(dtype=dtype, device=device)
    return torch_net, scratch_copy(torch_net)


def first_step_differences(
    torch_net: Net, scratch_net: scratch.Net, images: torch.Tensor, labels: torch.Tensor
) -> dict[str, tuple[int, int, float]]:
    """Where twins with equal weights first round differently on a batch: for the logits, the
    loss's gradient with respect to them, and the weight gradients backpropagated from one
    and the same such gradient, (entries that differ, entries, largest difference)."""
    logits, ours = torch_net(images), scratch_net.forward(images)
    (upstream,) = torch.autograd.grad(
        torch.nn.functional.cross_entropy(logits, labels), logits, retain_graph=True
    )
    torch_net.zero_grad()
    logits.backward(upstream)
    scratch_net.backward(upstream.clone())
    pairs = weight_pairs(torch_net, scratch_net)
    stages = {
        "logits": [(logits.detach(), ours)],
        "∂L/∂logits": [(upstream, scratch.CrossEntropyLoss().backward(ours, labels))],
        "∂L/∂θ from the same ∂L/∂logits": [
            (a.grad, scratch_net.grads[name])
            for (a, _), name in zip(pairs, scratch_net.parameters)
        ],
    }
    return {
        stage: (
            sum(int((a != b).sum()) for a, b in tensors),
            sum(a.numel() for a, _ in tensors),
            max((a - b).abs().max().item() for a, b in tensors),
        )
        for stage, tensors in stages.items()
    }


def weight_pairs(
    torch_net: Net, scratch_net: scratch.Net
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(torch parameter, scratch parameter) for each of the six weights and biases."""
    return [
        (torch_net.get_parameter(TORCH_NAMES[name]), p)
        for name, p in scratch_net.parameters.items()
    ]


@torch.no_grad()
def max_weight_difference(
    torch_net: Net, scratch_net: scratch.Net, pairs=None
) -> float:
    """max over all parameters and entries of |θ_torch − θ_scratch|."""
    pairs = pairs or weight_pairs(torch_net, scratch_net)
    return torch.stack([(a - b).abs().max() for a, b in pairs]).max().item()


@dataclass
class Lockstep:
    """Per step: both networks' losses, the largest weight difference after the step,
    and the number of hidden units whose ReLU was active in one network and not in the
    other."""

    torch_losses: list = field(default_factory=list)
    scratch_losses: list = field(default_factory=list)
    weight_difference: list = field(default_factory=list)
    relu_disagreements: list = field(default_factory=list)

    def first_disagreement(self) -> int | None:
        """The first step (counted from 1) on which a ReLU decided differently, or
        None."""
        steps = enumerate(self.relu_disagreements, start=1)
        return next((step for step, n in steps if n), None)

    def first_step_above(self, threshold: float) -> int | None:
        """The first step (counted from 1) after which the weights differ by more than
        ``threshold``, or None."""
        steps = enumerate(self.weight_difference, start=1)
        return next((step for step, d in steps if d > threshold), None)


@contextmanager
def relu_masks(torch_net: Net):
    """Inside the block, a dict holding 1[Z > 0] of the torch net's two hidden layers
    from its latest forward pass (forward hooks on fc1 and fc2, removed on exit)."""
    masks: dict[str, torch.Tensor] = {}

    def record(name: str):
        return lambda module, inputs, output: masks.__setitem__(name, output > 0)

    hooks = [
        torch_net.get_submodule(name).register_forward_hook(record(name))
        for name in ("fc1", "fc2")
    ]
    try:
        yield masks
    finally:
        for hook in hooks:
            hook.remove()


def run_lockstep(
    torch_net: Net,
    scratch_net: scratch.Net,
    batches,
    lr: float = RECIPE.lr,
    momentum: float = RECIPE.momentum,
    epochs: int = 1,
    steps: int | None = None,
    log=None,
) -> Lockstep:
    """Step both networks on the same batches with the same SGD settings (the recipe's
    unless given).

    ``steps`` stops after that many batches (with ``epochs=1``); ``log`` prints the
    scratch network's running loss as :func:`~mnistbook.training.fit` does."""
    step_torch = make_torch_step(
        torch_net,
        torch.nn.CrossEntropyLoss(),
        torch.optim.SGD(torch_net.parameters(), lr=lr, momentum=momentum),
    )
    step_scratch = scratch.make_scratch_step(
        scratch_net,
        scratch.CrossEntropyLoss(),
        scratch.SGD(scratch_net.parameters, lr=lr, momentum=momentum),
    )
    record, pairs = Lockstep(), weight_pairs(torch_net, scratch_net)

    def both(images, labels) -> float:
        record.torch_losses.append(step_torch(images, labels))
        loss = step_scratch(images, labels)
        record.weight_difference.append(
            max_weight_difference(torch_net, scratch_net, pairs)
        )
        record.relu_disagreements.append(
            int(
                (torch_masks["fc1"] != (scratch_net.relu1.h > 0)).sum()
                + (torch_masks["fc2"] != (scratch_net.relu2.h > 0)).sum()
            )
        )
        return loss

    source = itertools.islice(batches, steps) if steps else batches
    with relu_masks(torch_net) as torch_masks:
        record.scratch_losses = fit(both, source, epochs=epochs, log=log)
    return record

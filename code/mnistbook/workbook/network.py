"""Check of the whole network: forward against torch, every gradient against autograd, and
``.parameters`` holding the very tensors the layers use (so an optimiser's update reaches them)."""

import torch
import torch.nn.functional as TF

from .probe import Failure, call, checker, compare, describe, error, tensor_like

SHAPES = {"fc1.W": (120, 784), "fc1.b": (120,), "fc2.W": (256, 120), "fc2.b": (256,),
          "fc3.W": (10, 256), "fc3.b": (10,)}


def _reference(p: dict, x):
    h = TF.relu(TF.linear(x.reshape(len(x), -1), p["fc1.W"], p["fc1.b"]))
    h = TF.relu(TF.linear(h, p["fc2.W"], p["fc2.b"]))
    return TF.linear(h, p["fc3.W"], p["fc3.b"])


def _named_tensors(net, attribute: str, after: str) -> dict:
    value = getattr(net, attribute, None)
    if not isinstance(value, dict):
        hint = " (the original notebook's ._grad is called .grads here)" if attribute == "grads" and hasattr(net, "_grad") else ""
        raise Failure(f"net.{attribute} should be a dict {{'fc1.W': tensor, …}}{after}, got {describe(value)}{hint}")
    missing, extra = SHAPES.keys() - value.keys(), value.keys() - SHAPES.keys()
    if missing or extra:
        raise Failure(f"net.{attribute} should have the keys {list(SHAPES)}; missing {sorted(missing)}, "
                      f"unexpected {sorted(extra)}")
    for name, shape in SHAPES.items():
        tensor_like(value[name], f"net.{attribute}['{name}']", shape,
                    transposed_hint="The book stores W as (out, in), like torch.nn.Linear; its gradient has W's shape.")
    return value


@checker
def check_net(cls) -> str:
    """cls() → a 784-120-256-10 ReLU net with forward(x), backward(grad_logits), .parameters, .grads."""
    net = call(f"{getattr(cls, '__name__', 'cls')}()", cls)
    parameters = _named_tensors(net, "parameters", "")
    p64 = {name: t.detach().double() for name, t in parameters.items()}
    dtype = parameters["fc1.W"].dtype
    tolerance = 1e-5 if dtype != torch.float64 else 1e-9
    g = torch.Generator().manual_seed(6)
    for shape in ((3, 1, 28, 28), (1, 784)):
        on = f"for input of shape {shape}"
        x = torch.randn(*shape, generator=g, dtype=torch.float64)
        logits = tensor_like(call("forward(x)", net.forward, x.to(dtype)), f"forward(x) {on}", (shape[0], 10), dtype)
        compare(logits.double(), _reference(p64, x), "forward(x)", on=on, tolerance=tolerance)
        G = torch.randn(shape[0], 10, generator=g, dtype=torch.float64)
        call("backward(grad_logits)", net.backward, G.to(dtype))
        grads = _named_tensors(net, "grads", " after backward()")
        leaves = {name: t.clone().requires_grad_(True) for name, t in p64.items()}
        expected = dict(zip(leaves, torch.autograd.grad((G * _reference(leaves, x)).sum(), list(leaves.values()))))
        wrong = {name for name in SHAPES if error(grads[name], expected[name]) >= tolerance}
        if wrong == {"fc1.W", "fc1.b"}:
            raise Failure(f"fc1's gradients are off {on} while fc2's and fc3's are right: the first layer's "
                          "backward went through the wrong ReLU mask — is one ReLU shared by two layers, or "
                          "relu2 used where relu1 belongs?", "bug-shared-relu", "network")
        if wrong and "fc3.W" not in wrong and "fc3.b" not in wrong:
            raise Failure(f"the gradients of {sorted(wrong)} are off {on} while fc3's are right: below the top "
                          "layer each backward must receive the gradient the layer above returned, not that "
                          "layer's input or output (the original notebook passes z on)", "bug-activations", "network")
        for name in SHAPES:
            compare(grads[name].double(), expected[name], f"net.grads['{name}']", on=on, tolerance=tolerance)
    # the parameters must be the layers' own tensors: an in-place change must change the logits
    x = torch.randn(2, 784, generator=g, dtype=dtype)
    before = call("forward(x)", net.forward, x).detach().clone()
    with torch.no_grad():
        parameters["fc3.b"].add_(1.0)
        after = call("forward(x)", net.forward, x).detach().clone()
        parameters["fc3.b"].sub_(1.0)
    if not torch.allclose(after - before, torch.ones_like(before), atol=1e-4):
        raise Failure("adding 1 to net.parameters['fc3.b'] in place did not add 1 to the logits: the dict holds "
                      "copies, not the tensors the layers use, so an optimiser's update would never reach "
                      "the network", "scratch-network")
    return ("forward matches torch for (B, 1, 28, 28) and (B, 784) input, B = 3 and 1; every gradient "
            "matches autograd; .parameters are the layers' own tensors")

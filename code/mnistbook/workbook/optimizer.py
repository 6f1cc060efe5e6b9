"""Check of the optimiser: several steps against ``torch.optim.SGD`` fed the same gradients, the
update done in place. Shadow optimisers with a known mistake (ascent, no momentum, dampening,
Nesterov) predict what each mistake would produce, so a mismatch can be named."""

import torch

from .probe import Failure, call, checker, compare, matches

LR = 0.1
MISTAKES = {
    "it moves up the gradient, θ + η v: gradient ascent, as the original notebook's `+=` does. "
    "Step against it: θ ← θ − η v": (dict(maximize=True), ("bug-ascent", "optimiser")),
    "momentum is ignored: it is plain SGD, θ ← θ − η g; keep a buffer v ← μ v + g for each parameter":
        (dict(momentum=0.0), ("momentum", "optimiser")),
    "the momentum is dampened, v ← μ v + (1 − μ) g; torch's rule, and the book's, adds the gradient "
    "whole: v ← μ v + g": (dict(dampening="momentum"), ("momentum", "optimiser")),
    "it is Nesterov momentum; the book uses the plain rule v ← μ v + g, θ ← θ − η v":
        (dict(nesterov=True), ("momentum", "optimiser")),
}


def _torch_sgd(start: dict, mu: float, **options) -> tuple[dict, torch.optim.SGD | None]:
    """torch's SGD on copies of ``start``, with momentum ``mu`` unless ``options`` say otherwise."""
    params = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    if options.get("dampening") == "momentum":
        options["dampening"] = mu
    if options.get("nesterov") and not mu:
        return params, None  # torch refuses Nesterov without momentum
    options = {"momentum": mu, **options}
    return params, torch.optim.SGD(params.values(), lr=LR, **options)


@checker
def check_sgd(cls) -> str:
    """cls(parameters, lr, momentum) with step(grads) updating the parameter tensors in place."""
    g = torch.Generator().manual_seed(7)
    for momentum in (0.9, 0.0):
        start = {"fc.W": torch.randn(3, 4, generator=g, dtype=torch.float64),
                 "fc.b": torch.randn(3, generator=g, dtype=torch.float64)}
        parameters = {k: v.clone() for k, v in start.items()}
        tensors = dict(parameters)  # the objects a network's layers would hold
        reference, optimizer = _torch_sgd(start, momentum)
        shadows = {m: (_torch_sgd(start, momentum, **opts), hints) for m, (opts, hints) in MISTAKES.items()}
        sgd = call(f"{getattr(cls, '__name__', 'cls')}(parameters, lr={LR}, momentum={momentum})",
                   cls, parameters, LR, momentum)
        for step in range(1, 5):
            grads = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in start.items()}
            call("step(grads)", sgd.step, grads)
            for params, opt in [(reference, optimizer)] + [s for s, _ in shadows.values()]:
                if opt is not None:
                    for k, p in params.items():
                        p.grad = grads[k].clone()
                    opt.step()
            on = f"after step {step} with momentum {momentum}"
            for k in start:
                expected = reference[k].detach()
                if parameters.get(k) is not tensors[k] or torch.equal(tensors[k], start[k]) and not torch.equal(expected, start[k]):
                    moved = parameters.get(k) is not tensors[k] and matches(parameters[k], expected)
                    raise Failure(f"the tensor parameters['{k}'] was not changed in place {on}"
                                  + (" (the dict now holds a new tensor with the right values)" if moved else "")
                                  + ": a step written θ = θ − η v makes a new tensor, and the network's layers keep "
                                  "the old one. Change it in place: θ -= η v, or θ.add_(v, alpha=-η)", "optimiser")
                compare(tensors[k], expected, f"parameters['{k}']", on=on, mistakes={
                    m: (params[k].detach(), hints) for m, ((params, opt), hints) in shadows.items()
                    if opt is not None and not (momentum == 0 and "momentum" in hints)})
    return "4 steps match torch.optim.SGD with momentum 0.9 and 0, updated in place"

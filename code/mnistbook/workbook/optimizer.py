"""Check of the optimiser: several steps against the book's update rule, fed the same gradients,
the update done in place.

The learner's whole trajectory is recorded first and judged afterwards, against the trajectories
that known mistakes would follow on the same gradients: two mistakes that agree on one step (a
first step that adds the gradient twice, and Nesterov momentum) part at the next, so the one the
learner made can be named.
"""

import itertools

import torch
from torch import Tensor

from . import links
from .probe import (
    Failure,
    Mistake,
    call,
    changed,
    compare,
    describe,
    generator,
    matches,
    snapshot,
)
from .registry import exercise

LR = (
    0.05  # apart from 1 − μ = 0.1, so that a dampened buffer and η applied twice differ
)
STEPS = 4

ASCENT = Mistake(
    "it moves up the gradient, θ + η v: gradient ascent, as the original notebook's `+=` does. "
    "Step against it: θ ← θ − η v",
    (links.BUG_ASCENT, links.OPTIMISER),
)
NOTEBOOK_UPDATE = Mistake(
    "it is the original notebook's update, θ ← θ + η g: gradient ascent, and no "
    "momentum. Step against the gradient, θ ← θ − η v, with the buffer v ← μ v + g",
    (links.BUG_ASCENT, links.MOMENTUM, links.OPTIMISER),
)
NO_MOMENTUM = Mistake(
    "momentum is ignored: it is plain SGD, θ ← θ − η g; keep a buffer v ← μ v + g for each "
    "parameter",
    (links.MOMENTUM, links.OPTIMISER),
)
DAMPENED = Mistake(
    "the momentum is dampened, v ← μ v + (1 − μ) g; torch's rule, and the book's, adds the "
    "gradient whole: v ← μ v + g",
    (links.MOMENTUM, links.OPTIMISER),
)
NESTEROV = Mistake(
    "it is Nesterov momentum, θ ← θ − η (g + μ v); the book uses the plain rule v ← μ v + g, "
    "θ ← θ − η v",
    (links.MOMENTUM, links.OPTIMISER),
)
LR_TWICE = Mistake(
    "the learning rate is applied twice: the buffer takes η g (v ← μ v + η g) and the step "
    "multiplies by η again. Use η once: v ← μ v + g, θ ← θ − η v (or v ← μ v + η g, θ ← θ − v)",
    (links.MOMENTUM, links.OPTIMISER),
)
FIRST_STEP_TWICE = Mistake(
    "the first step adds the gradient twice: the buffer starts as g and is then also "
    "updated, v = μ g + g. On the first step v = g; from the second on, v ← μ v + g",
    (links.MOMENTUM, links.OPTIMISER),
)
ALIASED_BUFFER = Mistake(
    "the momentum buffer is the gradient tensor itself (v = g, with no copy), so the in-place update "
    "v.mul_(μ).add_(g) writes into a gradient the caller handed in. Start the buffer as a copy: "
    "v = g.clone()",
    (links.OPTIMISER,),
)
CHANGED_GRADIENTS = Mistake(
    "a step must leave the gradients it is handed as they are (the caller may use them again): "
    "compute into new tensors (η * g, not g.mul_(η)), or clone first",
    (links.OPTIMISER,),
)
NO_UPDATE = Mistake(
    "step(grads) did not change the parameter at all: every step must update every "
    "parameter, θ ← θ − η v",
    (links.OPTIMISER,),
)
REBOUND = Mistake(
    "a step written θ = θ − η v makes a new tensor and puts it in the dict, while the "
    "network's layers keep the old one. Change the tensor in place: θ -= η v, or "
    "θ.add_(v, alpha=-η)",
    (links.OPTIMISER,),
)
FIXED_MOMENTUM = Mistake(
    "the momentum handed in is not used: with momentum 0 the steps still carry a buffer with "
    "μ = 0.9. Keep the argument (self.momentum = momentum) and use it",
    (links.OPTIMISER,),
)
FIRST_STEP_FORGOTTEN = Mistake(
    "the first step moves by g but leaves the buffer at 0, so the second step forgets the first "
    "gradient: after step 1 the buffer must be v = g, so that step 2 moves by μ g₁ + g₂",
    (links.MOMENTUM, links.OPTIMISER),
)
SHARED_BUFFERS = Mistake(
    "a second optimiser's first step used the first optimiser's buffer: the buffers are shared "
    "between instances (a class attribute, or a mutable default argument?). Make them in "
    "__init__, self.buffers = {}",
    (links.OPTIMISER,),
)


def _trajectory(
    start: dict, gradients: list[dict], mu: float, variant: Mistake | None
) -> list[dict]:
    """The parameters after each step of the book's rule, or of the rule of a known mistake."""
    if variant is FIXED_MOMENTUM:
        mu, variant = 0.9, None
    theta = {k: v.clone() for k, v in start.items()}
    v: dict[str, Tensor] = {}
    states = []
    for t, grads in enumerate(gradients, start=1):
        for k, g in grads.items():
            if variant is NOTEBOOK_UPDATE:
                direction = -g
            elif variant is LR_TWICE:
                v[k] = LR * g if t == 1 else mu * v[k] + LR * g
                direction = v[k]
            elif variant is NO_MOMENTUM or not mu:
                direction = g
            elif (
                variant is DAMPENED
            ):  # as torch's dampening: the first step takes g whole
                v[k] = g.clone() if t == 1 else mu * v[k] + (1 - mu) * g
                direction = v[k]
            elif (
                variant == "moving average"
            ):  # the other dampened buffer: from 0, every step
                v[k] = (1 - mu) * g if t == 1 else mu * v[k] + (1 - mu) * g
                direction = v[k]
            elif variant is FIRST_STEP_TWICE:
                v[k] = (1 + mu) * g if t == 1 else mu * v[k] + g
                direction = v[k]
            elif variant is FIRST_STEP_FORGOTTEN:
                v[k] = torch.zeros_like(g) if t == 1 else mu * v[k] + g
                direction = g if t == 1 else v[k]
            else:
                v[k] = g.clone() if t == 1 else mu * v[k] + g
                direction = g + mu * v[k] if variant is NESTEROV else v[k]
            theta[k] = (
                theta[k] + LR * direction
                if variant is ASCENT
                else theta[k] - LR * direction
            )
        states.append({k: t.clone() for k, t in theta.items()})
    return states


@exercise(
    "workbook-sgd",
    "SGD",
    solution="mnistbook.scratch:SGD",
    contract=(
        "`SGD(parameters, lr, momentum=0.0)` takes the network's parameters — a dict from names to the very "
        "tensors the layers use — the learning rate η and the momentum μ.",
        "`step(grads)` takes a dict of gradients with the same names and updates every parameter tensor in "
        "place: v ← μ v + g (v = g on the first step), θ ← θ − η v. Equivalent forms are accepted, such "
        "as the classical u ← μ u − η g, θ ← θ + u. Only the constructor and `step` are checked: "
        "`direction` and `update` are the book's way of splitting the step, and may be changed or left out.",
        "It leaves the gradients it is handed unchanged, at that step and at every later one.",
        f"Tried in float64 with lr = {LR}: {STEPS} steps with momentum 0.9, one gradient dict handed in at "
        f"two steps in a row, then {STEPS} steps with momentum 0; then two instances, each stepping once.",
    ),
)
def check_sgd(cls) -> str:
    """cls(parameters, lr, momentum) with step(grads) updating the parameter tensors in place."""
    g = generator(7)
    name = getattr(cls, "__name__", "cls")
    for mu in (0.9, 0.0):
        start = {
            "fc.W": torch.randn(3, 4, generator=g, dtype=torch.float64),
            "fc.b": torch.randn(3, generator=g, dtype=torch.float64),
        }
        parameters = {k: v.clone() for k, v in start.items()}
        tensors = dict(parameters)  # the objects a network's layers would hold
        sgd = call(
            f"{name}(parameters, lr={LR}, momentum={mu})", cls, parameters, LR, mu
        )
        gradients, handed, path = [], [], []
        for step in range(1, STEPS + 1):
            on = f"at step {step} with momentum {mu}"
            # the same tensors as at step 2, as a network that reuses them would hand in
            if step == 3:
                grads = gradients[-1]
            else:
                grads = {
                    k: torch.randn(v.shape, generator=g, dtype=torch.float64)
                    for k, v in start.items()
                }
            gradients.append(grads)
            handed.append((grads, snapshot([grads])[0]))
            before = {k: t.clone() for k, t in tensors.items()}
            call("step(grads)", sgd.step, grads, may_change=(0,))
            if changed(*handed[-1]):  # during this very call
                raise Failure(
                    f"step(grads) {on} changed the gradients it was handed: "
                    f"{CHANGED_GRADIENTS.explanation}",
                    mistake=CHANGED_GRADIENTS,
                )
            for when, (earlier, old) in enumerate(handed, start=1):
                if changed(earlier, old):
                    raise Failure(
                        f"step(grads) {on} changed the gradients handed in at step {when}: "
                        f"{ALIASED_BUFFER.explanation}",
                        mistake=ALIASED_BUFFER,
                    )
            for k in start:
                if parameters.get(k) is not tensors[k]:
                    moved = (
                        matches(
                            parameters[k],
                            _trajectory(start, gradients, mu, None)[-1][k],
                        )
                        if isinstance(parameters.get(k), Tensor)
                        else False
                    )
                    raise Failure(
                        f"the tensor parameters['{k}'] was not changed in place {on}"
                        + (
                            " (the dict now holds a new tensor with the right values)"
                            if moved
                            else f" (the dict now holds {describe(parameters.get(k))})"
                        )
                        + f": {REBOUND.explanation}",
                        mistake=REBOUND,
                    )
                if torch.equal(tensors[k], before[k]):
                    raise Failure(
                        f"parameters['{k}'] {on}: {NO_UPDATE.explanation}",
                        mistake=NO_UPDATE,
                    )
            path.append({k: t.clone() for k, t in tensors.items()})
        _judge(path, start, gradients, mu)
    _two_instances(cls, name, g)
    return (
        f"{STEPS} steps match the book's rule with momentum 0.9 and 0, updated in place"
    )


_TRIES = itertools.count(1)


def _two_instances(cls, name: str, g: torch.Generator) -> None:
    """Failure unless a second optimiser starts afresh after a first one has stepped."""
    mu = 0.9
    # a name no earlier optimiser has seen, so that buffers shared between instances hold
    # exactly the first optimiser's, even when the check runs again in the same process
    key = f"fc{next(_TRIES)}.W"

    def draw() -> dict:
        return {key: torch.randn(3, 4, generator=g, dtype=torch.float64)}

    starts, grads = [draw(), draw()], [draw(), draw()]
    parameters = [{k: v.clone() for k, v in s.items()} for s in starts]
    first, second = (
        call(f"{name}(parameters, lr={LR}, momentum={mu})", cls, p, LR, mu)
        for p in parameters
    )
    call("the first optimiser's step(grads)", first.step, grads[0], may_change=(0,))
    call("the second optimiser's step(grads)", second.step, grads[1], may_change=(0,))
    theta, g0, g1 = starts[1][key], grads[0][key], grads[1][key]
    compare(
        parameters[1][key],
        theta - LR * g1,
        "the parameter of a second optimiser after its first step",
        on=f"(momentum {mu}, a first optimiser having stepped before it)",
        mistakes={SHARED_BUFFERS: theta - LR * (mu * g0 + g1)},
    )


def _judge(path: list[dict], start: dict, gradients: list[dict], mu: float) -> None:
    """Failure unless ``path`` follows the book's rule; names the mistake whose whole trajectory
    it follows, if one does."""
    correct = _trajectory(start, gradients, mu, None)
    mistakes = [ASCENT] + (
        [
            NOTEBOOK_UPDATE,
            NO_MOMENTUM,
            DAMPENED,
            NESTEROV,
            LR_TWICE,
            FIRST_STEP_TWICE,
            FIRST_STEP_FORGOTTEN,
        ]
        if mu
        else [LR_TWICE, FIXED_MOMENTUM]
    )
    # each mistake's trajectories: a dampened buffer may start from g, or from 0
    variants = {
        m: [m] + (["moving average"] if m is DAMPENED else []) for m in mistakes
    }
    followed = {
        m: [_trajectory(start, gradients, mu, v) for v in vs]
        for m, vs in variants.items()
    }

    def follows(states: list[dict]) -> bool:
        return all(matches(s[j], states[i][j]) for i, s in enumerate(path) for j in s)

    for step, (state, expected) in enumerate(zip(path, correct), start=1):
        for k in state:
            if matches(state[k], expected[k]):
                continue
            whole = {
                m: next(states for states in paths if follows(states))
                for m, paths in followed.items()
                if any(follows(states) for states in paths)
            }
            compare(
                state[k],
                expected[k],
                f"parameters['{k}']",
                on=f"after step {step} with momentum {mu}",
                mistakes={m: states[step - 1][k] for m, states in whole.items()},
            )

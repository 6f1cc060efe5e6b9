"""Check of the training step: first three steps against the book's on random batches (fast),
then the recipe of the book on MNIST, which must reach the book's accuracy band."""

import math
import time

import torch

from .. import scratch, seeding, training
from ..batches import InMemoryBatches, mnist_tensors
from . import links
from .probe import Failure, Mistake, call, compare, error, generator
from .registry import exercise

#: The accuracy the recipe must reach on the test set, in percent; the book's own run of the
#: recipe is above it (``tests/test_workbook_pages.py`` runs the solution to show it).
ACCURACY_BAND = 95.0

#: Seconds the whole training check may take: the book's step trains the recipe's two epochs in
#: about a minute on one CPU core.
TRAINING_LIMIT = 900.0


LOSS_NOT_A_FLOAT = Mistake(
    "step(images, labels) should return the batch's loss as a Python float, "
    "loss.item(), for the training log",
    (links.TRAINING_STEP,),
)
LOSS_DIVIDED_AGAIN = Mistake(
    "the criterion already returns the mean over the batch; return loss.item() as it is",
    (links.MEAN, links.TRAINING_STEP),
)
STEP_WITHOUT_UPDATE = Mistake(
    "the parameters did not change: a step ends with the optimiser's update, "
    "optimizer.step(net.grads)",
    (links.TRAINING_STEP,),
)
LOGITS_FOR_GRADIENT = Mistake(
    "net.backward was handed the logits where it takes their gradient, "
    "criterion.backward(logits, labels)",
    (links.BUG_ACTIVATIONS, links.TRAINING_STEP),
)
PARAMETERS_FOR_GRADIENTS = Mistake(
    "the optimiser was handed the parameters where it takes their gradients, "
    "optimizer.step(net.grads)",
    (links.TRAINING_STEP,),
)
TWO_UPDATES = Mistake(
    "the optimiser's update ran twice in one step: a step calls optimizer.step(net.grads) once",
    (links.TRAINING_STEP,),
)
GRADIENT_OF_SUM = Mistake(
    "net.backward was handed B times the loss's gradient, the gradient of the summed loss: "
    "criterion.backward already returns (P − Y)/B, the gradient of the mean the step reports",
    (links.BUG_NOT_DIVIDED, links.TRAINING_STEP),
)
PROBABILITIES_FOR_LOGITS = Mistake(
    "criterion.backward was handed probabilities where it takes the logits: it applies the "
    "softmax itself, so hand it net.forward's output as it is",
    (links.TRAINING_STEP,),
)
FRESH_OPTIMISER = Mistake(
    "a new optimiser at every step starts its momentum buffer afresh, so momentum never builds "
    "up: use the optimiser make_scratch_step was handed, at every step",
    (links.MOMENTUM, links.TRAINING_STEP),
)


def _fresh(Net, SGD, CrossEntropyLoss, seed: int):
    torch.manual_seed(seed)
    net = call("Net()", Net)
    optimizer = call(
        "SGD(net.parameters, lr, momentum)",
        SGD,
        net.parameters,
        training.RECIPE.lr,
        training.RECIPE.momentum,
    )
    return net, call("CrossEntropyLoss()", CrossEntropyLoss), optimizer


def _steps_with_mistakes(batches) -> dict:
    """The parameters at the start and after each step of a training step that makes a known
    mistake, from the same start as the book's: the updates the learner's are compared with when
    they are off."""

    def backward(net, criterion, logits, labels):
        net.backward(criterion.backward(logits, labels))

    def logits_handed(net, criterion, optimizer, logits, labels):
        net.backward(logits)
        optimizer.step(net.grads)

    def parameters_handed(net, criterion, optimizer, logits, labels):
        backward(net, criterion, logits, labels)
        optimizer.step(net.parameters)

    def two_updates(net, criterion, optimizer, logits, labels):
        backward(net, criterion, logits, labels)
        optimizer.step(net.grads)
        optimizer.step(net.grads)

    def gradient_of_sum(net, criterion, optimizer, logits, labels):
        net.backward(len(labels) * criterion.backward(logits, labels))
        optimizer.step(net.grads)

    def probabilities_handed(net, criterion, optimizer, logits, labels):
        backward(net, criterion, torch.softmax(logits, dim=1), labels)
        optimizer.step(net.grads)

    def fresh_optimiser(net, criterion, optimizer, logits, labels):
        backward(net, criterion, logits, labels)
        scratch.SGD(net.parameters, optimizer.lr, optimizer.momentum).step(net.grads)

    after = {}
    for mistake, wrong_step in (
        (LOGITS_FOR_GRADIENT, logits_handed),
        (PARAMETERS_FOR_GRADIENTS, parameters_handed),
        (TWO_UPDATES, two_updates),
        (GRADIENT_OF_SUM, gradient_of_sum),
        (PROBABILITIES_FOR_LOGITS, probabilities_handed),
        (FRESH_OPTIMISER, fresh_optimiser),
    ):
        net, criterion, optimizer = _fresh(
            scratch.Net, scratch.SGD, scratch.CrossEntropyLoss, 0
        )
        after[mistake] = [{k: t.clone() for k, t in net.parameters.items()}]
        for images, labels in batches:
            wrong_step(net, criterion, optimizer, net.forward(images), labels)
            after[mistake].append({k: t.clone() for k, t in net.parameters.items()})
    return after


def _three_steps(make_scratch_step) -> None:
    """Three steps with the book's classes, against the book's own step."""
    g = generator(8)
    batches = [
        (
            torch.randn(4, 1, 28, 28, generator=g),
            torch.randint(0, 10, (4,), generator=g),
        )
        for _ in range(3)
    ]
    net, criterion, optimizer = _fresh(
        scratch.Net, scratch.SGD, scratch.CrossEntropyLoss, 0
    )
    book_net, book_criterion, book_optimizer = _fresh(
        scratch.Net, scratch.SGD, scratch.CrossEntropyLoss, 0
    )
    step = call(
        "make_scratch_step(net, criterion, optimizer)",
        make_scratch_step,
        net,
        criterion,
        optimizer,
    )
    book_step = scratch.make_scratch_step(book_net, book_criterion, book_optimizer)
    wrong = _steps_with_mistakes(batches)
    before = {k: t.clone() for k, t in net.parameters.items()}
    book_before = {k: t.clone() for k, t in book_net.parameters.items()}
    for n, (images, labels) in enumerate(batches, start=1):
        loss = call("step(images, labels)", step, images, labels)
        expected = book_step(images, labels)
        if not isinstance(loss, float):
            raise Failure(
                f"{LOSS_NOT_A_FLOAT.explanation}; it returned {type(loss).__name__}",
                mistake=LOSS_NOT_A_FLOAT,
            )
        if not math.isclose(loss, expected, rel_tol=1e-5):
            if math.isclose(loss * len(labels), expected, rel_tol=1e-5):
                raise Failure(
                    f"step {n} returned the loss {loss:.6g}, the batch's loss {expected:.6g} "
                    f"divided by B = {len(labels)}: {LOSS_DIVIDED_AGAIN.explanation}",
                    mistake=LOSS_DIVIDED_AGAIN,
                )
            raise Failure(
                f"step {n} returned the loss {loss:.6g}; the batch's loss before the update is "
                f"{expected:.6g}",
                links.TRAINING_STEP,
            )
        if all(torch.equal(t, before[k]) for k, t in net.parameters.items()):
            raise Failure(
                f"at step {n} {STEP_WITHOUT_UPDATE.explanation}",
                mistake=STEP_WITHOUT_UPDATE,
            )
        for name, tensor in net.parameters.items():
            if error(tensor, book_net.parameters[name]) >= 1e-5:
                # a step moves the parameters little: its update tells the mistakes apart
                compare(
                    tensor - before[name],
                    book_net.parameters[name] - book_before[name],
                    f"the update of net.parameters['{name}']",
                    on=f"at step {n}",
                    tolerance=1e-3,
                    mistakes={
                        m: path[n][name] - path[n - 1][name]
                        for m, path in wrong.items()
                    },
                )
            compare(
                tensor,
                book_net.parameters[name],
                f"net.parameters['{name}']",
                on=f"after step {n}",
                tolerance=1e-5,
            )
        before = {k: t.clone() for k, t in net.parameters.items()}
        book_before = {k: t.clone() for k, t in book_net.parameters.items()}


RECIPE = training.RECIPE


@exercise(
    "workbook-training",
    "make_scratch_step",
    solution="mnistbook.scratch:make_scratch_step",
    time_limit=TRAINING_LIMIT,
    contract=(
        "`make_scratch_step(net, criterion, optimizer)` returns a function `step(images, labels)` that runs "
        "one training step on a mini-batch — forward, loss, backward, the optimiser's update — and returns "
        "the batch's loss before the update as a Python float.",
        "First the check runs three steps of yours beside three of the book's, on random batches of 4, "
        "with the book's Net, SGD and CrossEntropyLoss: the losses and the parameters after each step must "
        "agree.",
        f"Then it trains a fresh network with the recipe — {RECIPE.epochs} epochs of MNIST in batches of "
        f"{RECIPE.batch_size}, lr {RECIPE.lr}, momentum {RECIPE.momentum} — using the classes passed to it "
        f"(the book's by default), and the test accuracy must reach {ACCURACY_BAND:g} %. That takes less than a "
        f"minute on one CPU core; the check stops after {TRAINING_LIMIT / 60:g} minutes.",
    ),
)
def check_training(
    make_scratch_step,
    Net=scratch.Net,
    SGD=scratch.SGD,
    CrossEntropyLoss=scratch.CrossEntropyLoss,
) -> str:
    """make_scratch_step(net, criterion, optimizer) → step(images, labels) → loss; then the recipe on MNIST.

    Net, SGD and CrossEntropyLoss default to the book's; pass yours to train them instead.
    """
    _three_steps(make_scratch_step)
    images, labels = mnist_tensors(train=True)
    test_images, test_labels = mnist_tensors(train=False)
    seeding.seed_everything()
    net, criterion, optimizer = _fresh(Net, SGD, CrossEntropyLoss, seeding.SEED)
    step = call(
        "make_scratch_step(net, criterion, optimizer)",
        make_scratch_step,
        net,
        criterion,
        optimizer,
    )
    batches = InMemoryBatches(
        images, labels, training.RECIPE.batch_size, generator=seeding.generator()
    )
    start = time.perf_counter()
    for epoch in range(training.RECIPE.epochs):
        for n, (x, y) in enumerate(batches, start=1):
            loss = call("step(images, labels)", step, x, y)
            if not math.isfinite(loss):
                raise Failure(
                    f"the loss became {loss} at step {n} of epoch {epoch + 1}: a NaN guard stops here. "
                    "Check the softmax for overflow and the learning rate",
                    links.BUG_UNSHIFTED,
                )
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logits = torch.cat(
            [
                call("net.forward(x)", net.forward, test_images[i : i + 1000])
                for i in range(0, len(test_images), 1000)
            ]
        )
    accuracy = 100.0 * (logits.argmax(1) == test_labels).double().mean().item()
    recipe = (
        f"{training.RECIPE.epochs} epochs of batches of {training.RECIPE.batch_size}, lr {training.RECIPE.lr}, "
        f"momentum {training.RECIPE.momentum}"
    )
    if accuracy < ACCURACY_BAND:
        raise Failure(
            f"after {recipe} the test accuracy is {accuracy:.2f} %, below the book's band "
            f"(≥ {ACCURACY_BAND:g} %); the loss of the last step was {loss:.3f}",
            links.TRAINING_STEP,
        )
    return (
        f"{accuracy:.2f} % test accuracy after {recipe} ({seconds:.0f} s of training)"
    )

"""The original notebook's from-scratch code fails where the book says it does."""

from mnistbook import original


def test_each_step_of_the_notebook_fails_as_the_book_says(real_batch):
    images, labels = real_batch
    outcome = original.run_as_written(images.float()[:4], labels[:4])
    assert outcome["NLLLoss()(outputs, labels)"].startswith(
        "TypeError: NLLLoss.__call__() takes 2 positional arguments but 3 were given")
    assert outcome["Net() over the Linear skeleton"] == (
        "AttributeError: 'Linear' object has no attribute 'W'")
    assert outcome["net.backward(dz)"] == (
        "ValueError: Linear.backward: grad_out must have shape (4, 256), got (4, 10)")
    assert outcome["optimizer.step(net._grad)"] == "TypeError: 'dict' object is not callable"


def test_the_notebooks_forward_runs_once_its_layers_are_filled_in(real_batch):
    images, _ = real_batch
    assert tuple(original.Net()(images.float()).shape) == (32, 10)

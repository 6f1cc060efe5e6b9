"""The gradient checker itself: it must pass right gradients and fail wrong ones."""

import torch

from mnistbook import gradcheck


def test_relative_error_and_verdicts():
    a = torch.tensor([1.0, 2.0])
    assert gradcheck.relative_error(a, a) == 0
    assert gradcheck.relative_error(torch.zeros(2), torch.zeros(2)) == 0
    assert abs(gradcheck.relative_error(a, 2 * a) - 0.5) < 1e-15
    assert gradcheck.verdict(1e-9) == "good" and gradcheck.verdict(1e-5).startswith(
        "acceptable"
    )
    assert gradcheck.verdict(1e-3) == "suspicious" and gradcheck.verdict(0.5) == "WRONG"


def test_finite_differences_of_a_known_function_restore_the_input():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    before = x.clone()
    numeric = gradcheck.finite_differences(lambda: (x**3).sum(), x, torch.arange(3))
    torch.testing.assert_close(numeric, 3 * before**2, rtol=1e-9, atol=0)
    assert torch.equal(x, before)


def test_a_wrong_gradient_is_reported_wrong():
    x = torch.randn(5, dtype=torch.float64)
    checks = gradcheck.check_gradients(
        {"x": 3 * x},
        lambda x: (x**2).sum(),
        lambda: (x**2).sum(),
        {"x": x},
        samples=None,
    )
    assert (
        checks[0].vs_autograd > gradcheck.WRONG
        and checks[0].vs_finite_differences > gradcheck.WRONG
    )
    assert "WRONG" in gradcheck.report(checks)
    right = gradcheck.check_gradients(
        {"x": 2 * x},
        lambda x: (x**2).sum(),
        lambda: (x**2).sum(),
        {"x": x},
        samples=None,
    )
    assert right[0].worst < gradcheck.GOOD


def test_the_norm_wise_error_is_bounded_by_the_largest_entry_wise_one():
    generator = torch.Generator().manual_seed(0)
    for _ in range(100):
        a = torch.randn(50, generator=generator, dtype=torch.float64)
        b = a + 0.1 * torch.randn(50, generator=generator, dtype=torch.float64)
        error, r = gradcheck.relative_error(a, b), gradcheck.largest_entry_error(a, b)
        assert error <= 2**0.5 * r
        assert r >= 1 or error <= r / (1 - r)
    assert (
        gradcheck.largest_entry_error(
            torch.tensor([0.0, 2.0]), torch.tensor([0.0, 1.0])
        )
        == 0.5
    )
    assert gradcheck.largest_entry_error(torch.zeros(3), torch.zeros(3)) == 0.0


def test_a_single_wrong_entry_of_ordinary_size_is_wrong_though_the_norm_hides_it():
    generator = torch.Generator().manual_seed(1)
    grad = torch.randn(120, 784, generator=generator, dtype=torch.float64)
    flipped = grad.clone()
    flipped[3, 5] = -flipped[3, 5]  # one entry of ordinary size, its sign flipped
    assert abs(grad[3, 5]) > grad.abs().median()
    assert (
        gradcheck.relative_error(flipped, grad) < gradcheck.WRONG
    )  # diluted by 94,080 entries
    assert gradcheck.largest_entry_error(flipped, grad) == 2.0
    x = torch.randn(120, 784, generator=generator, dtype=torch.float64)
    [check] = gradcheck.check_gradients(
        {"W": flipped + x},
        lambda W: (grad * W + 0.5 * W**2).sum(),
        lambda: (grad * x + 0.5 * x**2).sum(),
        {"W": x},
        samples=50,
    )
    assert (
        check.vs_autograd < gradcheck.WRONG
        and gradcheck.verdict(check.worst) == "WRONG"
    )


def test_tiny_entries_are_judged_on_what_the_reference_resolves():
    a = torch.tensor([1.0, 1e-12], dtype=torch.float64)
    b = torch.tensor(
        [1.0, 1e-12 + 1e-15], dtype=torch.float64
    )  # 1e-15: a few roundings of 1.0
    assert gradcheck.largest_entry_error(a, b) > gradcheck.WRONG / 100
    assert (
        gradcheck.largest_entry_error(a, b, gradcheck.autograd_floor(b))
        < gradcheck.GOOD
    )

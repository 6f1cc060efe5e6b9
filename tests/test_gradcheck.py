"""The gradient checker itself: it must pass right gradients and fail wrong ones."""

import torch
from mnistbook import gradcheck


def test_relative_error_and_verdicts():
    a = torch.tensor([1.0, 2.0])
    assert gradcheck.relative_error(a, a) == 0
    assert gradcheck.relative_error(torch.zeros(2), torch.zeros(2)) == 0
    assert abs(gradcheck.relative_error(a, 2 * a) - 0.5) < 1e-15
    assert gradcheck.verdict(1e-9) == "good" and gradcheck.verdict(1e-5).startswith("acceptable")
    assert gradcheck.verdict(1e-3) == "suspicious" and gradcheck.verdict(0.5) == "WRONG"


def test_finite_differences_of_a_known_function_restore_the_input():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    before = x.clone()
    numeric = gradcheck.finite_differences(lambda: (x ** 3).sum(), x, torch.arange(3))
    torch.testing.assert_close(numeric, 3 * before ** 2, rtol=1e-9, atol=0)
    assert torch.equal(x, before)


def test_a_wrong_gradient_is_reported_wrong():
    x = torch.randn(5, dtype=torch.float64)
    checks = gradcheck.check_gradients({"x": 3 * x}, lambda x: (x ** 2).sum(),
                                       lambda: (x ** 2).sum(), {"x": x}, samples=None)
    assert checks[0].vs_autograd > gradcheck.WRONG and checks[0].vs_finite_differences > gradcheck.WRONG
    assert "WRONG" in gradcheck.report(checks)
    right = gradcheck.check_gradients({"x": 2 * x}, lambda x: (x ** 2).sum(),
                                      lambda: (x ** 2).sum(), {"x": x}, samples=None)
    assert right[0].worst < gradcheck.GOOD


def test_the_norm_wise_error_is_at_most_root_two_times_the_largest_entry_wise_one():
    generator = torch.Generator().manual_seed(0)
    for _ in range(100):
        a = torch.randn(50, generator=generator, dtype=torch.float64)
        b = a + 0.1 * torch.randn(50, generator=generator, dtype=torch.float64)
        assert gradcheck.relative_error(a, b) <= 2 ** 0.5 * gradcheck.largest_entry_error(a, b)
    assert gradcheck.largest_entry_error(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 1.0])) == 0.5
    assert gradcheck.largest_entry_error(torch.zeros(3), torch.zeros(3)) == 0.0

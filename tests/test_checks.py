import numpy as np
import pytest
import torch

from textimg_lessons.checks import (CheckFailed, check_close, check_dtype, check_gradient, check_raises,
                                    check_shape, numerical_gradient, relative_error, run_check)


def test_check_close_ok_prints(capsys):
    assert check_close("dW", torch.ones(2, 2), torch.ones(2, 2)) == 0.0
    assert "[OK] dW: exact" in capsys.readouterr().out


def test_check_close_names_first_mismatch():
    ref = torch.tensor([[0.1, 0.2, 0.37], [0.4, 0.5, 0.6]])
    mine = ref.clone()
    mine[0, 2] = 0.41
    with pytest.raises(CheckFailed) as e:
        check_close("dW1", mine, ref)
    msg = str(e.value)
    assert "dW1 differs at [0, 2]" in msg and "0.41" in msg and "0.37" in msg and "1 of 6" in msg


@pytest.mark.parametrize("bad, fragment", [
    (None, "forget to `return`"),
    (NotImplemented, "placeholder"),
    ("abc", "not a number"),
    ([[1, 2], [3]], "not a number"),
    ((torch.ones(2), torch.ones(2)), "tuple of 2"),
])
def test_check_close_explains_bad_answers(bad, fragment):
    with pytest.raises(CheckFailed, match=None) as e:
        check_close("x", bad, torch.ones(2))
    assert fragment in str(e.value)


def test_check_close_hints():
    ref = torch.tensor([1.0, -2.0, 3.0])
    with pytest.raises(CheckFailed, match="wrong sign"):
        check_close("g", -ref, ref)
    with pytest.raises(CheckFailed, match="twice"):
        check_close("g", 2 * ref, ref)
    with pytest.raises(CheckFailed, match="transposed"):
        check_close("W", torch.ones(3, 2), torch.ones(2, 3))
    with pytest.raises(CheckFailed, match="NaN at"):
        check_close("g", torch.tensor([1.0, float("nan"), 3.0]), ref)
    with pytest.raises(CheckFailed, match="0.25 x the reference"):
        check_close("g", ref / 4, ref)


def test_check_close_accepts_numpy_and_scalars(capsys):
    check_close("a", np.array([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    check_close("s", 0.5, torch.tensor(0.5))
    check_close("e", torch.empty(0), torch.empty(0))
    check_close("b", torch.tensor([True, False]), torch.tensor([1, 0]))
    assert capsys.readouterr().out.count("[OK]") == 4


def test_shape_and_dtype_checks():
    check_shape("x", torch.zeros(2, 3), (2, 3))
    with pytest.raises(CheckFailed, match=r"shape \(6,\), expected \(2, 3\).*reshape"):
        check_shape("x", torch.zeros(6), (2, 3))
    check_dtype("y", torch.zeros(2, dtype=torch.long), torch.int64)
    with pytest.raises(CheckFailed, match="dtype torch.float32, expected torch.int64"):
        check_dtype("y", torch.zeros(2), torch.int64)
    with pytest.raises(CheckFailed, match="expected a tensor"):
        check_dtype("y", [1, 2], torch.int64)


def test_numerical_gradient_matches_autograd():
    x = torch.randn(3, 4, dtype=torch.float64)
    f = lambda t: (t.sin() * t).sum()
    xg = x.clone().requires_grad_()
    f(xg).backward()
    assert relative_error(numerical_gradient(f, x), xg.grad) < 1e-7
    with pytest.raises(TypeError):
        numerical_gradient(f, [1.0, 2.0])


def test_check_gradient_locates_the_wrong_entry(capsys):
    x = torch.randn(2, 3, dtype=torch.float64)
    f = lambda t: (t ** 2).sum()
    check_gradient("dx", f, x, 2 * x)
    assert "[OK] dx" in capsys.readouterr().out
    wrong = 2 * x
    wrong[1, 2] += 1.0
    with pytest.raises(CheckFailed, match=r"at \[1, 2\].*relative error"):
        check_gradient("dx", f, x, wrong)
    with pytest.raises(CheckFailed, match="shape"):
        check_gradient("dx", f, x, torch.zeros(3, 2))


def test_check_raises_and_run_check():
    def bad(v):
        if v < 0:
            raise ValueError("negative value")
    check_raises("neg", lambda: bad(-1), ValueError, match="negative")
    with pytest.raises(CheckFailed, match="returned normally"):
        check_raises("neg", lambda: bad(1), ValueError)
    with pytest.raises(CheckFailed, match="does not mention"):
        check_raises("neg", lambda: bad(-1), ValueError, match="shape")

    def todo():
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not implemented yet"):
        run_check("f", todo)
    with pytest.raises(CheckFailed, match="ZeroDivisionError"):
        run_check("f", lambda: 1 / 0)
    assert run_check("f", lambda a: a + 1, 1) == 2

"""Check helpers for exercises: they say *where* an answer is wrong and never crash on odd input.

Each check prints a one-line [OK] when the answer is right and raises `CheckFailed` (an AssertionError,
so nbgrader counts it as a failed test) with a message a student can act on when it is not.
Introduced in chapter 0 ("How exercises work") and used by every chapter.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch


class CheckFailed(AssertionError):
    """An exercise answer is not right yet; the message says what differs and where."""


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"a NumPy array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:120]


def _as_tensor(name: str, x, what: str) -> torch.Tensor:
    """Turn an answer into a float64 tensor, or explain why it cannot be one."""
    if x is None:
        raise CheckFailed(f"{name}: {what} is None. Did you forget to `return` it?")
    if x is NotImplemented or x is Ellipsis:
        raise CheckFailed(f"{name}: {what} is {x!r}; replace the placeholder with your code.")
    if isinstance(x, tuple) and what == "your answer" and len(x) > 1:
        raise CheckFailed(f"{name}: your answer is a tuple of {len(x)} items; return only {name}.")
    try:
        t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    except Exception:
        raise CheckFailed(f"{name}: {what} is {_describe(x)}, which is not a number or an array of numbers.") from None
    if t.dtype == torch.bool:
        t = t.to(torch.int64)
    if t.is_complex():
        raise CheckFailed(f"{name}: {what} is complex ({t.dtype}); expected real numbers.")
    return t.cpu().to(torch.float64)


def _fmt_index(flat_index: int, shape) -> str:
    if len(shape) == 0:
        return "(scalar)"
    idx = np.unravel_index(flat_index, tuple(shape))
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def check_shape(name: str, actual, expected_shape) -> None:
    """Fail with both shapes when `actual` does not have `expected_shape`."""
    t = _as_tensor(name, actual, "your answer")
    expected_shape = tuple(expected_shape)
    if tuple(t.shape) != expected_shape:
        hint = ""
        if tuple(reversed(t.shape)) == expected_shape and t.dim() == 2:
            hint = " It looks transposed: check the order of the matmul or add .T."
        elif t.numel() == math.prod(expected_shape):
            hint = " Same number of elements: a reshape or a missing/extra dimension?"
        raise CheckFailed(f"{name}: shape {tuple(t.shape)}, expected {expected_shape}.{hint}")


def check_dtype(name: str, actual, expected_dtype) -> None:
    """Fail when `actual` is not a tensor/array with `expected_dtype` (torch or NumPy dtype)."""
    if not isinstance(actual, (torch.Tensor, np.ndarray)):
        raise CheckFailed(f"{name}: expected a tensor of dtype {expected_dtype}, got {_describe(actual)}.")
    if str(actual.dtype).replace("torch.", "") != str(expected_dtype).replace("torch.", ""):
        raise CheckFailed(f"{name}: dtype {actual.dtype}, expected {expected_dtype}.")


def check_close(name: str, actual, expected, rtol: float = 1e-5, atol: float = 1e-6,
                quiet: bool = False) -> float:
    """Compare an answer with the reference; return the max abs difference.

    On failure the message names the first mismatching position with both values, e.g.
    "dW1 differs at [0, 2]: yours 0.41, expected 0.37 (3 of 6 entries differ; max |diff| 0.04)".
    """
    a = _as_tensor(name, actual, "your answer")
    e = _as_tensor(name, expected, "the reference")
    if a.shape != e.shape:
        if a.numel() == e.numel() == 1:
            a = a.reshape(e.shape)
        else:
            check_shape(name, a, e.shape)
    nan_a, nan_e = torch.isnan(a), torch.isnan(e)
    if (nan_a & ~nan_e).any():
        i = int(torch.nonzero((nan_a & ~nan_e).flatten())[0])
        raise CheckFailed(f"{name}: NaN at {_fmt_index(i, a.shape)} (expected {e.flatten()[i].item():.6g}). "
                          "Look for 0/0, log(0) or an overflow (e.g. exp of a large number).")
    if a.numel() == 0:
        if not quiet:
            print(f"[OK] {name}: empty, as expected")
        return 0.0
    diff = (a - e).abs()
    diff = torch.where(nan_a & nan_e, torch.zeros_like(diff), diff)
    bad = diff > atol + rtol * e.abs()
    max_diff = float(diff.max())
    if bad.any():
        flat = torch.nonzero(bad.flatten()).flatten()
        i = int(flat[0])
        hint = ""
        if torch.allclose(a, -e, rtol=rtol, atol=atol):
            hint = " Every entry has the wrong sign."
        elif e.abs().sum() > 0 and torch.allclose(a, 2 * e, rtol=rtol, atol=atol):
            hint = " Every entry is twice the reference: a factor 2 (or 1/2) is off."
        elif a.dim() >= 1 and a.shape[0] > 1 and e.abs().sum() > 0:
            ratio = (a / e)[e.abs() > atol]
            if len(ratio) and torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-3):
                hint = f" Every entry is {float(ratio[0]):.4g} x the reference: a missing or extra scale factor (batch mean?)."
        raise CheckFailed(f"{name} differs at {_fmt_index(i, a.shape)}: yours {a.flatten()[i].item():.6g}, "
                          f"expected {e.flatten()[i].item():.6g} ({len(flat)} of {a.numel()} entries differ; "
                          f"max |diff| {max_diff:.3g}).{hint}")
    if not quiet:
        kind = "exact" if max_diff == 0 else f"close (max |diff| {max_diff:.2g})"
        print(f"[OK] {name}: {kind}")
    return max_diff


def numerical_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       eps: float = 1e-6) -> torch.Tensor:
    """Central differences of a scalar function f at x (float64): (f(x+eps) - f(x-eps)) / 2eps per entry."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {_describe(x)}")
    x = x.detach().to(torch.float64).clone()
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = float(f(x))
        flat[i] = old - eps
        minus = float(f(x))
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a, b) -> float:
    """max |a - b| / max(|a| + |b|, tiny): ~1e-7 or less means the analytic gradient is right in float64."""
    a = _as_tensor("a", a, "the first value")
    b = _as_tensor("b", b, "the second value")
    return float(((a - b).abs() / (a.abs() + b.abs()).clamp_min(1e-12)).max()) if a.numel() else 0.0


def check_gradient(name: str, f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, analytic,
                   eps: float = 1e-6, tol: float = 1e-5) -> float:
    """Compare an analytic gradient with central differences; report the worst entry by relative error."""
    a = _as_tensor(name, analytic, "your gradient")
    if not isinstance(x, torch.Tensor):
        raise CheckFailed(f"{name}: the point x must be a tensor, got {_describe(x)}.")
    check_shape(name, a, x.shape)
    num = numerical_gradient(f, x, eps)
    rel = ((a - num).abs() / (a.abs() + num.abs()).clamp_min(1e-12))
    rel = torch.where((a - num).abs() < 1e-10, torch.zeros_like(rel), rel)
    worst = int(rel.flatten().argmax()) if rel.numel() else 0
    err = float(rel.flatten()[worst]) if rel.numel() else 0.0
    if err > tol:
        raise CheckFailed(f"{name} disagrees with the numerical gradient at {_fmt_index(worst, x.shape)}: "
                          f"yours {a.flatten()[worst].item():.6g}, numerical {num.flatten()[worst].item():.6g} "
                          f"(relative error {err:.2e} > {tol:.0e}).")
    print(f"[OK] {name}: matches the numerical gradient (max relative error {err:.1e})")
    return err


def check_raises(name: str, fn: Callable, exc_type=Exception, match: str | None = None) -> None:
    """Check that calling fn() raises exc_type (whose message contains `match`, if given)."""
    try:
        fn()
    except exc_type as e:
        if match is not None and match.lower() not in str(e).lower():
            raise CheckFailed(f"{name}: raised {type(e).__name__} as expected, but the message {str(e)!r} "
                              f"does not mention {match!r}.") from None
        print(f"[OK] {name}: raises {type(e).__name__}")
        return
    except Exception as e:
        raise CheckFailed(f"{name}: raised {type(e).__name__}({e}) instead of {exc_type.__name__}.") from None
    raise CheckFailed(f"{name}: should raise {exc_type.__name__} but returned normally.")


def run_check(name: str, fn: Callable, *args, **kwargs):
    """Call a student's function and turn a crash or a placeholder into readable feedback."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{name}: not implemented yet: replace `raise NotImplementedError()` with your code.") from None
    except CheckFailed:
        raise
    except Exception as e:
        raise CheckFailed(f"{name}: your code raised {type(e).__name__}: {e}") from None

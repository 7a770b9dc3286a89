"""Check helpers for exercises: they say *where* an answer is wrong and never crash on odd input.

Each check prints a one-line [OK] when the answer is right and raises `CheckFailed` (an AssertionError,
so nbgrader counts it as a failed test) with a message a student can act on when it is not. A check never
passes an answer that is wrong: NaN or inf count as wrong unless the reference has the same value in the
same place, and a crash inside a student's function (even `sys.exit()`) becomes a failed check.
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


def _plain_tensor(name: str, t: torch.Tensor, what: str) -> torch.Tensor:
    """A tensor whose values can be read: dense, not quantized, not on the meta device."""
    if t.device.type == "meta":
        raise CheckFailed(f"{name}: {what} is a tensor on the 'meta' device: it has a shape "
                          f"{tuple(t.shape)} but no values. Create it with real data (e.g. torch.zeros) "
                          f"instead of device='meta'.")
    if getattr(t, "is_nested", False):
        raise CheckFailed(f"{name}: {what} is a nested tensor; return one ordinary tensor "
                          f"(e.g. torch.stack the pieces).")
    if t.layout != torch.strided:  # sparse COO/CSR/...: compare the values they stand for
        t = t.to_dense()
    if t.is_quantized:
        t = t.dequantize()
    return t


def _as_tensor(name: str, x, what: str) -> torch.Tensor:
    """Turn an answer into a float64 tensor, or explain why it cannot be one."""
    if x is None:
        raise CheckFailed(f"{name}: {what} is None. Did you forget to `return` it?")
    if x is NotImplemented or x is Ellipsis:
        raise CheckFailed(f"{name}: {what} is {x!r}; replace the placeholder with your code.")
    if isinstance(x, tuple) and what == "your answer" and len(x) > 1:
        raise CheckFailed(f"{name}: your answer is a tuple of {len(x)} items; return only {name}.")
    try:
        t = _plain_tensor(name, x.detach(), what) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    except CheckFailed:
        raise
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


def _as_shape(name: str, shape) -> tuple:
    """A shape as a tuple of ints: accepts torch.Size, tuples, lists and a single int."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        return (shape,)
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name}: the expected shape is {shape!r}, which is not a shape; pass one such as "
                          f"(2, 3) or x.shape.") from None
    return out


def _shape_of(name: str, x) -> tuple:
    """The shape of an answer without reading its values (so a meta tensor has one too)."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return tuple(x.shape)
    return tuple(_as_tensor(name, x, "your answer").shape)


def check_shape(name: str, actual, expected_shape) -> None:
    """Fail with both shapes when `actual` does not have `expected_shape`."""
    expected_shape = _as_shape(name, expected_shape)
    if actual is None or isinstance(actual, tuple):
        _as_tensor(name, actual, "your answer")  # None / placeholder / tuple get their own message
    shape = _shape_of(name, actual)
    if shape != expected_shape:
        hint = ""
        if tuple(reversed(shape)) == expected_shape and len(shape) == 2:
            hint = " It looks transposed: check the order of the matmul or add .T."
        elif math.prod(shape) == math.prod(expected_shape):
            hint = " Same number of elements: a reshape or a missing/extra dimension?"
        raise CheckFailed(f"{name}: shape {shape}, expected {expected_shape}.{hint}")


def check_dtype(name: str, actual, expected_dtype) -> None:
    """Fail when `actual` is not a tensor/array with `expected_dtype` (torch or NumPy dtype)."""
    if expected_dtype is None:
        raise CheckFailed(f"{name}: the expected dtype is None; pass one such as torch.float32.")
    if not isinstance(actual, (torch.Tensor, np.ndarray)):
        raise CheckFailed(f"{name}: expected a tensor of dtype {expected_dtype}, got {_describe(actual)}.")
    if str(actual.dtype).replace("torch.", "") != str(expected_dtype).replace("torch.", ""):
        raise CheckFailed(f"{name}: dtype {actual.dtype}, expected {expected_dtype}.")


def _fmt_value(v: float) -> str:
    return f"{v:.6g}"


def _non_finite_problem(name: str, a: torch.Tensor, e: torch.Tensor) -> str | None:
    """A message for the first place where NaN/inf in the answer or the reference do not match, else None.

    Non-finite values are equal only to the same non-finite value: NaN where the reference has NaN,
    +inf where it has +inf. Arithmetic cannot compare them (inf - inf is NaN), so they are matched here."""
    special = ~torch.isfinite(a) | ~torch.isfinite(e)
    same = (torch.isnan(a) & torch.isnan(e)) | (torch.isinf(a) & (a == e))
    wrong = special & ~same
    if not wrong.any():
        return None
    i = int(torch.nonzero(wrong.flatten())[0])
    where, ya, ye = _fmt_index(i, a.shape), a.flatten()[i].item(), e.flatten()[i].item()
    count = f"{int(wrong.sum())} of {a.numel()} entries"
    if math.isnan(ya):
        return (f"{name}: NaN at {where} (expected {_fmt_value(ye)}; {count} wrong). "
                "Look for 0/0, log(0) or an overflow (e.g. exp of a large number).")
    if math.isinf(ya):
        return (f"{name}: {_fmt_value(ya)} at {where} (expected {_fmt_value(ye)}; {count} wrong). An overflow? "
                "Look for exp of a large number, log(0) or a division by a number close to 0.")
    return (f"{name} differs at {where}: yours {_fmt_value(ya)}, expected {_fmt_value(ye)} ({count} wrong; the "
            f"reference is not finite there, so your answer should not be either).")


def _scale_hint(a: torch.Tensor, e: torch.Tensor, atol: float) -> str:
    """A hint only when it is true for every entry: all zeros, the wrong sign, or one common scale factor."""
    if e.abs().max() <= atol:
        return ""  # the reference is (close to) zero everywhere: no factor can explain the difference
    if not a.any():
        return (" Your answer is all zeros: is the result assigned (not left at its initial torch.zeros), "
                "and does the loop that fills it run?")
    r = float((a * e).sum() / (e * e).sum())  # the best single factor (least squares)
    if not torch.allclose(a, r * e, rtol=1e-3, atol=atol) or math.isclose(r, 1.0, rel_tol=1e-3):
        return ""
    if math.isclose(r, -1.0, rel_tol=1e-3):
        return " Every entry has the wrong sign."
    if math.isclose(r, 2.0, rel_tol=1e-3):
        return " Every entry is twice the reference: a factor 2 (or 1/2) is off."
    if math.isclose(r, 0.5, rel_tol=1e-3):
        return " Every entry is half the reference: a factor 2 (or 1/2) is off."
    if int((e.abs() > atol).sum()) < 2:
        return ""  # one number is always some multiple of another: not a finding
    return f" Every entry is {r:.4g} x the reference: a missing or extra scale factor (batch mean?)."


def check_close(name: str, actual, expected, rtol: float = 1e-5, atol: float = 1e-6,
                quiet: bool = False) -> float:
    """Compare an answer with the reference; return the max abs difference.

    On failure the message names the first mismatching position with both values, e.g.
    "dW1 differs at [0, 2]: yours 0.41, expected 0.37 (3 of 6 entries differ; max |diff| 0.04)".
    NaN and inf pass only where the reference has the same value.
    """
    a = _as_tensor(name, actual, "your answer")
    e = _as_tensor(name, expected, "the reference")
    if a.shape != e.shape:
        if a.numel() == e.numel() == 1:
            a = a.reshape(e.shape)
        else:
            check_shape(name, a, e.shape)
    problem = _non_finite_problem(name, a, e)
    if problem:
        raise CheckFailed(problem)
    if a.numel() == 0:
        if not quiet:
            print(f"[OK] {name}: empty, as expected")
        return 0.0
    finite = torch.isfinite(e)  # the non-finite entries already match exactly
    a0, e0 = torch.where(finite, a, 0.0), torch.where(finite, e, 0.0)
    diff = (a0 - e0).abs()
    bad = diff > atol + rtol * e0.abs()
    max_diff = float(diff.max())
    if bad.any():
        flat = torch.nonzero(bad.flatten()).flatten()
        i = int(flat[0])
        hint = _scale_hint(a0[finite], e0[finite], atol)
        raise CheckFailed(f"{name} differs at {_fmt_index(i, a.shape)}: yours {a.flatten()[i].item():.6g}, "
                          f"expected {e.flatten()[i].item():.6g} ({len(flat)} of {a.numel()} entries differ; "
                          f"max |diff| {max_diff:.3g}).{hint}")
    if not quiet:
        kind = "exact" if max_diff == 0 else f"close (max |diff| {max_diff:.2g})"
        print(f"[OK] {name}: {kind}")
    return max_diff


# ---------------------------------------------------------------------------------------------------
# Errors inside a student's code, explained
# ---------------------------------------------------------------------------------------------------
# (fragment of PyTorch's message, what it means for the student): autograd's own wording names its
# internals ("grad_fn", "leaf Variable"); these say what to change.
ERROR_HINTS = [
    ("does not require grad and does not have a grad_fn",
     "the result is not connected to its inputs by autograd, so it does not require grad: check that the "
     "inputs have requires_grad=True and that nothing on the way uses .detach(), .item(), .numpy(), "
     "torch.no_grad() or a new torch.tensor(...); and if your answer differentiates through a gradient "
     "(torch.autograd.grad), pass it create_graph=True."),
    ("One of the differentiated Tensors does not require grad",
     "torch.autograd.grad can only differentiate with respect to tensors that have requires_grad=True: "
     "call .requires_grad_() on that input first."),
    ("appears to not have been used in the graph",
     "a tensor you differentiate with respect to was not used to compute the output: check that the "
     "output is computed from that very tensor (not from a copy)."),
    ("backward through the graph a second time",
     "backward() frees the graph after the first call: run the forward pass again, or pass "
     "retain_graph=True if you really need two backward passes."),
    ("grad can be implicitly created only for scalar outputs",
     "backward() without arguments needs a single number: reduce the output first (.sum() or .mean()), "
     "or pass gradient=... of the output's shape."),
    ("leaf Variable that requires grad is being used in an in-place operation",
     "a tensor with requires_grad=True was changed in place: update it inside `with torch.no_grad():`, "
     "or compute a new tensor (x = x - lr * g) instead of x -= lr * g."),
    ("modified by an inplace operation",
     "an in-place change (+=, x[...] = ..., relu_()) overwrote a value autograd had saved for the backward "
     "pass: write x = x + ... or clone() before changing it."),
    ("Can't call numpy() on Tensor that requires grad",
     "use .detach().numpy() (or do the computation in torch)."),
    ("must match the size of tensor",
     "two tensors' shapes do not line up in an elementwise operation: a value per example of shape (N,) must "
     "be reshaped to broadcast over the other dimensions, e.g. eps.view(-1, 1, 1, 1) for images (N, C, H, W)."),
    ("shapes cannot be multiplied",
     "the inner dimensions of a matrix product differ: check the order of the factors or a missing .T."),
]


def explain_error(e: BaseException) -> str:
    """One line a student can act on for an exception raised by their code (autograd errors explained)."""
    if isinstance(e, SystemExit):
        return (f"your code called sys.exit() or exit() (SystemExit: {e.code!r}); a function should return "
                f"its result, not stop Python.")
    text = f"{type(e).__name__}: {e}".strip()
    for fragment, hint in ERROR_HINTS:
        if fragment.lower() in str(e).lower():
            return f"{text.splitlines()[0]} ({hint})"
    return text


def _call_scalar(name: str, f: Callable, x: torch.Tensor) -> float:
    """f(x) as a float, or a CheckFailed that says why it is not a single number."""
    try:
        value = f(x)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # SystemExit too: report it rather than stop the kernel
        raise CheckFailed(f"{name}: the function being differentiated failed: {explain_error(e)}") from None
    if value is None:
        raise CheckFailed(f"{name}: the function being differentiated returned None; it must return the loss "
                          f"(a single number). Did you forget to `return` it?")
    size = value.numel() if isinstance(value, torch.Tensor) else getattr(value, "size", 1)
    if size != 1:
        raise CheckFailed(f"{name}: the function being differentiated returned {_describe(value)}; a gradient "
                          f"check needs a single number: reduce it with .sum() (or .mean()).")
    try:
        return float(value)
    except Exception:
        raise CheckFailed(f"{name}: the function being differentiated returned {_describe(value)}, "
                          f"not a number.") from None


def numerical_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       eps: float = 1e-6) -> torch.Tensor:
    """Central differences of a scalar function f at x (float64): (f(x+eps) - f(x-eps)) / 2eps per entry."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {_describe(x)}")
    x = _plain_tensor("x", x.detach(), "the point x").to(torch.float64).clone()
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = _call_scalar("numerical gradient", f, x)
        flat[i] = old - eps
        minus = _call_scalar("numerical gradient", f, x)
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a, b) -> float:
    """max |a - b| / max(|a| + |b|, tiny): ~1e-7 or less means the analytic gradient is right in float64."""
    a = _as_tensor("relative_error", a, "the first value")
    b = _as_tensor("relative_error", b, "the second value")
    if a.shape != b.shape and not a.numel() == b.numel() == 1:
        raise CheckFailed(f"relative_error: the two values have shapes {tuple(a.shape)} and {tuple(b.shape)}; "
                          f"compare tensors of the same shape (one of them transposed or missing a dimension?).")
    b = b.reshape(a.shape)
    return float(((a - b).abs() / (a.abs() + b.abs()).clamp_min(1e-12)).max()) if a.numel() else 0.0


def check_gradient(name: str, f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, analytic,
                   eps: float = 1e-6, tol: float = 1e-5) -> float:
    """Compare an analytic gradient with central differences; report the worst entry by relative error."""
    a = _as_tensor(name, analytic, "your gradient")
    if not isinstance(x, torch.Tensor):
        raise CheckFailed(f"{name}: the point x must be a tensor, got {_describe(x)}.")
    x = _plain_tensor(name, x.detach(), "the point x")
    check_shape(name, a, x.shape)
    bad = ~torch.isfinite(a)
    if bad.any():
        i = int(torch.nonzero(bad.flatten())[0])
        raise CheckFailed(f"{name}: your gradient is {a.flatten()[i].item()} at {_fmt_index(i, x.shape)} "
                          f"({int(bad.sum())} of {a.numel()} entries are not finite). Look for 0/0, log(0) or "
                          f"an overflow (e.g. exp of a large number).")
    if not callable(f):
        raise CheckFailed(f"{name}: the function to differentiate is {_describe(f)}, not a function.")
    value = _call_scalar(name, f, x.to(torch.float64))
    if not math.isfinite(value):
        raise CheckFailed(f"{name}: the function being differentiated is {value} at x, so no gradient can be "
                          f"checked there.")
    num = numerical_gradient(f, x, eps)
    if not torch.isfinite(num).all():
        i = int(torch.nonzero(~torch.isfinite(num).flatten())[0])
        raise CheckFailed(f"{name}: the numerical gradient is {num.flatten()[i].item()} at "
                          f"{_fmt_index(i, x.shape)}: the function overflows or is undefined next to x.")
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


def _exc_name(exc_type) -> str:
    if isinstance(exc_type, tuple):
        return " or ".join(t.__name__ for t in exc_type)
    return exc_type.__name__


def check_raises(name: str, fn: Callable, exc_type=Exception, match: str | None = None) -> None:
    """Check that calling fn() raises exc_type (whose message contains `match`, if given)."""
    try:
        fn()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # SystemExit included: exit() is not the error the exercise asks for
        if not isinstance(e, exc_type):
            raise CheckFailed(f"{name}: expected {_exc_name(exc_type)}, but {explain_error(e)}") from None
        if match is not None and match.lower() not in str(e).lower():
            raise CheckFailed(f"{name}: raised {type(e).__name__} as expected, but the message {str(e)!r} "
                              f"does not mention {match!r}.") from None
        print(f"[OK] {name}: raises {type(e).__name__}")
        return
    raise CheckFailed(f"{name}: should raise {_exc_name(exc_type)} but returned normally.")


def run_check(name: str, fn: Callable, *args, **kwargs):
    """Call a student's function and turn a crash or a placeholder into readable feedback."""
    if not callable(fn):
        raise CheckFailed(f"{name}: {_describe(fn)} is not a function: was the function's name reused for "
                          f"something else? Re-run the cell that defines it.")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{name}: not implemented yet: replace `raise NotImplementedError()` with your code.") from None
    except (CheckFailed, KeyboardInterrupt):
        raise
    except BaseException as e:  # SystemExit too, so exit() in an answer is a failed check, not a dead kernel
        raise CheckFailed(f"{name}: your code raised {explain_error(e)}"
                          if not isinstance(e, SystemExit) else f"{name}: {explain_error(e)}") from None


class _CountTorchCalls(torch.overrides.TorchFunctionMode):
    """Counts the torch functions and tensor methods called directly (not those they call inside)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def check_vectorised(name: str, fn: Callable, small_args: tuple, large_args: tuple,
                     what: str = "positions") -> None:
    """Fail when fn makes more torch calls on larger inputs: it loops in Python over `what`.

    A vectorised answer makes the same few calls whatever the input size; a Python loop over output
    positions makes one or more per position, so its count grows with the image. First used in
    02_cnn.ipynb, Exercise 3 (max-pooling with unfold)."""
    counts = []
    for args in (small_args, large_args):
        counter = _CountTorchCalls()
        try:
            with counter:
                fn(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # as in run_check: a crash is a failed check, never a dead kernel
            raise CheckFailed(f"{name}: your code raised {explain_error(e)}") from None
        counts.append(counter.calls)
    if counts[1] > counts[0]:
        raise CheckFailed(f"{name}: {counts[0]} torch operations on the smaller input, {counts[1]} on the larger "
                          f"one: your code loops in Python over {what}. Use whole-tensor operations instead, so "
                          f"the number of operations does not grow with the input.")
    print(f"[OK] {name}: vectorised ({counts[0]} torch operations whatever the input size)")

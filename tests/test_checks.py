import numpy as np
import pytest
import torch

from textimg_lessons.checks import (CheckFailed, check_close, check_dtype, check_gradient, check_raises,
                                    check_shape, check_vectorised, numerical_gradient, relative_error,
                                    run_check)


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


# --- attacks: a check never passes what is wrong, and odd input gets a readable message -------------------
INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize("answer", [
    torch.tensor([1.0, NAN, 3.0]), torch.tensor([1.0, INF, 3.0]), torch.tensor([1.0, -INF, 3.0]),
])
def test_check_close_fails_non_finite_answers_for_a_finite_reference(answer):
    with pytest.raises(CheckFailed, match=r"at \[1\].*expected -2"):
        check_close("g", answer, torch.tensor([1.0, -2.0, 3.0]))


@pytest.mark.parametrize("answer", [torch.tensor([5.0, 2.0]), torch.tensor([-INF, 2.0]), torch.tensor([NAN, 2.0]),
                                    torch.zeros(2)])
def test_an_infinite_reference_does_not_pass_everything(answer):
    with pytest.raises(CheckFailed, match=r"at \[0\]"):
        check_close("logp", answer, torch.tensor([INF, 2.0]))


def test_non_finite_values_pass_only_where_the_reference_has_the_same_one(capsys):
    ref = torch.tensor([-INF, 0.5, NAN, INF])
    check_close("masked", ref.clone(), ref)
    assert "[OK] masked: exact" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"NaN at \[0\]"):
        check_close("masked", torch.tensor([NAN, 0.5, NAN, INF]), ref)
    with pytest.raises(CheckFailed, match=r"differs at \[1\]"):  # the finite entries are still compared
        check_close("masked", torch.tensor([-INF, 0.7, NAN, INF]), ref)


def test_scale_hint_is_never_one_times_the_reference():
    # the answer equals the reference where the reference is non-zero, but not where it is zero:
    # the old hint said "1 x the reference"
    ref = torch.tensor([0.0, 1.0, 2.0, 3.0])
    with pytest.raises(CheckFailed) as e:
        check_close("g", torch.tensor([0.5, 1.0, 2.0, 3.0]), ref)
    assert "x the reference" not in str(e.value) and "differs at [0]" in str(e.value)


def test_scale_hint_is_true_when_the_reference_has_zeros():
    ref = torch.tensor([0.0, 1.0, -2.0, 3.0])
    with pytest.raises(CheckFailed, match="0.25 x the reference"):
        check_close("g", ref / 4, ref)
    wrong_at_zero = ref / 4
    wrong_at_zero[0] = 1.0  # not a common factor any more
    with pytest.raises(CheckFailed) as e:
        check_close("g", wrong_at_zero, ref)
    assert "x the reference" not in str(e.value)


def test_all_zero_answer_gets_its_own_hint():
    with pytest.raises(CheckFailed, match="all zeros") as e:
        check_close("dW", torch.zeros(2, 3), torch.arange(6.0).reshape(2, 3))
    assert "x the reference" not in str(e.value)
    with pytest.raises(CheckFailed) as e:  # a zero reference: no factor can be the explanation
        check_close("dW", torch.ones(3), torch.zeros(3))
    assert "x the reference" not in str(e.value) and "all zeros" not in str(e.value)


def test_half_and_single_numbers_get_true_hints():
    ref = torch.tensor([2.0, -4.0])
    with pytest.raises(CheckFailed, match="half the reference"):
        check_close("g", ref / 2, ref)
    with pytest.raises(CheckFailed) as e:  # 3 vs 1 in a single number is not "a scale factor"
        check_close("loss", torch.tensor(3.0), torch.tensor(1.0))
    assert "x the reference" not in str(e.value)


@pytest.mark.parametrize("make", [
    lambda: torch.empty(2, 3, device="meta"),
])
def test_meta_tensors_get_a_readable_message(make):
    with pytest.raises(CheckFailed, match="meta"):
        check_close("x", make(), torch.zeros(2, 3))
    check_shape("x", make(), (2, 3))  # a meta tensor has a shape: a shape check can still pass


def test_sparse_tensors_are_compared_by_their_values(capsys):
    dense = torch.tensor([[0.0, 2.0], [3.0, 0.0]])
    check_close("s", dense.to_sparse(), dense)
    check_close("csr", dense.to_sparse_csr(), dense)
    assert capsys.readouterr().out.count("[OK]") == 2
    with pytest.raises(CheckFailed, match=r"differs at \[0, 1\]"):
        check_close("s", (2 * dense).to_sparse(), dense + torch.tensor([[0.0, 0.0], [3.0, 0.0]]))


def test_check_gradient_fails_nan_and_inf_gradients():
    x = torch.randn(2, 3, dtype=torch.float64)
    f = lambda t: (t ** 2).sum()
    for bad_value in (NAN, INF, -INF):
        g = 2 * x
        g[1, 1] = bad_value
        with pytest.raises(CheckFailed, match=r"at \[1, 1\].*not finite"):
            check_gradient("dx", f, x, g)
    with pytest.raises(CheckFailed, match="not finite"):
        check_gradient("dx", f, x, torch.full((2, 3), NAN))


def test_check_gradient_explains_a_function_that_raises_returns_none_or_a_vector():
    x = torch.randn(3, dtype=torch.float64)

    def raises(t):
        raise ValueError("boom")
    with pytest.raises(CheckFailed, match="failed: ValueError: boom"):
        check_gradient("dx", raises, x, x)
    with pytest.raises(CheckFailed, match="returned None"):
        check_gradient("dx", lambda t: None, x, x)
    with pytest.raises(CheckFailed, match=r"shape \(3,\).*\.sum\(\)"):
        check_gradient("dx", lambda t: t ** 2, x, 2 * x)
    with pytest.raises(CheckFailed, match="not a number"):
        check_gradient("dx", lambda t: "loss", x, x)
    with pytest.raises(CheckFailed, match="sys.exit"):
        check_gradient("dx", lambda t: exit(3), x, x)
    with pytest.raises(CheckFailed, match="is nan at x"):
        check_gradient("dx", lambda t: (t * NAN).sum(), x, x)
    with pytest.raises(CheckFailed, match="not a function"):
        check_gradient("dx", None, x, x)


def test_check_shape_with_odd_expected_shapes():
    with pytest.raises(CheckFailed, match="expected shape is None"):
        check_shape("x", torch.zeros(2), None)
    with pytest.raises(CheckFailed, match="not a shape"):
        check_shape("x", torch.zeros(2), "2, 3")
    check_shape("x", torch.zeros(5), 5)
    check_shape("x", torch.zeros(2, 3), torch.Size([2, 3]))
    with pytest.raises(CheckFailed, match="forget to `return`"):
        check_shape("x", None, (2, 3))
    with pytest.raises(CheckFailed, match="expected dtype is None"):
        check_dtype("x", torch.zeros(2), None)


def test_relative_error_refuses_mismatched_shapes():
    with pytest.raises(CheckFailed, match=r"shapes \(2, 3\) and \(3, 2\)"):
        relative_error(torch.ones(2, 3), torch.ones(3, 2))
    with pytest.raises(CheckFailed, match=r"shapes \(3,\) and \(3, 1\)"):  # would broadcast to (3, 3)
        relative_error(torch.ones(3), torch.ones(3, 1))
    assert relative_error(torch.tensor([2.0]), torch.tensor(2.0)) == 0.0


def test_system_exit_in_a_students_function_is_a_failed_check():
    def quits():
        raise SystemExit(0)
    with pytest.raises(CheckFailed, match=r"f: your code called sys.exit\(\) or exit\(\)"):
        run_check("f", quits)
    with pytest.raises(CheckFailed, match="expected ValueError, but your code called sys.exit"):
        check_raises("f", quits, ValueError)
    check_raises("f", quits, SystemExit)  # asked for on purpose: fine
    with pytest.raises(KeyboardInterrupt):  # the student's own interrupt still stops the cell
        run_check("f", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))


def test_run_check_explains_a_name_that_is_not_a_function():
    with pytest.raises(CheckFailed, match="not a function"):
        run_check("f", torch.zeros(2))


def test_autograd_errors_say_what_went_wrong():
    x = torch.randn(3, requires_grad=True)

    def penalty_without_create_graph(x):
        (g,) = torch.autograd.grad((x ** 2).sum(), x)  # create_graph=True forgotten
        return ((g.norm() - 1) ** 2)

    with pytest.raises(CheckFailed, match="does not require grad: .*pass it create_graph=True"):
        run_check("penalty backward", lambda: penalty_without_create_graph(x).backward())

    def twice():
        y = (x.exp()).sum()
        y.backward()
        y.backward()
    with pytest.raises(CheckFailed, match="retain_graph=True"):
        run_check("twice", twice)
    with pytest.raises(CheckFailed, match=r"\.sum\(\) or \.mean\(\)"):
        run_check("vector", lambda: (x * 2).backward())
    leaf = torch.ones(2, requires_grad=True)

    def inplace():
        leaf.add_(1)
    with pytest.raises(CheckFailed, match="torch.no_grad"):
        run_check("update", inplace)
    with pytest.raises(CheckFailed, match=r"\.detach\(\)\.numpy\(\)"):
        run_check("numpy", lambda: x.numpy())
    with pytest.raises(CheckFailed, match="order of the factors"):
        run_check("matmul", lambda: torch.ones(2, 3) @ torch.ones(2, 3))


def _max_of_windows_vectorised(X, K):
    N, C, H, W = X.shape
    cols = torch.nn.functional.unfold(X.reshape(N * C, 1, H, W), K, stride=K)
    return cols.max(dim=1).values.view(N, C, H // K, W // K)


def _max_of_windows_with_loops(X, K):
    N, C, H, W = X.shape
    out = torch.empty(N, C, H // K, W // K)
    for i in range(H // K):
        for j in range(W // K):
            out[:, :, i, j] = X[:, :, i * K:(i + 1) * K, j * K:(j + 1) * K].amax(dim=(2, 3))
    return out


def test_check_vectorised_passes_whole_tensor_code_and_catches_loops_over_positions(capsys):
    small, large = (torch.randn(2, 3, 6, 6), 2), (torch.randn(2, 3, 12, 12), 2)
    check_vectorised("pool", _max_of_windows_vectorised, small, large)
    assert "[OK] pool: vectorised" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"pool: \d+ torch operations on the smaller input, \d+ on the larger "
                                          r"one: your code loops in Python over positions"):
        check_vectorised("pool", _max_of_windows_with_loops, small, large)


def test_check_vectorised_allows_loops_over_channels_and_reports_a_crash():
    def loop_over_channels(X, K):  # the count depends on C, which both inputs share
        return torch.stack([_max_of_windows_vectorised(X[:, c:c + 1], K)[:, 0] for c in range(X.shape[1])], 1)

    check_vectorised("pool", loop_over_channels, (torch.randn(1, 3, 6, 6), 2), (torch.randn(1, 3, 12, 12), 2))
    with pytest.raises(CheckFailed, match="pool: your code raised ZeroDivisionError"):
        check_vectorised("pool", lambda X, K: 1 / 0, (torch.randn(1, 1, 4, 4), 2), (torch.randn(1, 1, 8, 8), 2))


# ---- the exercises' visible tests, attacked ------------------------------------------------------------------
# Each wrong answer breaks exactly one requirement that the exercise's text states; the visible part of its test
# cell (what `check` runs) must fail with a message naming that requirement. Only the notebook's import cell and
# the test cell run, so this needs neither a full notebook run nor its stored outputs.
import contextlib
import io
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _visible_test_fails(chapter: str, exercise: str, answer: str) -> str:
    """Run the visible part of `exercise`'s test against `answer`; the CheckFailed message, or '' if it passes."""
    nb = nbformat.read(str(NOTEBOOKS / f"{chapter}.ipynb"), 4)
    imports = next(c.source for c in nb.cells if c.get("id") == "imports")
    test = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{exercise}_test")
    ns = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec("\n".join(l for l in imports.splitlines() if not l.startswith("%")), ns)
        if exercise == "ex1_output_delta":  # the worked example the first exercise is checked on
            ref = ns["backprop"].worked_example_321()
            ns["y"], ns["y_hat"] = ref["y"], ref["y_hat"]
            ns["y_hat_"] = ref["y_hat"].clone().requires_grad_(True)
            ns["y_hat_"].grad = ref["dL_dy_hat"]
        exec(answer, ns)
        try:
            exec(test.split("### BEGIN HIDDEN TESTS")[0], ns)
        except CheckFailed as e:
            return str(e)
    return ""


_NUMGRAD = ("def numerical_gradient_ex(f, x, eps=1e-6):\n    grad = torch.zeros_like(x)\n"
            "    flat, gflat = x.view(-1), grad.view(-1)\n    for i in range(flat.numel()):\n"
            "        old = flat[i].item()\n        flat[i] = old + eps\n        plus = float(f(x))\n"
            "        flat[i] = old - eps\n        minus = float(f(x))\n{restore}"
            "        gflat[i] = (plus - minus) / (2 * eps)\n    return grad")
_SOFTMAX = ("def softmax_cross_entropy_ex(logits, y):\n    N = logits.shape[0]\n    {shift}\n"
            "    p = s.exp() / s.exp().sum(1, keepdim=True)\n    loss = -p[torch.arange(N), y].log().mean()\n"
            "    d = p.clone()\n    d[torch.arange(N), y] -= 1\n    return loss, d / N")
_LENET = ("def conv_params(c_in, c_out, k, bias=True):\n    return c_out * c_in * k * k + {conv_bias}\n"
          "def linear_params(n_in, n_out, bias=True):\n    return n_in * n_out + {linear_bias}\n"
          "def lenet5_parameter_count():\n    return 61706")
_TIMER = ("def median_time_ex(fn, warmup, repeats):\n{warm}    ts = []\n    for _ in {loop}:\n"
          "        s = time.perf_counter()\n        fn()\n        ts.append(time.perf_counter() - s)\n"
          "    return float(1000 * {reduce})")
ATTACKS = [  # (chapter, exercise, wrong answer, what the visible test must say)
    ("01_backprop", "ex1_output_delta", "def output_delta_ex(y, y_hat):\n    return (y_hat - y).sum()",
     "dL/dy_hat on a (2, 3) batch (it has y_hat's shape, whatever that shape is): shape ()"),
    ("01_backprop", "ex2_numerical_gradient", _NUMGRAD.format(restore=""),
     "numerical_gradient_ex changed the caller's x: restore x[i] after each perturbation"),
    ("01_backprop", "ex2_numerical_gradient", _NUMGRAD.format(restore="        flat[i] = old\n")
     .replace("eps=1e-6):\n", "eps=1e-6):\n    eps = 1e-6\n"),
     "central difference with eps=0.1, (f(x + eps) - f(x - eps)) / (2 eps) with the eps passed in differs"),
    ("01_backprop", "ex4_relu_backward", "def relu_backward_ex(dout, Z):\n    return dout * (Z >= 0)",
     "relu_backward_ex lets the gradient through where Z == 0: at exactly 0 the gradient is 0, as in PyTorch"),
    ("01_backprop", "ex4_relu_backward",
     "def relu_backward_ex(dout, Z):\n    out = torch.zeros_like(dout)\n    for i in range(Z.shape[0]):\n"
     "        for j in range(Z.shape[1]):\n            if Z[i, j] > 0:\n                out[i, j] = dout[i, j]\n"
     "    return out",
     "relu_backward_ex on a 3-D input (Z may have any shape): your code raised RuntimeError"),
    ("01_backprop", "ex5_softmax_cross_entropy", _SOFTMAX.format(shift="s = logits"),
     "gives inf or NaN for logits in the thousands: subtract each row's max before exp"),
    ("01_backprop", "ex5_softmax_cross_entropy", _SOFTMAX.format(shift="s = logits - logits.max(1, keepdim=True).values"),
     "instead of the log of a probability that underflowed to 0"),
    ("02_cnn", "ex1_conv2d_loops",
     "def conv2d_ex(X, W, b=None, stride=1, padding=0):\n    return cnn.conv2d_unfold(X, W, b, padding=padding)",
     "conv2d_ex with stride=2 (H_out = (H + 2P - K) // S + 1, same for W): shape (2, 3, 7, 6)"),
    ("02_cnn", "ex1_conv2d_loops",
     "def conv2d_ex(X, W, b=None, stride=1, padding=0):\n"
     "    return cnn.conv2d_unfold(X, W, None, stride, padding) + b.view(1, -1, 1, 1)",
     "conv2d_ex with b=None: your code raised AttributeError"),
    ("02_cnn", "ex1_conv2d_loops",
     "def conv2d_ex(X, W, b=None, stride=1, padding=0):\n    return cnn.conv2d_unfold(X, W, None, stride, padding)",
     "conv2d_ex (2 -> 3 channels, 3x3, padding 1, bias b added) differs"),
    ("02_cnn", "ex2_output_size", "def output_size(H, K, P=0, S=1):\n    return (H + 2 * P - K) / S + 1",
     "returned 24.0 (float): a number of positions is an int; use // (floor division), not /"),
    ("02_cnn", "ex3_maxpool_unfold", "def maxpool2d_ex(X, K, S=None):\n    return nn.MaxPool2d(K)(X)",
     "maxpool2d_ex(X, 3, S=2) on (2, 3, 7, 9) (windows start every S pixels): shape (2, 3, 2, 3)"),
    ("02_cnn", "ex3_maxpool_unfold",
     "def maxpool2d_ex(X, K, S=None):\n    S = K if S is None else S\n    N, C, H, W = X.shape\n"
     "    out = torch.empty(N, C, (H - K) // S + 1, (W - K) // S + 1)\n    for i in range(out.shape[2]):\n"
     "        for j in range(out.shape[3]):\n"
     "            out[:, :, i, j] = X[:, :, i * S:i * S + K, j * S:j * S + K].amax(dim=(2, 3))\n    return out",
     "your code loops in Python over positions"),
    ("02_cnn", "ex4_parameter_count", _LENET.format(conv_bias="c_out", linear_bias="(n_out if bias else 0)"),
     "conv_params(1, 6, 5, bias=False) (weights only) differs"),
    ("02_cnn", "ex4_parameter_count", _LENET.format(conv_bias="(c_out if bias else 0)", linear_bias="n_out"),
     "linear_params(400, 120, bias=False) (weights only) differs"),
    ("08_faster_generation", "ex1_median_time", _TIMER.format(loop="range(warmup + repeats)", warm="",
                                                               reduce="statistics.median(ts)"),
     "the slow warm-up calls (60 ms) must not be timed"),
    ("08_faster_generation", "ex1_median_time", _TIMER.format(loop="range(repeats)", warm="    for _ in range(warmup): fn()\n",
                                                               reduce="sum(ts) / len(ts)"),
     "use the median, not the mean"),
    ("08_faster_generation", "ex2_embedding_cache",
     "def embedding_cache_ex(cache, compute, prompts):\n    new = list(dict.fromkeys(p for p in prompts if p not in cache))\n"
     "    got = dict(zip(new, compute(new))) if new else {}\n    return [cache.get(p, got.get(p)) for p in prompts]",
     "store what compute returns in the cache"),
    ("08_faster_generation", "ex2_embedding_cache",
     "def embedding_cache_ex(cache, compute, prompts):\n    new = list(dict.fromkeys(p for p in prompts if p not in cache))\n"
     "    cache.update(zip(new, compute(new)))\n    return [cache[p] for p in prompts]",
     "every prompt was cached, but compute was called"),
]


@pytest.mark.parametrize("chapter, exercise, answer, message", ATTACKS,
                         ids=[f"{a[0][:2]}-{a[1]}-{i}" for i, a in enumerate(ATTACKS)])
def test_a_visible_exercise_test_names_the_stated_requirement_an_answer_breaks(chapter, exercise, answer, message):
    assert message in _visible_test_fails(chapter, exercise, answer)


@pytest.mark.parametrize("chapter, exercise", sorted({a[:2] for a in ATTACKS}))
def test_the_reference_solution_passes_the_visible_tests(chapter, exercise):
    nb = nbformat.read(str(NOTEBOOKS / f"{chapter}.ipynb"), 4)
    solution = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise)
    assert _visible_test_fails(chapter, exercise, solution) == ""

"""Chapter 1 package code: every hand-written gradient against autograd (float64), plus bad input."""
import pytest
import torch

from textimg_lessons import backprop
from textimg_lessons.checks import check_gradient
from textimg_lessons.data import ImageData, load_mnist

D = torch.float64


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def autograd_grads(f, *tensors):
    """Gradients of the scalar f(*tensors) with respect to every tensor, by autograd."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    f(*leaves).backward()
    return [t.grad for t in leaves]


def test_linear_matches_autograd():
    X, W, b = rand(5, 4, seed=1), rand(3, 4, seed=2), rand(3, seed=3)
    Y = backprop.linear_forward(X, W, b)
    torch.testing.assert_close(Y, torch.nn.functional.linear(X, W, b))  # (out, in) convention of nn.Linear
    dout = rand(5, 3, seed=4)
    dX, dW, db = backprop.linear_backward(dout, X, W)
    gX, gW, gb = autograd_grads(lambda X, W, b: (backprop.linear_forward(X, W, b) * dout).sum(), X, W, b)
    torch.testing.assert_close(dX, gX)
    torch.testing.assert_close(dW, gW)
    torch.testing.assert_close(db, gb)


def test_relu_matches_autograd_including_zero():
    Z = torch.tensor([[-1.0, 0.0, 2.0], [3.0, -0.5, 0.0]], dtype=D)
    torch.testing.assert_close(backprop.relu_forward(Z), torch.relu(Z))
    dout = rand(2, 3, seed=5)
    (gZ,) = autograd_grads(lambda Z: (torch.relu(Z) * dout).sum(), Z)
    torch.testing.assert_close(backprop.relu_backward(dout, Z), gZ)
    assert backprop.relu_backward(dout, Z)[0, 1] == 0  # gradient 0 at Z == 0, as PyTorch


def test_sigmoid_matches_autograd_and_saturates_without_nan():
    Z = rand(4, 3, seed=6) * 3
    S = backprop.sigmoid_forward(Z)
    torch.testing.assert_close(S, torch.sigmoid(Z))
    dout = rand(4, 3, seed=7)
    (gZ,) = autograd_grads(lambda Z: (torch.sigmoid(Z) * dout).sum(), Z)
    torch.testing.assert_close(backprop.sigmoid_backward(dout, S), gZ)
    extreme = backprop.sigmoid_forward(torch.tensor([-1000.0, 1000.0], dtype=D))
    assert extreme.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_softmax_cross_entropy_matches_autograd(scale):
    logits, y = rand(6, 4, seed=8) * scale, torch.tensor([0, 3, 1, 1, 2, 0])
    loss, dlogits = backprop.softmax_cross_entropy(logits, y)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, y))
    (g,) = autograd_grads(lambda L: torch.nn.functional.cross_entropy(L, y), logits)
    torch.testing.assert_close(dlogits, g)
    assert torch.isfinite(loss) and torch.isfinite(dlogits).all()
    torch.testing.assert_close(backprop.log_softmax(logits), torch.log_softmax(logits, 1))


def test_softmax_cross_entropy_numerical_gradient():
    logits, y = rand(3, 5, seed=9), torch.tensor([4, 0, 2])
    _, dlogits = backprop.softmax_cross_entropy(logits, y)
    err = check_gradient("dlogits", lambda L: backprop.softmax_cross_entropy(L, y)[0], logits, dlogits)
    assert err < 1e-7


def test_worked_example_is_self_consistent():
    d = backprop.worked_example_321()
    x, y = d["x"], d["y"]
    params = [d[k].clone().requires_grad_(True) for k in ("W1", "b1", "W2", "b2")]
    W1, b1, W2, b2 = params
    h = torch.sigmoid(W1 @ x + b1)
    y_hat = W2 @ h + b2
    loss = 0.5 * ((y - y_hat) ** 2).sum()
    h.retain_grad(), y_hat.retain_grad()
    loss.backward()
    torch.testing.assert_close(d["h"], h.detach())
    torch.testing.assert_close(d["y_hat"], y_hat.detach())
    torch.testing.assert_close(d["loss"], loss.detach())
    torch.testing.assert_close(d["dL_dy_hat"], y_hat.grad)
    torch.testing.assert_close(d["dh"], h.grad)
    for name, p in zip(("dW1", "db1", "dW2", "db2"), params):
        torch.testing.assert_close(d[name], p.grad)
        torch.testing.assert_close(d[name[1:] + "_new"], p.detach() - d["lr"] * p.grad)
    # the numbers printed in the chapter, and one step really lowers the loss
    assert d["W1"].shape == (2, 3)
    assert round(d["y_hat"].item(), 6) == 0.853453
    assert round(d["loss"].item(), 6) == 0.062464
    assert d["loss_new"] < d["loss"]


def test_worked_example_overrides():
    assert torch.equal(backprop.worked_example_321(lr=0.0)["W1_new"], backprop.worked_example_321()["W1"])
    with pytest.raises(ValueError, match="unknown"):
        backprop.worked_example_321(alpha=0.1)
    with pytest.raises(ValueError, match=r"W1 \(2, 3\)"):
        backprop.worked_example_321(W1=[[0.1, 0.2], [0.3, 0.4]])  # the seed article's 2x2 W1


def test_manual_mlp_backward_matches_autograd():
    net = backprop.ManualMLP((6, 5, 4, 3), seed=1, dtype=D)
    X, y = rand(7, 6, seed=10), torch.tensor([0, 1, 2, 2, 1, 0, 1])
    loss, dlogits = backprop.softmax_cross_entropy(net.forward(X), y)
    grads = net.backward(dlogits)
    params = [p.clone().requires_grad_(True) for p in net.parameters()]
    H = X
    for k in range(0, len(params), 2):
        H = H @ params[k].T + params[k + 1]
        H = torch.relu(H) if k < len(params) - 2 else H
    ref = torch.nn.functional.cross_entropy(H, y)
    ref.backward()
    torch.testing.assert_close(loss, ref.detach())
    for g, p in zip(grads, params):
        torch.testing.assert_close(g, p.grad)
    assert net.num_parameters() == 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3


def test_sgd_step_with_momentum_and_weight_decay():
    net = backprop.ManualMLP((3, 2), seed=0, dtype=D)
    W0 = net.W[0].clone()
    net.forward(rand(4, 3))
    net.backward(rand(4, 2, seed=1))
    dW = net.grads[0].clone()
    net.sgd_step(lr=0.1, momentum=0.9, weight_decay=0.01)
    torch.testing.assert_close(net.W[0], W0 - 0.1 * (dW + 0.01 * W0))
    W1 = net.W[0].clone()
    net.sgd_step(lr=0.1, momentum=0.9, weight_decay=0.0)
    torch.testing.assert_close(net.W[0], W1 - 0.1 * (0.9 * (dW + 0.01 * W0) + dW))


def test_bad_input_raises_clear_errors():
    X, W, b = rand(4, 3), rand(2, 3), rand(2)
    with pytest.raises(ValueError, match="features"):
        backprop.linear_forward(X, W.T, b)  # (in, out) instead of (out, in)
    with pytest.raises(ValueError, match="empty batch"):
        backprop.linear_forward(X[:0], W, b)
    with pytest.raises(ValueError, match="dout must have shape"):
        backprop.linear_backward(rand(4, 3), X, W)
    with pytest.raises(TypeError, match="torch.Tensor"):
        backprop.linear_forward(X.tolist(), W, b)
    with pytest.raises(ValueError, match="shape"):
        backprop.relu_backward(rand(2, 2), rand(2, 3))
    logits = rand(3, 4)
    with pytest.raises(TypeError, match="integer"):
        backprop.softmax_cross_entropy(logits, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        backprop.softmax_cross_entropy(logits, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        backprop.softmax_cross_entropy(logits, torch.tensor([0, -1, 2]))
    with pytest.raises(ValueError, match="shape"):
        backprop.softmax_cross_entropy(logits, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="empty batch"):
        backprop.softmax_cross_entropy(logits[:0], torch.tensor([], dtype=torch.long))
    net = backprop.ManualMLP((3, 2))
    with pytest.raises(RuntimeError, match="forward"):
        net.backward(rand(1, 2))
    with pytest.raises(ValueError, match="expects 3"):
        net.forward(torch.rand(2, 5))


def test_tiny_training_run_beats_chance():
    data = load_mnist(verbose=False)  # fast mode (conftest): 100/50 per class
    net, history = backprop.train_manual_mlp(data, hidden=32, num_epochs=3, progress=False)
    assert set(history) == {"loss", "train_acc", "test_acc", "seconds"}
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    assert history["test_acc"][-1] > 0.5  # chance is 0.1
    assert net.sizes == (784, 32, 10)


def test_training_rejects_empty_data():
    empty = ImageData("x", "test", torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long),
                      torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long), [str(i) for i in range(10)])
    with pytest.raises(ValueError, match="empty"):
        backprop.train_manual_mlp(empty, progress=False)

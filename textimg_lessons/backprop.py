"""Backpropagation by hand (chapter 1): layer forward/backward pairs, the 3-2-1 worked example, an MLP.

Convention used everywhere in this module (the same as torch.nn.Linear): a weight matrix W has shape
(out_features, in_features), a batch X has shape (N, in_features), and a linear layer computes
Y = X @ W.T + b with b of shape (out_features,). Gradients have the shape of what they differentiate.

Each backward function takes the upstream gradient `dout` (dL/d output) and what the forward pass cached,
and returns dL/d input (and parameter gradients), so layers chain exactly as the chain rule does.
"""
from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from .config import get_device, pick, seed_everything
from .histories import ManualMLPHistory

# ---------------------------------------------------------------- input validation


def _tensor(name: str, x, dims: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; wrap it with torch.tensor(...).")
    if dims is not None and x.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimension(s), got shape {tuple(x.shape)}.")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}; use {name}.float() or .double().")
    return x


def _nonempty(name: str, x: torch.Tensor) -> None:
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (0 rows); pass at least one example.")


def _same_shape(a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{a_name} has shape {tuple(a.shape)} but {b_name} has shape {tuple(b.shape)}; "
                         "a backward pass needs the upstream gradient shaped like the forward output.")


def _labels(y, num_rows: int, num_classes: int) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"labels y must be a torch.Tensor of class indices, got {type(y).__name__}.")
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"labels y must be integer class indices (torch.long), got {y.dtype}; "
                        "use y.long() (one-hot labels: y.argmax(1)).")
    if y.dim() != 1 or len(y) != num_rows:
        raise ValueError(f"labels y must have shape ({num_rows},) to match the logits, got {tuple(y.shape)}.")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}] for {num_classes} classes; "
                         f"got values from {int(y.min())} to {int(y.max())}.")
    return y.long()


# ---------------------------------------------------------------- layers


def _require_linear(X: torch.Tensor, W: torch.Tensor) -> None:
    """A non-empty batch X (N, in) that fits W (out, in)."""
    _nonempty("X", X)
    if X.shape[1] != W.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features per row but W has shape {tuple(W.shape)} = (out, in) "
                         f"expecting {W.shape[1]}; W must be (out_features, in_features) = (?, {X.shape[1]}).")


def linear_forward(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Y = X @ W.T + b. X: (N, in), W: (out, in), b: (out,) => Y: (N, out). Chapter 1, "Linear layer".

    Lesson: 01_backprop.ipynb, "Exercise 3: `linear_backward`".
    """
    _tensor("X", X, 2), _tensor("W", W, 2), _tensor("b", b, 1)
    _require_linear(X, W)
    if b.shape[0] != W.shape[0]:
        raise ValueError(f"b has {b.shape[0]} entries but W has {W.shape[0]} output rows; they must match.")
    return X @ W.T + b  # (N, in) @ (in, out) => (N, out)


def linear_backward(dout: torch.Tensor, X: torch.Tensor, W: torch.Tensor):
    """Gradients of a linear layer: returns (dX (N, in), dW (out, in), db (out,)). Chapter 1, "Linear layer".

    Y[n, o] = sum_i X[n, i] W[o, i] + b[o], so dL/dX = dout @ W, dL/dW = dout.T @ X, and
    dL/db = dout summed over the batch (b is added to every row, so each row sends its gradient back).

    Lesson: 01_backprop.ipynb, "Exercise 3: `linear_backward`".
    """
    _tensor("dout", dout, 2), _tensor("X", X, 2), _tensor("W", W, 2)
    _require_linear(X, W)
    if dout.shape != (X.shape[0], W.shape[0]):
        raise ValueError(f"dout must have shape (N, out) = {(X.shape[0], W.shape[0])}, got {tuple(dout.shape)}.")
    dX = dout @ W  # (N, out) @ (out, in) => (N, in)
    dW = dout.T @ X  # (out, N) @ (N, in) => (out, in): sums over the batch
    db = dout.sum(0)  # (N, out) => (out,)
    return dX, dW, db


def relu_forward(Z: torch.Tensor) -> torch.Tensor:
    """max(0, Z), elementwise. Chapter 1, "ReLU".

    Lesson: 01_backprop.ipynb, "Exercise 4: `relu_backward`".
    """
    _tensor("Z", Z)
    return Z.clamp_min(0)


def relu_backward(dout: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """dL/dZ = dout where Z > 0, else 0 (we use 0 at Z == 0, as PyTorch does). Chapter 1, "ReLU".

    Lesson: 01_backprop.ipynb, "Exercise 4: `relu_backward`".
    """
    _tensor("dout", dout), _tensor("Z", Z)
    _same_shape("dout", dout, "Z", Z)
    return dout * (Z > 0).to(dout.dtype)


def sigmoid_forward(Z: torch.Tensor) -> torch.Tensor:
    """1 / (1 + exp(-Z)). For very negative Z, exp(-Z) = inf and the result is 0, not NaN. Chapter 1.

    Lesson: 01_backprop.ipynb, "3. Gradient checking".
    """
    _tensor("Z", Z)
    return 1.0 / (1.0 + torch.exp(-Z))


def sigmoid_backward(dout: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """dL/dZ = dout * S * (1 - S), where S = sigmoid(Z) is the forward *output* (cheaper than recomputing).

    Lesson: 01_backprop.ipynb, "3. Gradient checking".
    """
    _tensor("dout", dout), _tensor("S", S)
    _same_shape("dout", dout, "S", S)
    return dout * S * (1 - S)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Numerically stable log-softmax over the last axis: subtract the row max before exp. Chapter 1.

    Lesson: 01_backprop.ipynb, "Softmax + cross-entropy".
    """
    _tensor("logits", logits, 2)
    shifted = logits - logits.max(dim=1, keepdim=True).values  # largest entry is 0, so exp() <= 1
    return shifted - shifted.exp().sum(dim=1, keepdim=True).log()


def softmax_cross_entropy(logits: torch.Tensor, y: torch.Tensor):
    """Mean cross-entropy of softmax(logits) against class indices y, and its gradient. Chapter 1.

    logits: (N, C) float, y: (N,) integers in [0, C). Returns (loss: 0-dim tensor, dlogits: (N, C)) with
    dlogits = (softmax(logits) - onehot(y)) / N, the /N because the loss is the mean over the batch.

    Lesson: 01_backprop.ipynb, "Softmax + cross-entropy".
    """
    _tensor("logits", logits, 2)
    _nonempty("logits", logits)
    y = _labels(y, logits.shape[0], logits.shape[1])
    N = logits.shape[0]
    logp = log_softmax(logits)  # (N, C)
    loss = -logp[torch.arange(N), y].mean()
    dlogits = logp.exp()  # softmax probabilities, (N, C)
    dlogits[torch.arange(N), y] -= 1
    return loss, dlogits / N


# ---------------------------------------------------------------- the 3-2-1 worked example

WORKED_EXAMPLE = {
    "x": [1.0, 2.0, 3.0],
    "y": 0.5,
    "W1": [[0.1, 0.2, 0.3], [0.3, -0.4, 0.2]],
    "b1": [0.1, 0.2],
    "W2": [[0.5, 0.6]],
    "b2": [0.1],
    "lr": 0.1,
}


def worked_example_321(**overrides) -> dict:
    """Every number of chapter 1's 3-2-1 example (sigmoid hidden layer, linear output, L = 1/2 (y - y_hat)^2).

    Inputs (float64 tensors) come from WORKED_EXAMPLE, overridable by keyword (e.g. lr=0.5). The result holds
    the inputs, forward values (z1, h, y_hat, loss), gradients (dL_dy_hat, dW2, db2, dh, dz1, dW1, db1), the
    updated parameters (W1_new, b1_new, W2_new, b2_new) and the loss after one step (loss_new).

    Lesson: 01_backprop.ipynb, "Our version".
    """
    unknown = set(overrides) - set(WORKED_EXAMPLE)
    if unknown:
        raise ValueError(f"unknown worked-example values {sorted(unknown)}; choose from {sorted(WORKED_EXAMPLE)}.")
    v = {k: torch.tensor(overrides.get(k, d), dtype=torch.float64) for k, d in WORKED_EXAMPLE.items()}
    x, y, W1, b1, W2, b2, lr = (v[k] for k in ("x", "y", "W1", "b1", "W2", "b2", "lr"))
    if W1.shape != (2, 3) or b1.shape != (2,) or W2.shape != (1, 2) or b2.shape != (1,) or x.shape != (3,):
        raise ValueError("the worked example needs x (3,), W1 (2, 3), b1 (2,), W2 (1, 2), b2 (1,).")

    def forward(W1, b1, W2, b2):
        z1 = W1 @ x + b1  # (2, 3) @ (3,) => (2,)
        h = sigmoid_forward(z1)
        y_hat = W2 @ h + b2  # (1, 2) @ (2,) => (1,): linear output, no activation
        return z1, h, y_hat, 0.5 * ((y - y_hat) ** 2).sum()

    z1, h, y_hat, loss = forward(W1, b1, W2, b2)
    dL_dy_hat = y_hat - y  # d/dy_hat of 1/2 (y - y_hat)^2; the output is linear, so this is dL/dz2 too
    dW2 = torch.outer(dL_dy_hat, h)  # (1,) x (2,) => (1, 2)
    db2 = dL_dy_hat.clone()
    dh = W2.T @ dL_dy_hat  # (2, 1) @ (1,) => (2,)
    dz1 = dh * h * (1 - h)  # sigmoid'(z1) = h (1 - h)
    dW1 = torch.outer(dz1, x)  # (2,) x (3,) => (2, 3): the *input* x, not the hidden activations
    db1 = dz1.clone()
    new = {"W1_new": W1 - lr * dW1, "b1_new": b1 - lr * db1, "W2_new": W2 - lr * dW2, "b2_new": b2 - lr * db2}
    loss_new = forward(new["W1_new"], new["b1_new"], new["W2_new"], new["b2_new"])[3]
    return {**v, "z1": z1, "h": h, "y_hat": y_hat, "loss": loss, "dL_dy_hat": dL_dy_hat, "dW2": dW2,
            "db2": db2, "dh": dh, "dz1": dz1, "dW1": dW1, "db1": db1, **new, "loss_new": loss_new}


# ---------------------------------------------------------------- an MLP with hand-written gradients


class ManualMLP:
    """A ReLU MLP whose backward pass is written by hand (no autograd). Chapter 1, "An MLP from scratch".

    sizes: layer widths, e.g. (784, 256, 10). Weights are (out, in) with He initialisation
    N(0, 2 / in), which keeps ReLU activations from shrinking or growing layer after layer; biases start at 0.

    Lesson: 01_backprop.ipynb, "5. An MLP trained without autograd".
    """

    def __init__(self, sizes=(784, 256, 10), seed: int = 0, dtype=torch.float32, device="cpu"):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least an input and an output width, all >= 1; got {sizes}.")
        g = torch.Generator().manual_seed(seed)
        self.sizes = sizes
        # drawn on the CPU so that a seed gives the same network on every device
        self.W = [(torch.randn(o, i, generator=g, dtype=dtype) * (2.0 / i) ** 0.5).to(device)
                  for i, o in zip(sizes, sizes[1:])]
        self.b = [torch.zeros(o, dtype=dtype, device=device) for o in sizes[1:]]
        self.vW = [torch.zeros_like(w) for w in self.W]  # momentum buffers
        self.vb = [torch.zeros_like(b) for b in self.b]
        self.cache = None
        self.grads = None

    def __repr__(self) -> str:
        return f"ManualMLP({' -> '.join(map(str, self.sizes))}, ReLU, {self.num_parameters():,} parameters)"

    def num_parameters(self) -> int:
        return sum(w.numel() + b.numel() for w, b in zip(self.W, self.b))

    def parameters(self) -> list:
        """[W0, b0, W1, b1, ...], the order used by grads."""
        return [p for wb in zip(self.W, self.b) for p in wb]

    def _flatten(self, X: torch.Tensor) -> torch.Tensor:
        _tensor("X", X)
        if X.dim() < 2:
            raise ValueError(f"X must be a batch shaped (N, ...), got {tuple(X.shape)}; use X.unsqueeze(0) for one example.")
        X = X.flatten(1)  # (N, 1, 28, 28) => (N, 784)
        if X.shape[1] != self.sizes[0]:
            raise ValueError(f"each input has {X.shape[1]} values but the network expects {self.sizes[0]}.")
        return X.to(device=self.W[0].device, dtype=self.W[0].dtype)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes); caches each layer's input and pre-activation for backward."""
        H = self._flatten(X)
        _nonempty("X", H)
        self.cache = []
        for k, (W, b) in enumerate(zip(self.W, self.b)):
            Z = linear_forward(H, W, b)
            self.cache.append((H, Z))
            H = relu_forward(Z) if k < len(self.W) - 1 else Z  # no ReLU on the logits
        return H

    __call__ = forward

    def backward(self, dlogits: torch.Tensor) -> list:
        """From dL/dlogits, the gradients [dW0, db0, dW1, db1, ...] (stored in self.grads too)."""
        if self.cache is None:
            raise RuntimeError("call forward() before backward(): backward needs the cached activations.")
        grads = []
        dH = dlogits
        for k in reversed(range(len(self.W))):
            H, Z = self.cache[k]
            dZ = dH if k == len(self.W) - 1 else relu_backward(dH, Z)
            dH, dW, db = linear_backward(dZ, H, self.W[k])
            grads = [dW, db] + grads
        self.grads = grads
        return grads

    def sgd_step(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        """v = momentum * v + (grad + weight_decay * W); W -= lr * v (plain SGD when momentum = 0)."""
        if self.grads is None:
            raise RuntimeError("call backward() before sgd_step(): there are no gradients yet.")
        for k in range(len(self.W)):
            dW, db = self.grads[2 * k], self.grads[2 * k + 1]
            self.vW[k].mul_(momentum).add_(dW + weight_decay * self.W[k])
            self.vb[k].mul_(momentum).add_(db)  # no decay on biases: they do not cause overfitting
            self.W[k] -= lr * self.vW[k]
            self.b[k] -= lr * self.vb[k]

    def predict(self, X: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """Class indices (argmax of the logits), evaluated in batches so 60k rows fit in memory."""
        out = [self.forward(X[i:i + batch_size]).argmax(1) for i in range(0, len(X), batch_size)]
        self.cache = None
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)

    def accuracy(self, X: torch.Tensor, y: torch.Tensor) -> float:
        if len(X) != len(y) or len(X) == 0:
            raise ValueError(f"need the same non-zero number of inputs and labels, got {len(X)} and {len(y)}.")
        return (self.predict(X).cpu() == y.cpu()).double().mean().item()


def train_manual_mlp(data, hidden=None, num_epochs: int | None = None, lr: float = 0.1,
                     batch_size: int = 32, momentum: float = 0.9, weight_decay: float = 5e-4, seed: int = 0,
                     progress: bool = True, num_threads: int | None = 1, device=None):
    """Train a ManualMLP on `data` (an ImageData) with hand-written gradients and mini-batch SGD. Chapter 1.

    hidden: hidden widths (int or tuple), default pick((256,), (64,)); num_epochs: default pick(20, 8).
    The learning rate decays linearly to 0 over training (large steps early, fine steps at the end).
    num_threads: torch threads while training (None keeps the current setting). The default 1 is deliberate:
    matrices this small gain little from a second thread, and on a busy shared CPU two spinning threads made
    each step 20x slower in our measurements. device: default get_device() (CPU, CUDA or MPS).
    Returns (net, history) with per-epoch lists "loss" (mean train loss), "train_acc", "test_acc" and
    "seconds" (training wall time, float).

    The loop is written out by hand on purpose (it is chapter 1's lesson: forward, backward, update);
    later chapters train with train.run_loop.

    Lesson: 01_backprop.ipynb, "5. An MLP trained without autograd".
    """
    hidden = pick((256,), (64,)) if hidden is None else hidden
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    num_epochs = pick(20, 8) if num_epochs is None else int(num_epochs)
    if num_epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need num_epochs >= 1, batch_size >= 1 and lr > 0; got {num_epochs}, {batch_size}, {lr}.")
    X = data.X_train.flatten(1).float()  # (N, 1, 28, 28) => (N, 784)
    y = data.y_train
    if len(X) == 0:
        raise ValueError("the training set is empty; load data with at least one example.")
    num_classes = len(data.classes) or int(y.max()) + 1
    device = get_device() if device is None else torch.device(device)
    X, y = X.to(device), y.to(device)
    net = ManualMLP((X.shape[1], *hidden, num_classes), seed=seed, device=device)
    g = seed_everything(seed)
    history = {"loss": [], "train_acc": [], "test_acc": []}
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    start = time.perf_counter()
    try:
        _train_epochs(net, X, y, data, num_epochs, lr, batch_size, momentum, weight_decay, g, history, progress)
    finally:
        torch.set_num_threads(old_threads)
    return net, ManualMLPHistory(**history, seconds=time.perf_counter() - start)


def _train_epochs(net, X, y, data, num_epochs, lr, batch_size, momentum, weight_decay, g, history, progress):
    steps_per_epoch = -(-len(X) // batch_size)
    total_steps, step = num_epochs * steps_per_epoch, 0
    with torch.no_grad():  # every gradient below is computed by hand
        bar = tqdm(range(num_epochs), desc="manual MLP", disable=not progress)
        for _ in bar:
            order = torch.randperm(len(X), generator=g).to(X.device)
            total = 0.0
            for i in range(0, len(X), batch_size):
                idx = order[i:i + batch_size]
                loss, dlogits = softmax_cross_entropy(net.forward(X[idx]), y[idx])
                net.backward(dlogits)
                net.sgd_step(lr * (1 - step / total_steps), momentum, weight_decay)
                step += 1
                total += loss.item() * len(idx)
            history["loss"].append(total / len(X))
            history["train_acc"].append(net.accuracy(X, y))
            history["test_acc"].append(net.accuracy(data.X_test, data.y_test))
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", test_acc=f"{history['test_acc'][-1]:.3f}")

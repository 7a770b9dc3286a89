"""Convolutional networks (chapter 2): convolution and pooling by hand, a LeNet-style CNN and its training.

Chapter 2 writes convolution and max-pooling twice (explicit loops, then unfold + matrix product) and
checks both against nn.Conv2d / nn.MaxPool2d; the versions here are the reference the notebook compares
with. It then trains a LeNet-style CNN on MNIST with `train_cnn` (the same recipe `textimg-lessons bench
02_cnn` measures). The judges, CNN classifiers that later chapters use as metrics, are in `judges`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import FullFast, Recipe, get_device, seed_everything
from .histories import ClassifierHistory

# ---------------------------------------------------------------- shapes


def _pair(value, name: str) -> tuple:
    """An int or a pair of ints as (along H, along W)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def conv_output_size(size: int, kernel_size: int, padding: int = 0, stride: int = 1) -> int:
    """Output length of a convolution or pooling along one axis: floor((H + 2P - K) / S) + 1.

    Chapter 2 derives it: the kernel's first position is 0 and its last is H + 2P - K, in steps of S.

    Lesson: 02_cnn.ipynb, "Exercise 2 (1 point): the output-size formula".
    """
    for name, v in (("size", size), ("kernel_size", kernel_size), ("padding", padding), ("stride", stride)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, got {v!r}")
    if size < 1 or kernel_size < 1 or stride < 1 or padding < 0:
        raise ValueError(f"need size >= 1, kernel_size >= 1, stride >= 1, padding >= 0; got size={size}, "
                         f"kernel_size={kernel_size}, padding={padding}, stride={stride}")
    if kernel_size > size + 2 * padding:
        raise ValueError(f"kernel_size {kernel_size} is larger than the padded input {size} + 2*{padding} = "
                         f"{size + 2 * padding}; use a smaller kernel or more padding.")
    return (size + 2 * padding - kernel_size) // stride + 1


def _require_images(X: torch.Tensor, name: str = "X") -> None:
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(X).__name__}")
    if X.dim() != 4:
        raise ValueError(f"{name} must have 4 dimensions (N, C, H, W), got shape {tuple(X.shape)}; "
                         "for a single image use X[None] (or X[None, None] for a 2-D image).")
    if not X.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got {X.dtype}; convert with .float().")


def _require_conv_args(X, W, b):
    _require_images(X)
    if not isinstance(W, torch.Tensor) or W.dim() != 4:
        raise ValueError(f"W must be a 4-D tensor (C_out, C_in, KH, KW), got "
                         f"{tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__}")
    if X.shape[1] != W.shape[1]:
        raise ValueError(f"channel mismatch: X has {X.shape[1]} channels but W expects {W.shape[1]} "
                         f"(W is (C_out, C_in, KH, KW) = {tuple(W.shape)}).")
    if b is not None and (not isinstance(b, torch.Tensor) or b.shape != (W.shape[0],)):
        raise ValueError(f"b must have shape ({W.shape[0]},), one bias per output channel; got "
                         f"{tuple(b.shape) if isinstance(b, torch.Tensor) else b!r}")


# ---------------------------------------------------------------- convolution and pooling by hand


def conv2d_loops(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None,
                 stride=1, padding=0) -> torch.Tensor:
    """2-D convolution (cross-correlation, as nn.Conv2d) with explicit loops over output positions.

    X: (N, C_in, H, W); W: (C_out, C_in, KH, KW); b: (C_out,) or None. Returns (N, C_out, H_out, W_out) with
    out[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * Xpad[n, c, i*S + u, j*S + v]. Slow: for learning.

    Lesson: 02_cnn.ipynb, "Exercise 1 (2 points): convolution with loops".
    """
    _require_conv_args(X, W, b)
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    C_out, _, KH, KW = W.shape
    H_out = conv_output_size(X.shape[2], KH, ph, sh)
    W_out = conv_output_size(X.shape[3], KW, pw, sw)
    Xp = F.pad(X, (pw, pw, ph, ph))  # (N, C, H, W) => (N, C, H + 2P, W + 2P), zeros around
    out = X.new_zeros(X.shape[0], C_out, H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            patch = Xp[:, :, i * sh:i * sh + KH, j * sw:j * sw + KW]  # (N, C_in, KH, KW)
            for o in range(C_out):
                out[:, o, i, j] = (patch * W[o]).sum(dim=(1, 2, 3))
    if b is not None:
        out = out + b.view(1, -1, 1, 1)
    return out


def conv2d_unfold(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None,
                  stride=1, padding=0) -> torch.Tensor:
    """The same convolution as one matrix product: unfold the patches into columns, multiply by W.

    Every output position sees a C_in*KH*KW patch; unfold stacks them as columns (im2col), so the whole
    convolution is W.view(C_out, C_in*KH*KW) @ columns. This is how fast libraries do it.

    Lesson: 02_cnn.ipynb, "From loops to one matrix product".
    """
    _require_conv_args(X, W, b)
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    N, C_out, (KH, KW) = X.shape[0], W.shape[0], W.shape[2:]
    H_out = conv_output_size(X.shape[2], KH, ph, sh)
    W_out = conv_output_size(X.shape[3], KW, pw, sw)
    cols = F.unfold(X, (KH, KW), padding=(ph, pw), stride=(sh, sw))  # (N, C_in*KH*KW, H_out*W_out)
    out = W.reshape(C_out, -1) @ cols  # (C_out, C_in*KH*KW) @ (N, C_in*KH*KW, L) => (N, C_out, L)
    if b is not None:
        out = out + b.view(1, -1, 1)
    return out.view(N, C_out, H_out, W_out)  # (N, C_out, L) => (N, C_out, H_out, W_out)


def _pool_args(X, kernel_size, stride, padding):
    _require_images(X)
    k = _pair(kernel_size, "kernel_size")
    s = _pair(k if stride is None else stride, "stride")  # nn.MaxPool2d's default stride is the kernel size
    p = _pair(padding, "padding")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"padding {p} must be at most half the kernel size {k} (as in nn.MaxPool2d).")
    H_out = conv_output_size(X.shape[2], k[0], p[0], s[0])
    W_out = conv_output_size(X.shape[3], k[1], p[1], s[1])
    return k, s, p, H_out, W_out


def maxpool2d_loops(X: torch.Tensor, kernel_size=2, stride=None, padding=0) -> torch.Tensor:
    """Max-pooling with explicit loops: out[n, c, i, j] = max_{u, v} Xpad[n, c, i*S + u, j*S + v].

    Padding is -inf (never the max), as in nn.MaxPool2d. Each channel is pooled on its own.

    Lesson: 02_cnn.ipynb, "3. Max-pooling".
    """
    (kh, kw), (sh, sw), (ph, pw), H_out, W_out = _pool_args(X, kernel_size, stride, padding)
    Xp = F.pad(X, (pw, pw, ph, ph), value=-math.inf)
    out = X.new_empty(X.shape[0], X.shape[1], H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            window = Xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]  # (N, C, KH, KW)
            out[:, :, i, j] = window.amax(dim=(2, 3))
    return out


def maxpool2d_unfold(X: torch.Tensor, kernel_size=2, stride=None, padding=0) -> torch.Tensor:
    """Max-pooling as unfold + max over each column (channels unfolded separately, so they do not mix).

    Lesson: 02_cnn.ipynb, "Exercise 3 (2 points): max-pooling with unfold".
    """
    (kh, kw), (sh, sw), (ph, pw), H_out, W_out = _pool_args(X, kernel_size, stride, padding)
    N, C, H, W = X.shape
    Xp = F.pad(X, (pw, pw, ph, ph), value=-math.inf)
    cols = F.unfold(Xp.reshape(N * C, 1, H + 2 * ph, W + 2 * pw), (kh, kw), stride=(sh, sw))
    # cols: (N*C, KH*KW, H_out*W_out); the max over the window axis is the pooled value
    return cols.amax(dim=1).view(N, C, H_out, W_out)


# ---------------------------------------------------------------- models


class LeNet5(nn.Module):
    """LeNet-5 as in LeCun et al. (1998), with ReLU and max-pooling: the architecture whose parameters
    chapter 2 counts (61,706). conv 5x5 (6) -> pool -> conv 5x5 (16) -> pool -> 120 -> 84 -> 10.

    Lesson: 02_cnn.ipynb, "5. LeNet: convolution, pooling, then a classifier".
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)  # (N, 1, 28, 28) => (N, 6, 28, 28)
        self.conv2 = nn.Conv2d(6, 16, 5)  # (N, 6, 14, 14) => (N, 16, 10, 10)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 6, 28, 28) => (N, 6, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 16, 10, 10) => (N, 16, 5, 5)
        x = F.relu(self.fc1(x.flatten(1)))  # (N, 400) => (N, 120)
        return F.relu(self.fc2(x))  # (N, 120) => (N, 84)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.features(x))


class ModernLeNet(nn.Module):
    """Chapter 2's trained CNN: LeNet-5's layout (two 5x5 conv + pool stages, then two dense layers),
    wider, with batch norm after each convolution and dropout before the output (both help a small
    training set). Keeps `features` (the penultimate activations) like the judge.

    Lesson: 02_cnn.ipynb, "6. Training a LeNet-style CNN on MNIST".
    """

    def __init__(self, c1: int = 16, c2: int = 32, hidden: int = 128, dropout: float = 0.3,
                 num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, c1, 5, padding=2, bias=False), nn.BatchNorm2d(c1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(c1, c2, 5, bias=False), nn.BatchNorm2d(c2), nn.ReLU())
        self.fc1 = nn.Linear(c2 * 5 * 5, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def feature_maps(self, x: torch.Tensor) -> list:
        """Activations after each conv block: [(N, c1, 28, 28), (N, c2, 10, 10)] (for the figures)."""
        a1 = self.conv1(x)  # (N, 1, 28, 28) => (N, c1, 28, 28)
        a2 = self.conv2(F.max_pool2d(a1, 2))  # (N, c1, 14, 14) => (N, c2, 10, 10)
        return [a1, a2]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        _require_images(x)
        a2 = self.feature_maps(x)[1]
        return F.relu(self.fc1(F.max_pool2d(a2, 2).flatten(1)))  # (N, c2, 5, 5) => (N, c2*25) => (N, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.features(x)))  # (N, hidden) => (N, 10)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable numbers in `net` (weights and biases).

    Lesson: 02_cnn.ipynb, "Exercise 4 (2 points): count the parameters".
    """
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


# ---------------------------------------------------------------- data augmentation on tensors


def random_affine(X: torch.Tensor, max_shift: float = 2.0, max_degrees: float = 10.0,
                  scale=(0.9, 1.1), generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly shift (in pixels), rotate and scale each image of a batch (N, C, H, W); black fill.

    Small random moves teach the network that a digit one pixel to the left is the same digit, which
    matters when only 4,000 training images exist.

    Lesson: 02_cnn.ipynb, "6. Training a LeNet-style CNN on MNIST".
    """
    _require_images(X)
    N, _, H, W = X.shape
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    angle = (rand(N) * 2 - 1) * math.radians(max_degrees)
    s = scale[0] + rand(N) * (scale[1] - scale[0])
    tx = (rand(N) * 2 - 1) * max_shift * 2 / W  # affine_grid uses [-1, 1] coordinates: 1 pixel = 2/W
    ty = (rand(N) * 2 - 1) * max_shift * 2 / H
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(X), list(X.shape), align_corners=False)
    return F.grid_sample(X, grid, padding_mode="zeros", align_corners=False)


class AugmentedLoader:
    """Wrap a (X, y) loader so every batch is freshly augmented with `random_affine`.

    Lesson: 02_cnn.ipynb, "6. Training a LeNet-style CNN on MNIST".
    """

    def __init__(self, loader, seed: int = 0, **affine_kwargs):
        self.loader, self.affine_kwargs = loader, affine_kwargs
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for X, y in self.loader:
            yield random_affine(X, generator=self.generator, **self.affine_kwargs), y


# ---------------------------------------------------------------- training recipes

# Chapter 2's recipe for the CNN (train_cnn; the notebook and the benchmark read it). 20 epochs of the
# 4,000 offline images are ~1 minute of CPU; full 60k MNIST needs fewer, but the same recipe suits it.
RECIPE = Recipe(num_epochs=FullFast(20, 4), lr=3e-3, weight_decay=1e-4, batch_size=128)


def warmup_cosine(optimizer, num_epochs: int, warmup: int = 1):
    """Learning-rate factor per epoch: linear warm-up, then a cosine down to ~0 (stepped once per epoch).

    Lesson: 02_cnn.ipynb, "The recipe's pieces, one at a time".
    """
    def factor(epoch):
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        t = (epoch - warmup) / max(1, num_epochs - warmup)
        return 0.5 * (1 + math.cos(math.pi * t))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_classifier(net: nn.Module, data, num_epochs: int, lr: float = RECIPE["lr"],
                     weight_decay: float = RECIPE["weight_decay"], batch_size: int = RECIPE["batch_size"], augment: bool = True, seed: int = 0, desc: str = "training",
                     eval_every_epoch: bool = True, affine: dict | None = None):
    """AdamW + warm-up/cosine schedule + random affine augmentation; returns (net, history).

    history has "loss" per epoch, "test_acc" per epoch (if eval_every_epoch), "seconds" (training time
    including those evaluations) and "test_acc_final".

    Lesson: 02_cnn.ipynb, "6. Training a LeNet-style CNN on MNIST".
    """
    from .train import accuracy, fit
    seed_everything(seed)
    device = get_device()
    train_loader, _ = data.loaders(batch_size, seed=seed)
    if augment:
        train_loader = AugmentedLoader(train_loader, seed=seed, **(affine or {}))
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = warmup_cosine(optimizer, num_epochs)
    eval_fn = (lambda m: {"test_acc": accuracy(m, data.X_test, data.y_test, device=device)}) \
        if eval_every_epoch else None
    # history["cpu_seconds"]: on a shared machine wall time overstates what the recipe costs
    history = fit(net, train_loader, num_epochs, optimizer=optimizer, scheduler=scheduler, eval_fn=eval_fn,
                  device=device, desc=desc)
    net.eval()
    return net, ClassifierHistory(**vars(history), test_acc_final=accuracy(net, data.X_test, data.y_test, device=device))


def train_cnn(data=None, num_epochs: int | None = None, seed: int = 0, net: nn.Module | None = None):
    """Chapter 2's recipe: a ModernLeNet on MNIST; returns (net, history) with net in eval mode.

    AdamW (lr 3e-3, weight decay 1e-4), one warm-up epoch then a cosine schedule, batches of 128 with
    random shifts/rotations/scaling. 20 epochs in full mode (4,000 offline images: ~1 minute of CPU;
    the same recipe suits full 60k MNIST, where fewer epochs already suffice), 4 in fast mode.

    Lesson: 02_cnn.ipynb, "6. Training a LeNet-style CNN on MNIST".
    """
    from .data import load_mnist
    data = data if data is not None else load_mnist()
    num_epochs = num_epochs if num_epochs is not None else RECIPE["num_epochs"]
    seed_everything(seed)  # the initial weights too, so the notebook and the benchmark train the same network
    net = net if net is not None else ModernLeNet()
    return train_classifier(net, data, num_epochs, seed=seed, desc="CNN on MNIST")

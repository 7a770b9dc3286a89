"""Convolutional networks (chapter 2): convolution and pooling by hand, a LeNet-style CNN, and the judges.

Chapter 2 writes convolution and max-pooling twice (explicit loops, then unfold + matrix product) and
checks both against nn.Conv2d / nn.MaxPool2d; the versions here are the reference the notebook compares
with. It then trains a LeNet-style CNN on MNIST with `train_cnn` (the same recipe `textimg-lessons bench 02_cnn` measures).

The *judges* are small CNN classifiers that later chapters use as metrics: their accuracy on generated
images (does a "7" look like a 7?) and their penultimate-layer features (Frechet distance, chapter 3).
`load_judge("mnist")` / `load_judge("fashion_mnist")` load the shipped weights after verifying them.

Shipped judge weights (textimg_lessons/shipped/judge_<dataset>.safetensors) were produced by

    TEXTIMG_OFFLINE=1 OMP_NUM_THREADS=1 textimg-lessons train judges \
        --out textimg_lessons/shipped --datasets mnist          (and again with --datasets fashion_mnist)

(full mode, seed 0, CPU, torch 2.14; one thread each because the two ran side by side; the files' metadata
records the command under its earlier name, `python -m textimg_lessons.cnn train-judges`). It trains
with `train_judge`, saves with `save_judge` and prints the sha256 recorded in SHIPPED_SHA256 below.
Measured test accuracy of the shipped weights (also stored in each file's metadata):
    mnist          0.9840 on the offline 1,000-image test split (trained on the offline 4,000, augmented, 30 epochs)
    fashion_mnist  0.9099 on the 10,000-image Fashion-MNIST test set (trained on the 60,000, augmented, 4 epochs)
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import config
from .config import FullFast, Recipe, get_device, pick, seed_everything
from .datasets import NAMES, require_dataset

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


class Judge(nn.Module):
    """The judge classifier used as a metric by chapters 3-7 (defined in chapter 2).

    Input (N, 1, 28, 28) floats in [0, 1] => logits (N, 10). `features(x)` gives the (N, 128)
    penultimate-layer activations used for the Frechet distance.
    Three 3x3 conv blocks with batch norm (28 -> 14 -> 7 -> 3), then 576 -> 128 -> 10.

    Lesson: 02_cnn.ipynb, "8. The judges: classifiers that grade generated images".
    """

    feature_dim = 128

    def __init__(self, num_classes: int = 10, widths=(16, 32, 64), dropout: float = 0.3):
        super().__init__()
        layers, c_in = [], 1
        for c in widths:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c_in = c
        self.body = nn.Sequential(*layers)  # (N, 1, 28, 28) => (N, 64, 3, 3)
        self.fc = nn.Linear(c_in * 3 * 3, self.feature_dim)  # (N, 576) => (N, 128)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"the judge takes images shaped (N, 1, 28, 28), got {tuple(x.shape)}; "
                             "reshape with x.view(-1, 1, 28, 28).")
        return F.relu(self.fc(self.body(x).flatten(1)))  # (N, 1, 28, 28) => (N, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))  # (N, 128) => (N, 10)


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


def _warmup_cosine(optimizer, num_epochs: int, warmup: int = 1):
    """Learning-rate factor per epoch: linear warm-up, then a cosine down to ~0 (stepped once per epoch)."""
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
    scheduler = _warmup_cosine(optimizer, num_epochs)
    eval_fn = (lambda m: {"test_acc": accuracy(m, data.X_test, data.y_test, device=device)}) \
        if eval_every_epoch else None
    # history["cpu_seconds"]: on a shared machine wall time overstates what the recipe costs
    history = fit(net, train_loader, num_epochs, optimizer=optimizer, scheduler=scheduler, eval_fn=eval_fn,
                  device=device, desc=desc)
    net.eval()
    history["test_acc_final"] = accuracy(net, data.X_test, data.y_test, device=device)
    return net, history


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
    seed_everything(seed)  # the initial weights too, so the notebook and bench() train the same network
    net = net if net is not None else ModernLeNet()
    return train_classifier(net, data, num_epochs, seed=seed, desc="CNN on MNIST")



# ---------------------------------------------------------------- judges

JUDGE_DATASETS = NAMES
# sha256 of the shipped weight files; `textimg-lessons train judges` prints new ones.
SHIPPED_SHA256 = {
    "mnist": "1abea325865a99138d280ffee7bb44452320795ee75298265bd9dce23bd0051e",
    "fashion_mnist": "e1fa2176689c9e85057426c66cb902ea061ef56961b9505e707d030e352b53aa",
}
JUDGE_FORMAT = "textimg_lessons.cnn.Judge/v1"


class JudgeFileError(ValueError):
    """A judge weight file is missing, unreadable, corrupted or for another dataset."""


def shipped_judge_path(dataset: str) -> Path:
    return config.shipped_data_dir() / f"judge_{require_dataset(dataset)}.safetensors"


def local_judge_path(dataset: str) -> Path:
    """Where a judge trained on this machine is cached (never over the shipped file)."""
    suffix = ".fast" if config.fast_mode() else ""
    return config.data_dir() / "judges" / f"judge_{require_dataset(dataset)}{suffix}.safetensors"


def _tensor_digest(state: dict) -> str:
    """sha256 over the names, shapes and bytes of every tensor (stored in the file to detect corruption)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    from .data import sha256_of
    return sha256_of(path)


def save_judge(judge: Judge, path, dataset: str, metadata: dict | None = None) -> Path:
    """Save a judge's state_dict as safetensors with its dataset, accuracy and a tensor digest.

    Lesson: 02_cnn.ipynb, "8. The judges: classifiers that grade generated images".
    """
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in judge.state_dict().items()}
    meta = {"format": JUDGE_FORMAT, "dataset": require_dataset(dataset), "tensor_sha256": _tensor_digest(state)}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)  # write then rename, so an interrupted save never leaves a half file behind
    return path


def verify_judge_file(path, dataset: str, expected_sha256: str | None = None) -> tuple:
    """Read and check a judge file; return (state_dict, metadata) or raise JudgeFileError saying why.

    Checks: the file exists and parses as safetensors, it was written by `save_judge` for `dataset`, the
    tensor digest stored in it matches its tensors (detects flipped bytes), the tensors fit a Judge and
    are finite, and (if given) the whole file's sha256 equals `expected_sha256`.
    """
    from safetensors import safe_open
    path, key = Path(path), require_dataset(dataset)
    if not path.exists():
        raise JudgeFileError(f"{path.name} does not exist")
    if expected_sha256 is not None and _file_sha256(path) != expected_sha256:
        raise JudgeFileError(f"{path.name} has sha256 {_file_sha256(path)[:12]}..., not the recorded "
                             f"{expected_sha256[:12]}...: it is corrupted or not the shipped file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # truncated or garbled files raise various errors inside safetensors
        raise JudgeFileError(f"{path.name} is not a readable safetensors file ({type(e).__name__}: {e})") from None
    if meta.get("format") != JUDGE_FORMAT:
        raise JudgeFileError(f"{path.name} was not written by save_judge (format {meta.get('format')!r})")
    if meta.get("dataset") != key:
        raise JudgeFileError(f"{path.name} is a judge for {meta.get('dataset')!r}, not {key!r}")
    if _tensor_digest(state) != meta.get("tensor_sha256"):
        raise JudgeFileError(f"{path.name} is corrupted: its tensors do not match the digest stored in it")
    expected = Judge().state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise JudgeFileError(f"{path.name} does not fit the Judge architecture (different layers or shapes)")
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise JudgeFileError(f"{path.name} contains NaN or infinite weights")
    return state, meta


def load_judge_file(path, dataset: str, device=None, expected_sha256: str | None = None) -> Judge:
    """A verified Judge from `path`, in eval mode on `device` (raises JudgeFileError if not trustworthy)."""
    state, meta = verify_judge_file(path, dataset, expected_sha256)
    judge = Judge()
    judge.load_state_dict(state)
    judge.metadata = meta
    return judge.to(device or get_device()).eval()


def train_judge(dataset: str, num_epochs: int | None = None, seed: int = 0):
    """Train a Judge on `dataset` with augmentation; return (judge, history) with judge in eval mode.

    Default epochs: MNIST 30 passes over its (offline 4,000-image) training set, capped so that full
    60k MNIST gets ~3 epochs; Fashion-MNIST 4 epochs of 60k. Fast mode: 3 epochs on the small subset.

    Lesson: 02_cnn.ipynb, "8. The judges: classifiers that grade generated images".
    """
    from .data import load_dataset
    key = require_dataset(dataset)
    data = load_dataset(key)
    if num_epochs is None:
        budget = {"mnist": 120_000, "fashion_mnist": 240_000}[key]  # training images seen in total
        num_epochs = pick(int(min(40, max(3, round(budget / len(data.X_train))))), 3)
    # Fashion-MNIST clothes are not rotated in the data set; milder moves than for handwriting.
    affine = {"mnist": {}, "fashion_mnist": {"max_shift": 1.0, "max_degrees": 3.0, "scale": (0.95, 1.05)}}[key]
    judge, history = train_classifier(Judge(), data, num_epochs, seed=seed, desc=f"judge {key}",
                                      eval_every_epoch=False, affine=affine)
    history["test_acc"] = history["test_acc_final"]
    history["dataset"], history["source"], history["num_epochs"] = key, data.source, num_epochs
    return judge, history


def load_judge(dataset: str, device=None, train_if_missing: bool = True) -> Judge:
    """The judge for "mnist" or "fashion_mnist", in eval mode; says where it came from.

    Order: the shipped weights (checked against their recorded sha256 and internal digest), else a judge
    trained earlier on this machine (in data_dir()/judges/), else train one now with `train_judge` and
    cache it there (the shipped file is never overwritten). Fast mode loads the same full-quality
    shipped weights, because a metric needs a good judge.

    Lesson: 02_cnn.ipynb, "8. The judges: classifiers that grade generated images".
    """
    key = require_dataset(dataset)
    device = device or get_device()
    shipped = shipped_judge_path(key)
    try:
        judge = load_judge_file(shipped, key, device, SHIPPED_SHA256.get(key))
        print(f"[judge] {key}: loaded the shipped weights ({shipped.name}, test accuracy "
              f"{judge.metadata.get('test_accuracy', '?')}).")
        return judge
    except JudgeFileError as e:
        print(f"[judge] {key}: shipped weights not usable: {e}.")
    local = local_judge_path(key)
    if local.exists():
        try:
            judge = load_judge_file(local, key, device)
            print(f"[judge] {key}: loaded a judge trained earlier on this machine ({local.name}).")
            return judge
        except JudgeFileError as e:
            print(f"[judge] {key}: cached judge not usable either: {e}.")
    if not train_if_missing:
        raise JudgeFileError(f"no usable judge for {key}: restore the shipped file with `git checkout -- "
                             f"textimg_lessons/shipped/{shipped.name}` (or reinstall the course), or call "
                             f"load_judge({key!r}, train_if_missing=True) to train one.")
    print(f"[judge] {key}: training a new judge (this takes a few minutes on a CPU)...")
    judge, history = train_judge(key)
    save_judge(judge, local, key, {"test_accuracy": f"{history['test_acc']:.4f}",
                                   "num_epochs": history["num_epochs"], "source": history["source"]})
    print(f"[judge] {key}: trained (test accuracy {history['test_acc']:.4f}) and saved as {local.name} "
          "in the data cache.")
    return judge.to(device).eval()


def _require_judge(judge, batch_size) -> None:
    if not isinstance(judge, Judge):
        raise TypeError(f"judge must be a Judge (from load_judge), got {type(judge).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def judge_features(judge: Judge, X: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Penultimate-layer features (N, 128) of images X (N, 1, 28, 28) in [0, 1], on the CPU.

    The same as metrics.judge_features (which checks the images), for a Judge only.

    Lesson: 02_cnn.ipynb, "8. The judges: classifiers that grade generated images".
    """
    from .metrics import judge_features as features
    _require_judge(judge, batch_size)
    return features(judge, X, batch_size)


def judge_predict(judge: Judge, X: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted classes (N,) int64 of images X (N, 1, 28, 28) in [0, 1], on the CPU.

    Lesson: 02_cnn.ipynb, "8. The judges: classifiers that grade generated images".
    """
    from .metrics import judge_classes
    _require_judge(judge, batch_size)
    return judge_classes(judge, X, batch_size)


# ---------------------------------------------------------------- rebuilding the shipped judges

TRAIN_JUDGES_COMMAND = "textimg-lessons train judges"


def train_judges(out_dir, datasets=JUDGE_DATASETS, seed: int = 0) -> list:
    """Train and save a judge per dataset in out_dir (what `textimg-lessons train judges` runs).

    Prints and returns one summary per judge, with the file's sha256 to paste into SHIPPED_SHA256.
    """
    out_dir = Path(out_dir)
    report = []
    for key in datasets:
        key = require_dataset(key)
        start = time.perf_counter()
        judge, history = train_judge(key, seed=seed)
        path = out_dir / f"judge_{key}.safetensors"
        save_judge(judge, path, key, {
            "test_accuracy": f"{history['test_acc']:.4f}", "num_epochs": history["num_epochs"],
            "seed": seed, "source": history["source"], "command": TRAIN_JUDGES_COMMAND})
        report.append({"dataset": key, "test_accuracy": round(history["test_acc"], 4),
                       "num_epochs": history["num_epochs"], "seconds": round(time.perf_counter() - start, 1),
                       "file": path.name, "bytes": path.stat().st_size, "sha256": _file_sha256(path)})
        print(json.dumps(report[-1]))
    return report

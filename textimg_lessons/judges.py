"""The judges (chapter 2): small CNN classifiers that later chapters use as metrics.

A judge's reading of a generated image (does a "7" look like a 7?) and its penultimate-layer features
(Frechet distance, chapter 3) measure generators in chapters 3 to 6. `load_judge("mnist")` / `load_judge("fashion_mnist")` load the shipped weights after verifying them.

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
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import config
from .cnn import train_classifier
from .config import get_device, pick
from .datasets import NAMES, require_dataset
from .histories import JudgeHistory, ShippedFile
from .weights import WeightsFileError, read_weights, write_weights


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


JUDGE_DATASETS = NAMES
# sha256 of the shipped weight files; `textimg-lessons train judges` prints new ones.
SHIPPED_SHA256 = {
    "mnist": "1abea325865a99138d280ffee7bb44452320795ee75298265bd9dce23bd0051e",
    "fashion_mnist": "e1fa2176689c9e85057426c66cb902ea061ef56961b9505e707d030e352b53aa",
}
JUDGE_FORMAT = "textimg_lessons.cnn.Judge/v1"  # stored in the shipped files: kept from when Judge lived in cnn


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
    state = {k: v.detach().cpu().contiguous() for k, v in judge.state_dict().items()}
    meta = {"format": JUDGE_FORMAT, "dataset": require_dataset(dataset), "tensor_sha256": _tensor_digest(state)}
    meta.update(metadata or {})
    return write_weights(path, state, meta)


def verify_judge_file(path, dataset: str, expected_sha256: str | None = None) -> tuple:
    """Read and check a judge file; return (state_dict, metadata) or raise JudgeFileError saying why.

    Checks: the file exists and parses as safetensors, it was written by `save_judge` for `dataset`, the
    tensor digest stored in it matches its tensors (detects flipped bytes), the tensors fit a Judge and
    are finite, and (if given) the whole file's sha256 equals `expected_sha256`.
    """
    path, key = Path(path), require_dataset(dataset)
    if not path.exists():
        raise JudgeFileError(f"{path.name} does not exist")
    if expected_sha256 is not None and _file_sha256(path) != expected_sha256:
        raise JudgeFileError(f"{path.name} has sha256 {_file_sha256(path)[:12]}..., not the recorded "
                             f"{expected_sha256[:12]}...: it is corrupted or not the shipped file")
    try:
        state, meta = read_weights(path)
    except WeightsFileError as e:
        raise JudgeFileError(str(e)) from None
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
    return judge, JudgeHistory(**vars(history), test_acc=history.test_acc_final, dataset=key, source=data.source,
                               num_epochs=num_epochs)


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
        report.append(ShippedFile(key, path.name, round(time.perf_counter() - start, 1), {
            "test_accuracy": round(history["test_acc"], 4), "num_epochs": history["num_epochs"],
            "bytes": path.stat().st_size, "sha256": _file_sha256(path)}))
        print(report[-1].line(), flush=True)
    return report

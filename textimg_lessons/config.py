"""Course-wide settings read from the environment (chapter 0 explains each).

TEXTIMG_FAST=1     shrink data, epochs and widths so a notebook runs in seconds (tests set it)
TEXTIMG_DEVICE=... force a device ("cpu", "cuda", "cuda:1", "mps")
TEXTIMG_OFFLINE=1  never try the network; use the offline data and models
TEXTIMG_DATA=DIR   where downloads and decompressed data are cached (default: <repo>/data/cache
                   when running from a clone, else ~/.cache/textimg_lessons)
"""
from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported inside the functions that use it: the command line starts without it
    import torch

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={os.environ[name]!r} is not understood: set it to 1 or 0.")


def fast_mode() -> bool:
    """True when TEXTIMG_FAST is set: every chapter shrinks its data and training."""
    return _flag("TEXTIMG_FAST")


def offline() -> bool:
    """True when TEXTIMG_OFFLINE is set: loaders skip every download attempt."""
    return _flag("TEXTIMG_OFFLINE")


def pick(full, fast):
    """Return `fast` in fast mode and `full` otherwise (one switch for every size in the course)."""
    return fast if fast_mode() else full


@dataclass(frozen=True)
class FullFast:
    """One recipe setting whose value depends on the mode: `full` normally, `fast` in fast mode."""
    full: object
    fast: object

    def __str__(self) -> str:
        return f"{self.full} (fast mode: {self.fast})"


class Recipe(Mapping):
    """A chapter's training settings, read-only; the one form every chapter's recipe takes.

    recipe["lr"] is a setting's value; for a FullFast setting it is the current mode's value, so the full
    and fast numbers stand side by side in one place. recipe.full(key) / recipe.fast(key) read one mode
    explicitly, and str(recipe) lists every setting with both values.
    """

    def __init__(self, **settings):
        self._settings = MappingProxyType(dict(settings))

    def __getitem__(self, key: str):
        value = self._settings[key]
        return pick(value.full, value.fast) if isinstance(value, FullFast) else value

    def __iter__(self):
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def full(self, key: str):
        value = self._settings[key]
        return value.full if isinstance(value, FullFast) else value

    def fast(self, key: str):
        value = self._settings[key]
        return value.fast if isinstance(value, FullFast) else value

    def __str__(self) -> str:
        width = max(map(len, self._settings), default=0) + 1
        return "\n".join(f"{k:{width}s}{v}" for k, v in self._settings.items())

    def __repr__(self) -> str:
        return f"Recipe({', '.join(f'{k}={v!r}' for k, v in self._settings.items())})"


def get_device() -> torch.device:
    """cuda, then mps, then cpu; TEXTIMG_DEVICE overrides (and is checked to exist)."""
    import torch
    wanted = os.environ.get("TEXTIMG_DEVICE", "").strip()
    if wanted:
        try:
            device = torch.device(wanted)
        except RuntimeError as e:
            raise ValueError(f"TEXTIMG_DEVICE={wanted!r} is not a device name; use cpu, cuda or mps.") from e
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"TEXTIMG_DEVICE={wanted!r} but this machine has no CUDA GPU; unset it or use cpu.")
        if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise RuntimeError(f"TEXTIMG_DEVICE={wanted!r} but MPS is not available here; unset it or use cpu.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a torch.Generator seeded the same way."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def repo_root() -> Path | None:
    """The clone this package runs from, or None when installed elsewhere (e.g. on Colab from a wheel)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").exists() and (root / "notebooks").is_dir() else None


class DataDirError(RuntimeError):
    """The data cache folder cannot be used (a file, not writable, not creatable); the message says how to fix it."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem} {fix}")
        self.problem, self.fix = problem, fix


def data_dir() -> Path:
    """Directory for downloads and decompressed data; created if missing.

    Raises DataDirError, with the fix, when the folder is a file or cannot be created or written: the course
    writes downloads, trained judges and cached embeddings there, so a broken cache must fail early and clearly.
    """
    env = os.environ.get("TEXTIMG_DATA", "").strip()
    if env:
        path = Path(env).expanduser()
    elif repo_root() is not None:
        path = repo_root() / "data" / "cache"
    else:
        path = Path.home() / ".cache" / "textimg_lessons"
    where = f"The data cache {display_path(path)}" + (" (from TEXTIMG_DATA)" if env else "")
    fix = "Set TEXTIMG_DATA to a folder you can write, e.g. `export TEXTIMG_DATA=~/textimg-data`, then restart."
    if path.exists() and not path.is_dir():
        raise DataDirError(f"{where} is a file, not a folder.", fix)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # no permission, a read-only file system, a parent that is a file
        raise DataDirError(f"{where} cannot be created ({e.strerror or type(e).__name__}).", fix) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"{where} is not writable.", fix)
    return path


def shipped_data_dir() -> Path:
    """Small data files that ship inside the package (see data/README.md for sources and licences)."""
    return Path(__file__).resolve().parent / "shipped"


def display_path(path) -> str:
    """A path as a person should read it: relative to the course folder or to ~, never a machine's full path."""
    path = Path(path).resolve()
    root = repo_root()
    if root is not None and path.is_relative_to(root):
        return str(path.relative_to(root)) or "."
    home = Path.home().resolve()
    if path.is_relative_to(home):
        return "~/" + str(path.relative_to(home))
    return str(path)

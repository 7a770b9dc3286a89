"""Figures used across the course: image grids and training curves (first used in chapter 1)."""
from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import torch


def show_images(images, labels=None, nrow: int | None = None, title: str | None = None,
                cmap: str = "gray", size: float = 1.2):
    """Show (N, 1, H, W) or (N, H, W) images in [0, 1] as a grid; labels (strings or ints) go under each.

    Returns the matplotlib Figure.
    """
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(images)
    images = images.detach().cpu().float()
    if images.dim() == 4:
        if images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, 1, H, W), (N, 3, H, W) or (N, H, W); got {tuple(images.shape)}")
        images = images.permute(0, 2, 3, 1)  # (N, C, H, W) => (N, H, W, C) for imshow
        if images.shape[-1] == 1:
            images = images[..., 0]
    elif images.dim() != 3:
        raise ValueError(f"images must be (N, 1, H, W), (N, 3, H, W) or (N, H, W); got {tuple(images.shape)}")
    n = images.shape[0]
    if n == 0:
        raise ValueError("show_images got an empty batch (0 images); pass at least one image.")
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels; pass one label per image.")
    nrow = nrow or min(n, 8)
    ncol_rows = math.ceil(n / nrow)
    fig, axes = plt.subplots(ncol_rows, nrow, figsize=(size * nrow, size * ncol_rows * (1.25 if labels is not None else 1)),
                             squeeze=False)
    for i, a in enumerate(axes.flat):
        a.axis("off")
        if i < n:
            a.imshow(images[i].clamp(0, 1), cmap=cmap, vmin=0, vmax=1)
            if labels is not None:
                a.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: Mapping, keys=None, title: str | None = None, xlabel: str = "step", ax=None):
    """Plot training curves from a history: any trainer's named history (histories.py) or a dict of lists
    (e.g. {"loss": [...], "test_acc": [...]})."""
    if not isinstance(history, Mapping) or not history:
        raise ValueError("history must be a trainer's history or a non-empty dict of lists, like the one fit() "
                         "returns.")
    keys = list(keys) if keys is not None else [k for k, v in history.items() if isinstance(v, (list, tuple)) and v]
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"history has no {missing}; it has {sorted(history)}.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        ys = history[k]
        ax.plot(range(1, len(ys) + 1), ys, label=k, marker="o" if len(ys) < 30 else None)
    ax.set_xlabel(xlabel)
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure

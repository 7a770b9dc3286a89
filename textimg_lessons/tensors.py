"""Argument checks on image batches, shared by the chapters that take images (one wording for one mistake)."""
from __future__ import annotations

import torch


def require_image_batch(images, name: str = "images") -> None:
    """A torch.Tensor of shape (N, 1, 28, 28) with N >= 1, or an error that says how to fix it."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, 1, 28, 28), got {type(images).__name__}.")
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"{name} must have shape (N, 1, 28, 28), got {tuple(images.shape)}. "
                         "Reshape flat images with x.view(-1, 1, 28, 28).")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 images); pass at least one image.")

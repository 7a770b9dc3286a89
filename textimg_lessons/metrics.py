"""Measuring generated images with a judge classifier (chapter 3 defines them; chapters 4 and 6 reuse them).

No Inception network is downloaded: the "judge" is the small CNN classifier that chapter 2 trains
(`textimg_lessons.judges.load_judge(dataset)`). A judge is an `nn.Module` whose forward returns class
logits (N, num_classes) and whose `.features(x)` returns penultimate-layer features (N, D).

- `frechet_distance`: distance between two Gaussians fitted to two feature sets (FID, on judge features).
- `judge_frechet_distance`: the same, straight from real and generated images.
- `class_histogram`, `class_coverage`: which classes a generator produces, and how many it covers.
- `judge_confidence`: how sure the judge is about generated images (blurry in-between images score low).
- `diversity`: mean pairwise L2 distance within a set of images (a collapsed set scores near 0).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from .tensors import require_image_batch

__all__ = ["frechet_distance", "judge_frechet_distance", "class_histogram", "class_coverage",
           "judge_confidence", "diversity", "require_images", "judge_features", "judge_logits", "judge_classes",
           "prompt_adherence", "confusion_matrix"]


# ---------------------------------------------------------------- input checks

def _require_features(name: str, feats) -> Tensor:
    if not isinstance(feats, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, D), got {type(feats).__name__}.")
    if feats.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N samples, D features), got shape {tuple(feats.shape)}. "
                         "Flatten per-sample features with feats.flatten(1).")
    if feats.shape[0] < 2:
        raise ValueError(f"{name} has {feats.shape[0]} samples; a covariance needs at least 2 (use a few hundred "
                         "or more for a stable Frechet distance).")
    if feats.shape[1] < 1:
        raise ValueError(f"{name} has 0 features per sample; pass (N, D) with D >= 1.")
    if not feats.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got {feats.dtype}; convert with .float().")
    if not torch.isfinite(feats).all():
        raise ValueError(f"{name} contains NaN or inf; check the network that produced the features.")
    return feats.detach().to(device="cpu", dtype=torch.float64)


def require_images(images, name: str = "images") -> Tensor:
    """Check that `images` is a non-empty float batch (N, 1, 28, 28) in [0, 1]; return it detached."""
    require_image_batch(images, name)
    if not images.is_floating_point():
        raise TypeError(f"{name} must be float in [0, 1], got {images.dtype}; use images.float() / 255.")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{name} must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]. A generator that ends "
                         "in tanh outputs [-1, 1]: map with (x + 1) / 2 (gan.sample does this for you).")
    return images.detach()


# ---------------------------------------------------------------- judge outputs

def _batched(fn, images: Tensor, batch_size: int) -> Tensor:
    return torch.cat([fn(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


@torch.no_grad()
def judge_features(judge: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """Penultimate-layer features of the judge for a batch of images: (N, 1, 28, 28) => (N, D), on the CPU.

    Lesson: 03_gan.ipynb, "5. Measuring generated images with the judge".
    """
    images = require_images(images)
    if not hasattr(judge, "features"):
        raise TypeError(f"the judge ({type(judge).__name__}) has no .features(x) method; "
                        "load one with textimg_lessons.judges.load_judge(dataset).")
    device = next(judge.parameters()).device
    was_training = judge.training
    judge.eval()
    try:
        return _batched(lambda x: judge.features(x.to(device)).flatten(1).float().cpu(), images, batch_size)
    finally:
        judge.train(was_training)


@torch.no_grad()
def judge_logits(judge: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """Class logits of the judge: (N, 1, 28, 28) => (N, num_classes), on the CPU.

    Lesson: 03_gan.ipynb, "5. Measuring generated images with the judge".
    """
    images = require_images(images)
    device = next(judge.parameters()).device
    was_training = judge.training
    judge.eval()
    try:
        return _batched(lambda x: judge(x.to(device)).float().cpu(), images, batch_size)
    finally:
        judge.train(was_training)


def judge_classes(judge: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """The judge's class (N,) for each image; any classifier module returning logits works."""
    return judge_logits(judge, images, batch_size).argmax(1)


# ---------------------------------------------------------------- prompt adherence (chapter 6)

def prompt_adherence(judge, images: Tensor, requested: Tensor) -> float:
    """Share of generated images that the judge classifies as the requested class (chapter 6).

    judge: any classifier returning logits (N, num_classes); images (N, 1, 28, 28) in [0, 1];
    requested (N,) class indices. 1.0 = every image shows what was asked for; chance is 1 / num_classes.

    Lesson: 06_text_to_image.ipynb, "Exercise 3: prompt adherence".
    """
    requested = torch.as_tensor(requested).long().flatten()
    if len(images) != len(requested):
        raise ValueError(f"{len(images)} images but {len(requested)} requested classes; pass one class per image.")
    if len(images) == 0:
        raise ValueError("adherence of zero images is undefined; generate at least one image.")
    return float((judge_classes(judge, images) == requested).float().mean())


def confusion_matrix(requested: Tensor, predicted: Tensor, num_classes: int = 10) -> Tensor:
    """(num_classes, num_classes) counts: row = requested class, column = the judge's class.

    Lesson: 06_text_to_image.ipynb, "Where synonyms go wrong".
    """
    flat = requested.long() * num_classes + predicted.long()
    return torch.bincount(flat, minlength=num_classes ** 2).view(num_classes, num_classes)


# ---------------------------------------------------------------- Frechet distance

class _GivenFeatures(nn.Module):
    """Feature "extractor" for torchmetrics that passes features through: we compute them ourselves."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features  # torchmetrics reads this instead of probing with a 299x299 image

    def forward(self, feats: Tensor) -> Tensor:
        return feats


def frechet_distance(feats_a: Tensor, feats_b: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) and (M, D), N, M >= 2.

    d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), with unbiased covariances S (divide by N - 1).
    Computed in float64 by torchmetrics' FrechetInceptionDistance, fed our own features instead of
    Inception's. 0 for identical sets; it grows with both a shifted mean and a different spread.

    Lesson: 03_gan.ipynb, "5. Measuring generated images with the judge".
    """
    a = _require_features("feats_a", feats_a)
    b = _require_features("feats_b", feats_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a has {a.shape[1]} features per sample but feats_b has {b.shape[1]}; "
                         "compute both with the same feature extractor.")
    fid = FrechetInceptionDistance(feature=_GivenFeatures(a.shape[1]))
    fid.update(a, real=True)
    fid.update(b, real=False)
    # Rounding can make the eigenvalues of S_a S_b slightly negative, so identical sets give ~ -1e-12.
    return max(float(fid.compute()), 0.0)


def judge_frechet_distance(judge: nn.Module, real_images: Tensor, fake_images: Tensor,
                           batch_size: int = 500) -> float:
    """Frechet distance between real and generated images (N, 1, 28, 28) in [0, 1], on judge features.

    The value depends on the judge and on the number of images (it is biased upwards for small sets),
    so compare models only with the same judge and the same N.

    Lesson: 03_gan.ipynb, "5. Measuring generated images with the judge".
    """
    require_images(real_images, "real_images")
    require_images(fake_images, "fake_images")
    return frechet_distance(judge_features(judge, real_images, batch_size),
                            judge_features(judge, fake_images, batch_size))


# ---------------------------------------------------------------- classes, confidence, diversity

def class_histogram(judge: nn.Module, images: Tensor, num_classes: int = 10, batch_size: int = 500) -> Tensor:
    """Share of `images` that the judge puts in each class: (num_classes,) float, summing to 1.

    Lesson: 03_gan.ipynb, "5. Measuring generated images with the judge".
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    logits = judge_logits(judge, images, batch_size)
    if logits.dim() != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"the judge returned logits of shape {tuple(logits.shape)}, expected (N, {num_classes}); "
                         "pass num_classes equal to the judge's number of classes.")
    counts = torch.bincount(logits.argmax(1), minlength=num_classes).float()
    return counts / counts.sum()


def class_coverage(hist: Tensor, min_share: float = 0.05) -> int:
    """Number of classes whose share in `hist` is at least `min_share` (10 of 10 = no class missing).

    Lesson: 03_gan.ipynb, "5. Measuring generated images with the judge".
    """
    if not isinstance(hist, Tensor):
        hist = torch.as_tensor(hist)
    if hist.dim() != 1 or hist.numel() == 0:
        raise ValueError(f"hist must be a non-empty 1-D tensor of class shares, got shape {tuple(hist.shape)}; "
                         "make it with class_histogram(judge, images).")
    if (hist < 0).any() or abs(float(hist.sum()) - 1.0) > 1e-4:
        raise ValueError(f"hist must hold shares >= 0 that sum to 1 (got sum {float(hist.sum()):.4g}); "
                         "divide counts by their total.")
    if not 0 <= min_share <= 1:
        raise ValueError(f"min_share must be in [0, 1], got {min_share}")
    return int((hist >= min_share - 1e-12).sum())


def judge_confidence(judge: nn.Module, images: Tensor, batch_size: int = 500) -> float:
    """Mean over images of the judge's largest softmax probability (1 = every image clearly one class).

    Lesson: 03_gan.ipynb, "5. Measuring generated images with the judge".
    """
    logits = judge_logits(judge, images, batch_size)
    return float(torch.softmax(logits.double(), dim=1).max(dim=1).values.mean())


def diversity(images: Tensor) -> float:
    """Mean L2 distance between all pairs of images in a set (N, ...), N >= 2; near 0 means collapse.

    Lesson: 03_gan.ipynb, "6. Mode collapse, provoked and measured".
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor (N, ...), got {type(images).__name__}.")
    if images.dim() < 2:
        raise ValueError(f"images must be a batch (N, ...) with at least 2 dimensions, "
                         f"got shape {tuple(images.shape)}.")
    if images.shape[0] < 2:
        raise ValueError(f"diversity needs at least 2 images to form a pair, got {images.shape[0]}.")
    flat = images.detach().flatten(1).double().cpu()  # (N, 1, 28, 28) => (N, 784)
    return float(torch.nn.functional.pdist(flat).mean())  # pdist: the N(N-1)/2 distances i < j

"""Measuring a text-to-image generator, whatever its kind (chapter 7 compares chapter 6's cVAE with diffusion).

A generator is measured through one callable, `sampler(texts, n_per_prompt, seed) -> images`, that returns
(len(texts) * n_per_prompt, 1, 28, 28) images in [0, 1], grouped by prompt. The measures:

  adherence      share of images the judge puts in the requested class (a forced choice: even a grey blob
                 gets *some* class), per caption family;
  confident      share the judge puts in the requested class with probability >= 0.5, so a blob that the judge
                 reads as "sneaker, 18%" does not count;
  frechet        Frechet distance on judge features between images for the test captions and the test images;
  diversity      mean pairwise L2 distance between 16 images of one prompt, averaged over the training-family
                 prompts (real test images of one class: about 8.7 on Fashion-MNIST).
Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
"""
from __future__ import annotations

from typing import Callable

import torch

from . import captions
from .datasets import require_dataset
from .metrics import diversity, judge_frechet_distance, judge_logits

Sampler = Callable[[list, int, int], torch.Tensor]
CONFIDENT = 0.5


def prompt_set(dataset: str, family: str):
    """(texts, requested classes) of chapter 6's class prompts for one caption family.

    Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
    """
    prompts = captions.class_prompts(dataset, family)
    texts = [p for c in sorted(prompts) for p in prompts[c]]
    return texts, torch.tensor([c for c in sorted(prompts) for _ in prompts[c]])


def judged(judge, images: torch.Tensor, requested: torch.Tensor, min_prob: float = CONFIDENT) -> dict:
    """{"adherence": forced-choice share, "confident": share with p(requested) >= min_prob}.

    Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
    """
    requested = torch.as_tensor(requested).long().flatten()
    if len(images) != len(requested) or len(images) == 0:
        raise ValueError(f"need one requested class per image and at least one image; got {len(images)} images "
                         f"and {len(requested)} classes.")
    probs = torch.softmax(judge_logits(judge, images).double(), dim=1)
    p_req = probs[torch.arange(len(requested)), requested]
    return {"adherence": float((probs.argmax(1) == requested).double().mean()),
            "confident": float((p_req >= min_prob).double().mean())}


def adherence_by_family(sampler: Sampler, judge, dataset: str, n_per_prompt: int = 20,
                        families=("train", "heldout_phrasing", "heldout_synonym"), seed: int = 0) -> dict:
    """{family: {"adherence", "confident", "prompts"}} for the chapter's class prompts.

    Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
    """
    out = {}
    for family in families:
        texts, labels = prompt_set(dataset, family)
        images = sampler(texts, n_per_prompt, seed)
        out[family] = {**judged(judge, images, labels.repeat_interleave(n_per_prompt)), "prompts": len(texts)}
    return out


def quality(sampler: Sampler, judge, data, n_images: int = 2000, per_prompt: int = 16, seed: int = 0) -> dict:
    """{"frechet", "diversity", "real_diversity", "n_images"} as chapter 6's quality report defines them.

    Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
    """
    dataset = require_dataset(data.name)
    n = min(n_images, len(data.X_test))
    caps = captions.make_captions(data, "test", "train", seed=seed)[:n]
    fake = sampler(caps, 1, seed)
    fd = judge_frechet_distance(judge, data.X_test[:n], fake)
    texts, _ = prompt_set(dataset, "train")
    imgs = sampler(texts, per_prompt, seed + 1).view(len(texts), per_prompt, 1, 28, 28)
    div = sum(diversity(imgs[i]) for i in range(len(texts))) / len(texts)
    real = [data.X_test[data.y_test == c][:per_prompt] for c in range(10)]
    real_div = sum(diversity(r) for r in real if len(r) > 1) / sum(len(r) > 1 for r in real)
    return {"frechet": fd, "diversity": div, "real_diversity": real_div, "n_images": n}


def cvae_sampler(model, encoder, guidance: float | None = None) -> Sampler:
    """Chapter 6's conditional VAE as a Sampler (its default guidance unless given).

    Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
    """
    from . import conditional

    def run(texts, n, seed):
        g = torch.Generator().manual_seed(seed)
        w = conditional.guidance_or_default(guidance)
        return conditional.sample(model, encoder.encode(texts), n, g, w)
    return run


def diffusion_sampler(t2i, steps: int | None = None, guidance: float | None = None, sampler: str = "heun",
                      batch_prompts: int = 256) -> Sampler:
    """Chapter 7's TextToImage as a Sampler (its recipe's steps and guidance unless given).

    Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
    """
    from . import diffusion

    steps = diffusion.RECIPE["sample_steps"] if steps is None else steps
    guidance = diffusion.RECIPE["guidance"] if guidance is None else guidance

    def run(texts, n, seed):
        g = torch.Generator().manual_seed(seed)
        out = []
        for i in range(0, len(texts), batch_prompts):
            states, mask = diffusion.token_states(t2i.encoder, texts[i:i + batch_prompts])
            out.append(t2i.images_for(states, mask, n, steps, guidance, sampler, g))
        return torch.cat(out)
    return run

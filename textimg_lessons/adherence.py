"""Measuring a text-to-image generator (chapter 6): does it draw what the prompt asks for, and how well?

  adherence_report      prompt adherence per caption family, with the confusion matrix
  attribute_adherence   for prompts that ask for an attribute ("a large seven"), the share of images that have it
  quality_report        Frechet distance on judge features and diversity within a prompt

All sample with classifier-free guidance (None: the chapter's RECIPE["guidance"]).
"""
from __future__ import annotations

import re

import torch

from . import captions
from .conditional import ConditionalVAE, guidance_or_default, sample
from .datasets import require_dataset
from .metrics import confusion_matrix, judge_logits

# The judge's probability above which a reading counts as confident (adherence_report's "confident").
CONFIDENT = 0.5


def adherence_report(model: ConditionalVAE, encoder, judge, dataset: str, n_per_prompt: int = 20,
                     families=captions.FAMILIES, seed: int = 0, guidance: float | None = None) -> dict:
    """Prompt adherence per caption family: {family: {"adherence", "confident", "unreadable", "confusion",
    "per_class"}}.

    adherence: share of images the judge puts in the requested class (its top class, a forced choice,
    even for a blob). confident: share it puts there with probability >= CONFIDENT (0.5);
    unreadable: share whose top class has probability < CONFIDENT (the judge cannot tell what it is).
    guidance: classifier-free guidance scale (None: RECIPE["guidance"]; 1.0: plain sampling).

    Lesson: 06_text_to_image.ipynb, "6. Adherence per caption family".
    """
    out = {}
    for family in families:
        texts, labels = captions.prompt_set(dataset, family)
        g = torch.Generator().manual_seed(seed)
        images = sample(model, encoder.encode(texts), n_per_prompt, g, guidance_or_default(guidance))
        requested = labels.repeat_interleave(n_per_prompt)
        top, predicted = torch.softmax(judge_logits(judge, images).float(), dim=1).max(1)
        sure = top >= CONFIDENT
        hit = predicted == requested
        conf = confusion_matrix(requested, predicted)
        out[family] = {"adherence": float(hit.float().mean()), "confident": float((hit & sure).float().mean()),
                       "unreadable": float((~sure).float().mean()), "confusion": conf,
                       "per_class": (conf.diag() / conf.sum(1).clamp_min(1)).tolist(), "prompts": len(texts)}
    return out


def _single_attribute_templates(dataset: str) -> dict:
    """{attribute: [training templates with the class and exactly that one attribute slot]}."""
    out = {}
    for t in captions.templates(dataset, "train"):
        slots = set(re.findall(r"{(\w+)}", t)) - {"cls"}
        if len(slots) == 1:
            out.setdefault(slots.pop(), []).append(t)
    return out


@torch.no_grad()
def attribute_adherence(model: ConditionalVAE, encoder, data, n_per_prompt: int = 10, seed: int = 0,
                        guidance: float | None = None) -> dict:
    """For prompts that ask for an attribute ("a large seven"), the share of images measured to have it.

    Prompts: every training template with one attribute slot x class x the attribute's three words.
    Images are measured with captions.image_attributes and binned with the training split's cut points,
    exactly as their captions were made. Chance is 1/3. Returns {attribute: share, "mean": ...}.

    Lesson: 06_text_to_image.ipynb, "Attributes, Frechet distance, diversity".
    """
    dataset = require_dataset(data.name)
    cuts = captions.train_cuts(data)
    g = torch.Generator().manual_seed(seed)
    out = {}
    for attr, temps in _single_attribute_templates(dataset).items():
        texts, wanted = [], []
        for t in temps:
            for c, word in enumerate(captions.CLASS_WORDS[dataset]):
                for aw in captions.ATTRIBUTE_WORDS[attr]:
                    texts.append(captions.render(t, word, {attr: aw}))
                    wanted.append(aw)
        images = sample(model, encoder.encode(texts), n_per_prompt, g, guidance_or_default(guidance))
        got = captions.attribute_words(captions.image_attributes(images), cuts)
        want = [w for w in wanted for _ in range(n_per_prompt)]
        out[attr] = sum(gw[attr] == w for gw, w in zip(got, want)) / len(want)
    out["mean"] = sum(out.values()) / max(len(out), 1)
    return out


def quality_report(model: ConditionalVAE, encoder, judge, data, n_images: int = 2000, seed: int = 0,
                   guidance: float | None = None) -> dict:
    """Frechet distance on judge features (test captions -> images vs the test images) and diversity.

    diversity: mean pairwise L2 distance between 16 images of the same prompt, averaged over the
    training-family prompts (0 = the prompt always gives the same image); real_diversity is the same
    for 16 real test images of each class, for scale.

    Lesson: 06_text_to_image.ipynb, "Attributes, Frechet distance, diversity".
    """
    from .metrics import diversity, judge_frechet_distance
    dataset = require_dataset(data.name)
    n = min(n_images, len(data.X_test))
    caps = captions.make_captions(data, "test", "train", seed=seed)[:n]
    g = torch.Generator().manual_seed(seed)
    w = guidance_or_default(guidance)
    fake = sample(model, encoder.encode(caps), 1, g, w)
    fd = judge_frechet_distance(judge, data.X_test[:n], fake)
    texts, labels = captions.prompt_set(dataset, "train")
    imgs = sample(model, encoder.encode(texts), 16, g, w).view(len(texts), 16, 1, 28, 28)
    div = sum(diversity(imgs[i]) for i in range(len(texts))) / len(texts)
    real = [data.X_test[data.y_test == c][:16] for c in range(10)]
    real_div = sum(diversity(r) for r in real if len(r) > 1) / sum(len(r) > 1 for r in real)
    return {"frechet": fd, "diversity": div, "real_diversity": real_div, "n_images": n}

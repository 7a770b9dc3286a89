"""Captions for MNIST and Fashion-MNIST, built from labels and attributes measured on each image (chapter 5).

A caption such as "a small, slanted right seven" is made of
  * a class word ("seven", "sneaker"),
  * attribute words measured on the image itself (`image_attributes`), quantised into three bins,
  * a template ("a {size} {cls}") drawn from one of three families:

    train             the templates and the canonical class words a model is trained on;
    heldout_phrasing  new templates never used in training, with the same class words
                      ("there is a sneaker in this picture");
    heldout_synonym   the training templates with class words never used in training
                      ("a photo of a running shoe"; for MNIST numerals: "a photo of a 7").

Training captions spell digits as words ("seven") and never contain a numeral, so MNIST's held-out
synonyms are the numerals. Changing only the template (phrasing) or only the class word (synonym) tells
chapter 6 which of the two a text encoder generalises over. No held-out class word and no held-out
caption ever occurs in a training caption (tests/test_captions.py checks every combination).

Synonyms were chosen so that none contains a training class word as a whole word ("boot" would be
inside "ankle boot", so the ankle boot's synonyms are "bootie" and "chelsea boot"); "button-up shirt"
is the one exception: it is a kind of shirt, so it keeps the word and only the phrase is new.
"""
from __future__ import annotations

import random
import re

import torch

from .datasets import NAMES as DATASETS
from .datasets import require_dataset

FAMILIES = ("train", "heldout_phrasing", "heldout_synonym")
ATTRIBUTES = ("size", "thickness", "slant", "brightness")

CLASS_WORDS = {
    "fashion_mnist": ["t-shirt", "trouser", "pullover", "dress", "coat",
                      "sandal", "shirt", "sneaker", "bag", "ankle boot"],
    "mnist": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
}

# Class words a model never sees in training (see the module docstring for how they were chosen).
SYNONYMS = {
    "fashion_mnist": [["tee", "top"], ["pair of jeans", "pair of pants"], ["sweater", "jumper"], ["gown", "frock"],
                      ["jacket", "parka"], ["flip-flop"], ["button-up shirt", "blouse"],
                      ["running shoe", "trainer"], ["purse", "handbag"], ["bootie", "chelsea boot"]],
    "mnist": [[str(d)] for d in range(10)],
}

# Words for the three bins of each attribute (low, middle, high).
ATTRIBUTE_WORDS = {
    "size": ("small", "medium", "large"),
    "thickness": ("thin", "regular", "thick"),
    "brightness": ("dark", "grey", "bright"),
    "slant": ("slanted left", "upright", "slanted right"),
}
# Slant is binned by sign with a dead zone, not by tertiles: most handwritten digits lean right, so
# tertiles would call a third of them "slanted left". |shear| < SLANT_DEAD_ZONE (about 8.5 degrees) is upright.
SLANT_DEAD_ZONE = 0.15
INK_THRESHOLD = 0.2

TEMPLATES = {
    "fashion_mnist": {
        "train": ["a photo of a {cls}", "a {size} {cls}", "{cls}, {brightness}", "a {brightness} {cls}",
                  "a {thickness}, {size} {cls}", "a picture of a {size} {brightness} {cls}",
                  "an image of a {cls}", "a {cls}"],
        "heldout_phrasing": ["there is a {cls} in this picture", "{cls} on a black background",
                             "someone's {cls}, {size} and {brightness}", "this {cls} looks {size}",
                             "my {brightness} {cls}"],
    },
    "mnist": {
        "train": ["the digit {cls}", "a {size} {cls}", "a {cls}, {slant}", "a {thickness} {cls}",
                  "the number {cls}, {brightness}", "a {size}, {slant} digit {cls}",
                  "a photo of a {cls}", "a {cls}"],
        "heldout_phrasing": ["a handwritten {cls}", "{cls}, written by hand", "a scribbled {cls}",
                             "someone wrote a {size} {cls}", "this {cls} is {slant}"],
    },
}

# Templates a language model is validated on but never trained on, made only of words that the same
# dataset's training templates use ("a photo of a {size} {cls}" recombines "a photo of a {cls}" and
# "a {size} {cls}"). A model that has learned how the words combine gives them a low loss; one that has
# memorised the training captions does not. They are not a caption family: chapter 6 never uses them.
# tests/test_captions.py checks that no caption they render is a training caption and that every word
# they use occurs in the training captions.
RECOMBINED_TEMPLATES = {
    "fashion_mnist": ["a photo of a {size} {cls}", "an image of a {brightness} {cls}", "{cls}, {size}",
                      "a {size}, {thickness} {cls}"],
    "mnist": ["the digit {cls}, {slant}", "a {size} digit {cls}", "the number {cls}", "a photo of a {thickness} {cls}"],
}


def _require_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"Unknown caption family {family!r}; choose one of {FAMILIES}.")
    return family


def templates(dataset: str, family: str) -> list:
    """The templates of one family (heldout_synonym reuses the training templates with new class words).

    Lesson: 05_language_models.ipynb, "Three caption families".
    """
    dataset, family = require_dataset(dataset), _require_family(family)
    return list(TEMPLATES[dataset]["train" if family == "heldout_synonym" else family])


def class_words(dataset: str, family: str) -> list:
    """Per class, the list of class words a family uses (canonical words, or held-out synonyms).

    Lesson: 05_language_models.ipynb, "Three caption families".
    """
    dataset, family = require_dataset(dataset), _require_family(family)
    if family == "heldout_synonym":
        return [list(s) for s in SYNONYMS[dataset]]
    return [[w] for w in CLASS_WORDS[dataset]]


# ---------------------------------------------------------------- measured attributes

def image_attributes(X: torch.Tensor, chunk: int = 2048) -> dict:
    """Measure size, thickness, slant and brightness of each image; returns {name: (N,) float tensor}.

    X: (N, 1, 28, 28) float in [0, 1], ink bright on a dark background (as in MNIST and Fashion-MNIST).
      size       area of the ink bounding box (pixels > 0.2) as a fraction of the image
      thickness  ink mass / half the total variation: a stroke of width w and length L >> w has mass L*w
                 and total variation about 2L, so this estimates w in pixels without skeletonising
      slant      shear from second moments, -cov(x, row) / var(row): > 0 when the top leans right
      brightness mean intensity of the ink pixels (how strong the stroke or how light the garment is)

    Lesson: 05_language_models.ipynb, "1. Captions from measured image attributes".
    """
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor of shape (N, 1, 28, 28), got {type(X).__name__}.")
    if X.dim() != 4 or X.shape[1] != 1:
        raise ValueError(f"X must have shape (N, 1, H, W); got {tuple(X.shape)}. Add a channel axis with X[:, None].")
    if not X.is_floating_point():
        raise TypeError(f"X must be float in [0, 1], got {X.dtype}; divide uint8 images by 255.")
    if len(X) > chunk:  # chunks keep the temporaries in cache: 60k images take ~2 s instead of ~20 s
        parts = [image_attributes(X[i:i + chunk], chunk) for i in range(0, len(X), chunk)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    X = X[:, 0].float().clamp(0, 1)  # (N, 1, H, W) => (N, H, W)
    N, H, W = X.shape
    ink = X > INK_THRESHOLD
    rows = torch.arange(H, dtype=torch.float32)
    cols = torch.arange(W, dtype=torch.float32)
    # Bounding box from the first and last rows/columns that hold any ink.
    any_row, any_col = ink.any(dim=2).float(), ink.any(dim=1).float()  # (N, H), (N, W)
    height = (any_row * rows).amax(1) - torch.where(any_row > 0, rows, float(H)).amin(1) + 1
    width = (any_col * cols).amax(1) - torch.where(any_col > 0, cols, float(W)).amin(1) + 1
    has_ink = ink.flatten(1).any(1)
    size = torch.where(has_ink, height.clamp_min(0) * width.clamp_min(0) / (H * W), torch.zeros(N))

    mass = X.flatten(1).sum(1)
    tv = (X[:, 1:, :] - X[:, :-1, :]).abs().flatten(1).sum(1) + (X[:, :, 1:] - X[:, :, :-1]).abs().flatten(1).sum(1)
    thickness = 2 * mass / tv.clamp_min(1e-6)

    w = X / mass.clamp_min(1e-6)[:, None, None]  # intensities as weights that sum to 1
    r_mean = (w.sum(2) * rows).sum(1)  # (N,)
    c_mean = (w.sum(1) * cols).sum(1)
    dr = rows[None, :, None] - r_mean[:, None, None]  # (N, H, 1)
    dc = cols[None, None, :] - c_mean[:, None, None]  # (N, 1, W)
    cov = (w * dr * dc).flatten(1).sum(1)
    var_r = (w * dr ** 2).flatten(1).sum(1)
    slant = -cov / var_r.clamp_min(1e-6)

    n_ink = ink.flatten(1).sum(1)
    brightness = (X * ink).flatten(1).sum(1) / n_ink.clamp_min(1)
    return {"size": size, "thickness": thickness, "slant": slant, "brightness": brightness}


def tertiles(attrs: dict) -> dict:
    """The 1/3 and 2/3 quantiles of each attribute: {name: (low, high)}; compute them on the training split.

    Lesson: 05_language_models.ipynb, "1. Captions from measured image attributes".
    """
    out = {}
    for name, values in attrs.items():
        if len(values) == 0:
            raise ValueError(f"attribute {name!r} has no values; measure at least one image.")
        q = torch.quantile(values.float(), torch.tensor([1 / 3, 2 / 3]))
        out[name] = (float(q[0]), float(q[1]))
    return out


def attribute_words(attrs: dict, cuts: dict | None = None) -> list:
    """Quantise measured attributes into words: one dict {"size": "small", ...} per image.

    cuts: {name: (low, high)} from `tertiles` on the training split (default: tertiles of `attrs` itself,
    right when `attrs` is the whole training split). Slant uses a fixed dead zone instead (see SLANT_DEAD_ZONE).

    Lesson: 05_language_models.ipynb, "1. Captions from measured image attributes".
    """
    if not attrs:
        raise ValueError("attrs is empty; pass the dict that image_attributes returns.")
    cuts = tertiles({k: v for k, v in attrs.items() if k != "slant"}) if cuts is None else cuts
    n = len(next(iter(attrs.values())))
    bins = {}
    for name, values in attrs.items():
        if name == "slant":
            low, high = -SLANT_DEAD_ZONE, SLANT_DEAD_ZONE
        elif name in cuts:
            low, high = cuts[name]
        else:
            raise ValueError(f"no cut points for attribute {name!r}; cuts has {sorted(cuts)}.")
        bins[name] = (values > low).long() + (values > high).long()  # 0, 1 or 2
    return [{name: ATTRIBUTE_WORDS[name][int(b[i])] for name, b in bins.items()} for i in range(n)]


# ---------------------------------------------------------------- captions

def _fix_articles(text: str) -> str:
    """"a ankle boot" => "an ankle boot", "a 8" => "an 8"; "a one" stays (it is said "wun")."""
    text = re.sub(r"\ba (?=(?!one\b|uni|eu)[aeiou])", "an ", text)
    text = re.sub(r"\ba (?=(8|11|18)\b)", "an ", text)
    return re.sub(r"\ban (?=(?!8|11|18)[^aeiou\W])", "a ", text)


def render(template: str, cls: str, words: dict | None = None) -> str:
    """Fill one template with a class word and attribute words.

    Lesson: 05_language_models.ipynb, "1. Captions from measured image attributes".
    """
    words = words or {}
    needed = set(re.findall(r"{(\w+)}", template)) - {"cls"}
    missing = needed - set(words)
    if missing:
        raise ValueError(f"template {template!r} needs attribute words {sorted(missing)}; words has {sorted(words)}.")
    return _fix_articles(template.format(cls=cls, **{k: words[k] for k in needed}))


def caption(dataset: str, label: int, words: dict, family: str = "train", rng: random.Random | None = None) -> str:
    """One caption for an image of class `label` with attribute words `words` (from attribute_words).

    Lesson: 05_language_models.ipynb, "1. Captions from measured image attributes".
    """
    dataset, family = require_dataset(dataset), _require_family(family)
    if not 0 <= int(label) < 10:
        raise ValueError(f"label must be a class index 0-9, got {label!r}.")
    rng = rng if rng is not None else random.Random(0)
    template = rng.choice(templates(dataset, family))
    cls = rng.choice(class_words(dataset, family)[int(label)])
    return render(template, cls, words)


_CUTS_CACHE: dict = {}


def train_cuts(data) -> dict:
    """Tertiles of size, thickness and brightness on data's training split (cached per dataset object).

    Lesson: 05_language_models.ipynb, "1. Captions from measured image attributes".
    """
    key = (data.name, len(data.X_train), data.X_train.data_ptr())
    if key not in _CUTS_CACHE:
        attrs = image_attributes(data.X_train)
        _CUTS_CACHE[key] = tertiles({k: v for k, v in attrs.items() if k != "slant"})
    return _CUTS_CACHE[key]


def make_captions(data, split: str = "train", family: str = "train", seed: int = 0) -> list:
    """One caption per image of `data` (an ImageData) for `split` ("train" or "test").

    Attributes are measured on each image and binned with tertiles of the *training* split, so "large"
    means the same thing for train and test images.

    Lesson: 05_language_models.ipynb, "1. Captions from measured image attributes".
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    dataset = require_dataset(data.name)
    X, y = (data.X_train, data.y_train) if split == "train" else (data.X_test, data.y_test)
    words = attribute_words(image_attributes(X), train_cuts(data))
    rng = random.Random(seed)
    return [caption(dataset, int(label), w, family, rng) for label, w in zip(y.tolist(), words)]


def prompt_set(dataset: str, family: str = "train"):
    """The class prompts of one family as (texts, requested classes (P,)), class by class.

    Lesson: 06_text_to_image.ipynb, "1. Captioned datasets".
    """
    prompts = class_prompts(dataset, family)
    texts = [p for c in sorted(prompts) for p in prompts[c]]
    labels = torch.tensor([c for c in sorted(prompts) for _ in prompts[c]])
    return texts, labels


def class_prompts(dataset: str, family: str = "train") -> dict:
    """{class index: prompts without attribute words}; chapter 6 measures prompt adherence with these.

    Lesson: 05_language_models.ipynb, "Three caption families".
    """
    dataset, family = require_dataset(dataset), _require_family(family)
    plain = [t for t in templates(dataset, family) if set(re.findall(r"{(\w+)}", t)) == {"cls"}]
    if family == "heldout_phrasing":  # fill attribute slots with the middle word: still no class information
        plain = templates(dataset, family)
    middle = {name: ws[1] for name, ws in ATTRIBUTE_WORDS.items()}
    return {c: [render(t, w, middle) for t in plain for w in words]
            for c, words in enumerate(class_words(dataset, family))}


def caption_corpus(dataset: str, n: int, seed: int = 0, family: str = "train") -> list:
    """n captions for language modelling, without loading images.

    dataset: "fashion_mnist", "mnist" or "both" (alternating). Labels are uniform and each attribute
    word is drawn uniformly from its three bins, which is what tertiles give for each attribute alone
    (captions of real images come from `make_captions`).

    Lesson: 05_language_models.ipynb, "2. Tokenisation: from text to integers".
    """
    return _draw_captions(dataset, n, seed,
                          lambda name, words, rng: caption(name, rng.randrange(10), words, family, rng))


def _draw_captions(dataset: str, n: int, seed: int, one) -> list:
    """n captions: for each, the dataset (alternating for "both"), uniform attribute words, then one(name, words, rng)."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}.")
    names = DATASETS if str(dataset).lower() == "both" else (require_dataset(dataset),)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = names[i % len(names)]
        words = {k: rng.choice(v) for k, v in ATTRIBUTE_WORDS.items()}
        out.append(one(name, words, rng))
    return out


def recombined_corpus(dataset: str, n: int, seed: int = 0) -> list:
    """n captions from RECOMBINED_TEMPLATES (templates never trained on, made of training words).

    Drawn like `caption_corpus(dataset, n, seed)`, with the training class words: only the template is new.

    Lesson: 05_language_models.ipynb, "Seen captions and unseen templates".
    """
    def one(name, words, rng):
        cls = CLASS_WORDS[name][rng.randrange(10)]
        return render(rng.choice(RECOMBINED_TEMPLATES[name]), cls, words)
    return _draw_captions(dataset, n, seed, one)


def all_recombined_captions(dataset: str) -> set:
    """Every caption RECOMBINED_TEMPLATES[dataset] can produce.

    Lesson: 05_language_models.ipynb, "Seen captions and unseen templates".
    """
    import itertools
    dataset = require_dataset(dataset)
    combos = [dict(zip(ATTRIBUTE_WORDS, ws)) for ws in itertools.product(*ATTRIBUTE_WORDS.values())]
    return {render(t, w, words) for t in RECOMBINED_TEMPLATES[dataset] for w in CLASS_WORDS[dataset]
            for words in combos}


def all_captions(dataset: str, family: str) -> set:
    """Every caption a family can produce (all templates, class words and attribute words).

    Lesson: 07_diffusion.ipynb, "4. Captions that teach language".
    """
    import itertools
    dataset, family = require_dataset(dataset), _require_family(family)
    combos = [dict(zip(ATTRIBUTE_WORDS, ws)) for ws in itertools.product(*ATTRIBUTE_WORDS.values())]
    return {render(t, w, words) for t in templates(dataset, family)
            for cls_words in class_words(dataset, family) for w in cls_words for words in combos}


def caption_distribution(dataset: str, family: str = "train") -> dict:
    """{caption: probability} of the generator behind `caption_corpus` (dataset may be "both").

    Its entropy is the lowest loss any language model can reach on the corpus: the templates and
    words are drawn at random, so part of each caption cannot be predicted.

    Lesson: 05_language_models.ipynb, "Sampling".
    """
    import itertools
    names = DATASETS if str(dataset).lower() == "both" else (require_dataset(dataset),)
    family = _require_family(family)
    probs: dict = {}
    for name in names:
        temps = templates(name, family)
        for t in temps:
            slots = sorted(set(re.findall(r"{(\w+)}", t)) - {"cls"})
            for cls_words in class_words(name, family):
                for w in cls_words:
                    for combo in itertools.product(*(ATTRIBUTE_WORDS[k] for k in slots)):
                        p = 1 / len(names) / len(temps) / 10 / len(cls_words) / 3 ** len(slots)
                        s = render(t, w, dict(zip(slots, combo)))
                        probs[s] = probs.get(s, 0.0) + p
    return probs

"""The training vocabulary of chapter 7: several names per class, singular and plural, several templates.

Chapter 6 trained on one word per class ("trouser") and eight templates, so a plain plural ("some trousers,
please") was already a word the generator had never seen. Chapter 7 trains on captions that use language the
way people do: two or three names per class, each with its plural, and templates in the singular and the
plural. The held-out families of chapter 5 (`captions.class_prompts(dataset, "heldout_phrasing")` and
`"heldout_synonym"`) stay the evaluation sets, so chapter 6 and chapter 7 are measured on the same prompts,
and none of their words occurs here: `tests/test_vocabulary.py` checks that no held-out synonym and no
held-out caption appears among the training captions this module can produce.

Each name is a (singular, plural) pair. A name was left out when it would contain a held-out synonym as a
whole word ("tank top" contains "top") or a held-out phrasing ("handwritten" is in "a handwritten seven").
Lesson: 07_diffusion.ipynb, "4. Captions that teach language".
"""
from __future__ import annotations

import itertools
import random
import re

from . import captions
from .datasets import require_dataset

NAMES = {
    "fashion_mnist": [
        [("t-shirt", "t-shirts"), ("polo", "polos")],
        [("trouser", "trousers"), ("pair of slacks", "slacks"), ("pair of chinos", "chinos")],
        [("pullover", "pullovers"), ("cardigan", "cardigans")],
        [("dress", "dresses"), ("sundress", "sundresses")],
        [("coat", "coats"), ("overcoat", "overcoats"), ("raincoat", "raincoats")],
        [("sandal", "sandals"), ("strappy sandal", "strappy sandals")],
        [("shirt", "shirts"), ("collared shirt", "collared shirts")],
        [("sneaker", "sneakers"), ("sports shoe", "sports shoes")],
        [("bag", "bags"), ("tote bag", "tote bags"), ("satchel", "satchels")],
        [("ankle boot", "ankle boots"), ("hiking boot", "hiking boots")],
    ],
    "mnist": [[(w, p)] for w, p in zip(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
        ["zeros", "ones", "twos", "threes", "fours", "fives", "sixes", "sevens", "eights", "nines"])],
}

# Templates by grammatical number: a singular name goes into SINGULAR, a plural one into PLURAL. The
# singular list extends chapter 6's training templates, so everything chapter 6 trained on is still here.
EXTRA_SINGULAR = {
    "fashion_mnist": ["a picture of one {cls}", "one {size} {cls}", "a single {brightness} {cls}",
                      "a {cls}, {size}", "i would like a {cls}"],
    "mnist": ["the number {cls}", "one {cls}", "a single {thickness} {cls}", "the digit {cls}, {size}",
              "i would like a {cls}"],
}
PLURAL = {
    "fashion_mnist": ["some {cls}", "{cls}, please", "a photo of {cls}", "{size} {cls}", "{brightness} {cls}",
                      "a picture of {thickness} {cls}"],
    "mnist": ["some {cls}", "{cls}, please", "a photo of {cls}", "{size} {cls}", "{slant} {cls}",
              "a picture of {thickness} {cls}"],
}
PLURAL_SHARE = 0.3   # share of training captions that use a plural name


def singular_templates(dataset: str) -> list:
    """Templates for a singular name: chapter 6's training templates and EXTRA_SINGULAR.

    Lesson: 07_diffusion.ipynb, "4. Captions that teach language".
    """
    dataset = require_dataset(dataset)
    return captions.templates(dataset, "train") + EXTRA_SINGULAR[dataset]


def plural_templates(dataset: str) -> list:
    """Templates for a plural name ("some {cls}", "{cls}, please").

    Lesson: 07_diffusion.ipynb, "4. Captions that teach language".
    """
    return list(PLURAL[require_dataset(dataset)])


def class_names(dataset: str, number: str = "both") -> list:
    """Per class, the names a training caption may use: number "singular", "plural" or "both".

    Lesson: 07_diffusion.ipynb, "4. Captions that teach language".
    """
    names = NAMES[require_dataset(dataset)]
    pick = {"singular": (0,), "plural": (1,), "both": (0, 1)}
    if number not in pick:
        raise ValueError(f"number must be 'singular', 'plural' or 'both', got {number!r}.")
    return [[pair[i] for pair in cls for i in pick[number]] for cls in names]


def rich_caption(dataset: str, label: int, words: dict, rng: random.Random) -> str:
    """One training caption of chapter 7 for an image of class `label` with measured attribute words.

    Lesson: 07_diffusion.ipynb, "4. Captions that teach language".
    """
    dataset = require_dataset(dataset)
    plural = rng.random() < PLURAL_SHARE
    template = rng.choice(plural_templates(dataset) if plural else singular_templates(dataset))
    name = rng.choice(NAMES[dataset][int(label)])[1 if plural else 0]
    return captions.render(template, name, words)


def make_rich_captions(data, split: str = "train", seed: int = 0) -> list:
    """One chapter-7 training caption per image of `data` (attributes measured as in chapter 5).

    Lesson: 07_diffusion.ipynb, "4. Captions that teach language".
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    dataset = require_dataset(data.name)
    X, y = (data.X_train, data.y_train) if split == "train" else (data.X_test, data.y_test)
    words = captions.attribute_words(captions.image_attributes(X), captions.train_cuts(data))
    rng = random.Random(seed)
    return [rich_caption(dataset, int(label), w, rng) for label, w in zip(y.tolist(), words)]


def all_rich_captions(dataset: str) -> set:
    """Every training caption chapter 7 can produce (all templates, names and attribute words).

    Lesson: 07_diffusion.ipynb, "4. Captions that teach language".
    """
    dataset = require_dataset(dataset)
    combos = [dict(zip(captions.ATTRIBUTE_WORDS, ws)) for ws in itertools.product(*captions.ATTRIBUTE_WORDS.values())]
    out = set()
    for temps, number in ((singular_templates(dataset), "singular"), (plural_templates(dataset), "plural")):
        for t in temps:
            for names in class_names(dataset, number):
                for name in names:
                    for w in combos:
                        out.add(captions.render(t, name, w))
    return out


def contains_phrase(text: str, phrase: str) -> bool:
    """True when `phrase` occurs in `text` as whole words ("top" is in "a tank top", not in "laptop").

    Lesson: 07_diffusion.ipynb, "4. Captions that teach language".
    """
    return re.search(r"(?<![\w-])" + re.escape(phrase.lower()) + r"(?![\w-])", text.lower()) is not None

"""Tests for textimg_lessons.captions: held-out families never leak into training, attributes measure
what they claim, captions follow the labels."""
import random
import re

import pytest
import torch

from textimg_lessons import captions


def stroke(length=12, width=2, value=1.0, shear=0.0, size=28):
    """A vertical bar centred in the image; shear > 0 moves its top to the right."""
    img = torch.zeros(1, 1, size, size)
    top = (size - length) // 2
    for r in range(top, top + length):
        offset = round(shear * ((top + length / 2) - r))
        c0 = size // 2 - width // 2 + offset
        img[0, 0, r, c0:c0 + width] = value
    return img


@pytest.mark.parametrize("dataset", captions.DATASETS)
@pytest.mark.parametrize("family", ["heldout_phrasing", "heldout_synonym"])
def test_no_heldout_caption_is_a_training_caption(dataset, family):
    train = captions.all_captions(dataset, "train")
    held = captions.all_captions(dataset, family)
    assert len(train) > 100 and len(held) > 50
    assert not train & held


@pytest.mark.parametrize("dataset", captions.DATASETS)
def test_no_heldout_class_word_occurs_in_any_training_caption(dataset):
    train = captions.all_captions(dataset, "train")
    for synonyms in captions.SYNONYMS[dataset]:
        for word in synonyms:
            hits = [t for t in train if word in t]
            assert not hits, f"held-out word {word!r} occurs in training caption {hits[0]!r}"
    assert not any(re.search(r"\d", t) for t in train), "training captions must spell digits as words"


@pytest.mark.parametrize("dataset", captions.DATASETS)
def test_heldout_phrasing_templates_are_new(dataset):
    train_templates = set(captions.templates(dataset, "train"))
    for t in captions.templates(dataset, "heldout_phrasing"):
        assert t not in train_templates
    assert captions.templates(dataset, "heldout_synonym") == captions.templates(dataset, "train")


def test_caption_uses_the_family_class_words():
    rng = random.Random(0)
    words = {"size": "small", "thickness": "thin", "slant": "upright", "brightness": "dark"}
    for _ in range(20):
        cap = captions.caption("fashion_mnist", 7, words, "heldout_synonym", rng)
        assert "running shoe" in cap or "trainer" in cap
        assert "sneaker" not in cap
        assert "sneaker" in captions.caption("fashion_mnist", 7, words, "train", rng)
        assert re.search(r"\b3\b", captions.caption("mnist", 3, words, "heldout_synonym", rng))


def test_articles_are_fixed():
    assert captions.render("a photo of a {cls}", "ankle boot") == "a photo of an ankle boot"
    assert captions.render("a {cls}", "8") == "an 8"
    assert captions.render("a {cls}", "one") == "a one"
    assert captions.render("a {size} {cls}", "eight", {"size": "large"}) == "a large eight"


def test_class_prompts_have_no_attribute_words_in_training_family():
    attribute_words = {w for ws in captions.ATTRIBUTE_WORDS.values() for w in ws}
    for dataset in captions.DATASETS:
        for family in captions.FAMILIES:
            prompts = captions.class_prompts(dataset, family)
            assert sorted(prompts) == list(range(10))
            assert all(len(p) >= 1 for p in prompts.values())
        for plist in captions.class_prompts(dataset, "train").values():
            for p in plist:
                assert not any(re.search(rf"\b{w}\b", p) for w in attribute_words), p


def test_thicker_and_larger_strokes_measure_larger():
    thin, thick = stroke(width=1), stroke(width=4)
    short, long = stroke(length=8), stroke(length=20)
    a = captions.image_attributes(torch.cat([thin, thick, short, long]))
    assert a["thickness"][1] > a["thickness"][0] + 2  # width 4 vs 1 pixel
    assert 2.5 < a["thickness"][1] <= 4  # L*w / (L + w) = 3 for a 12 x 4 bar: the ends count as edges
    assert a["size"][3] > 2 * a["size"][2]


def test_slant_and_brightness():
    a = captions.image_attributes(torch.cat([stroke(shear=0.5), stroke(shear=-0.5), stroke(), stroke(value=0.5)]))
    assert a["slant"][0] > 0.3 and a["slant"][1] < -0.3 and abs(a["slant"][2]) < 0.05
    assert a["brightness"][2] == pytest.approx(1.0) and a["brightness"][3] == pytest.approx(0.5)


def test_blank_image_does_not_crash():
    a = captions.image_attributes(torch.zeros(2, 1, 28, 28))
    assert all(torch.isfinite(v).all() for v in a.values())
    assert float(a["size"][0]) == 0.0


def test_attribute_words_bins_are_tertiles():
    g = torch.Generator().manual_seed(0)
    attrs = {"size": torch.rand(3000, generator=g), "slant": torch.randn(3000, generator=g)}
    words = captions.attribute_words(attrs)
    counts = {w: sum(d["size"] == w for d in words) for w in captions.ATTRIBUTE_WORDS["size"]}
    assert all(abs(c - 1000) < 20 for c in counts.values()), counts
    assert {d["slant"] for d in words} == set(captions.ATTRIBUTE_WORDS["slant"])
    cuts = {"size": (0.2, 0.4)}
    assert captions.attribute_words({"size": torch.tensor([0.1, 0.3, 0.9])}, cuts) == [
        {"size": "small"}, {"size": "medium"}, {"size": "large"}]


def test_make_captions_follow_labels():
    from textimg_lessons.data import load_mnist
    data = load_mnist(offline=True, fast=True, verbose=False)
    caps = captions.make_captions(data, "test", "train", seed=0)
    assert len(caps) == len(data.X_test)
    for cap, label in zip(caps, data.y_test.tolist()):
        assert captions.CLASS_WORDS["mnist"][label] in cap.split(" ") or f"{captions.CLASS_WORDS['mnist'][label]}," in cap
    assert caps == captions.make_captions(data, "test", "train", seed=0)
    held = captions.make_captions(data, "test", "heldout_synonym", seed=0)
    assert all(re.search(rf"\b{label}\b", cap) for cap, label in zip(held, data.y_test.tolist()))


def test_caption_corpus_is_reproducible_and_mixed():
    a = captions.caption_corpus("both", 200, seed=3)
    assert a == captions.caption_corpus("both", 200, seed=3) and a != captions.caption_corpus("both", 200, seed=4)
    assert any("digit" in t or "number" in t for t in a) and any("photo" in t for t in a)
    assert captions.caption_corpus("mnist", 0) == []


def test_bad_input():
    with pytest.raises(ValueError, match="channel"):
        captions.image_attributes(torch.zeros(2, 28, 28))
    with pytest.raises(TypeError, match="255"):
        captions.image_attributes(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="family"):
        captions.class_prompts("mnist", "test")
    with pytest.raises(ValueError, match="dataset"):
        captions.caption("cifar", 1, {}, "train")
    with pytest.raises(ValueError, match="label"):
        captions.caption("mnist", 10, {}, "train")
    with pytest.raises(ValueError, match="needs attribute"):
        captions.render("a {size} {cls}", "seven", {})


def test_caption_distribution_matches_the_generator():
    for dataset in captions.DATASETS:
        probs = captions.caption_distribution(dataset)
        assert sum(probs.values()) == pytest.approx(1.0)
        assert set(probs) == captions.all_captions(dataset, "train")
    both = captions.caption_distribution("both")
    sample = captions.caption_corpus("both", 4000, seed=5)
    p = both["a photo of a sneaker"]  # 1/2 datasets * 1/8 templates * 1/10 classes
    assert p == pytest.approx(1 / 160)
    assert abs(sample.count("a photo of a sneaker") / len(sample) - p) < 0.004


@pytest.mark.parametrize("dataset", captions.DATASETS)
def test_recombined_captions_are_new_but_use_only_training_words(dataset):
    train = captions.all_captions(dataset, "train")
    recombined = captions.all_recombined_captions(dataset)
    assert len(recombined) >= 100
    assert not train & recombined, "a recombined caption is a training caption: it would not test generalisation"
    words = lambda texts: {w for t in texts for w in re.findall(r"[\w'-]+|,", t)}
    assert words(recombined) <= words(train), words(recombined) - words(train)
    for t in captions.RECOMBINED_TEMPLATES[dataset]:
        assert t not in captions.templates(dataset, "train")


def test_recombined_corpus_is_reproducible_and_never_a_training_caption():
    a = captions.recombined_corpus("both", 300, seed=3)
    assert a == captions.recombined_corpus("both", 300, seed=3)
    assert a != captions.recombined_corpus("both", 300, seed=4)
    train = captions.all_captions("fashion_mnist", "train") | captions.all_captions("mnist", "train")
    assert not set(a) & train
    assert set(a) <= captions.all_recombined_captions("fashion_mnist") | captions.all_recombined_captions("mnist")
    with pytest.raises(ValueError):
        captions.recombined_corpus("both", -1)

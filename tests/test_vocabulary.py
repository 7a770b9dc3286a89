"""Chapter 7's training vocabulary: richer than chapter 6's, and disjoint from every held-out prompt."""
import random

import pytest

from textimg_lessons import captions, vocabulary

DATASETS = ("fashion_mnist", "mnist")


@pytest.fixture(scope="module", params=DATASETS)
def dataset_and_captions(request):
    return request.param, vocabulary.all_rich_captions(request.param)


def test_no_heldout_synonym_occurs_in_any_training_caption(dataset_and_captions):
    dataset, train = dataset_and_captions
    synonyms = [w for words in captions.class_words(dataset, "heldout_synonym") for w in words]
    found = [(w, t) for w in synonyms for t in train if vocabulary.contains_phrase(t, w)]
    assert not found, f"held-out synonyms inside training captions, e.g. {found[:3]}"


def test_no_heldout_caption_is_a_training_caption(dataset_and_captions):
    dataset, train = dataset_and_captions
    for family in ("heldout_phrasing", "heldout_synonym"):
        held = captions.all_captions(dataset, family)
        assert not held & train, f"{family} captions also in training: {sorted(held & train)[:3]}"
    for t in captions.templates(dataset, "heldout_phrasing"):
        assert t not in vocabulary.singular_templates(dataset) + vocabulary.plural_templates(dataset)


def test_every_class_has_several_names_with_plurals_except_digit_words():
    for dataset in DATASETS:
        singular = vocabulary.class_names(dataset, "singular")
        plural = vocabulary.class_names(dataset, "plural")
        assert len(singular) == len(plural) == 10
        assert all(s != p for names_s, names_p in zip(singular, plural) for s, p in zip(names_s, names_p))
    assert all(len(names) >= 2 for names in vocabulary.class_names("fashion_mnist", "singular"))


def test_chapter6_training_captions_are_still_training_captions():
    for dataset in DATASETS:
        assert captions.all_captions(dataset, "train") <= vocabulary.all_rich_captions(dataset)


def test_names_never_collide_across_classes():
    for dataset in DATASETS:
        owner = {}
        for c, names in enumerate(vocabulary.class_names(dataset)):
            for n in names:
                assert owner.setdefault(n, c) == c, f"{n!r} names two classes"


def test_rich_caption_uses_plural_templates_for_plural_names():
    rng = random.Random(0)
    words = {"size": "small", "thickness": "thin", "brightness": "dark", "slant": "upright"}
    caps = [vocabulary.rich_caption("fashion_mnist", 1, words, rng) for _ in range(300)]
    assert any("trousers" in c for c in caps) and any("trouser" in c.split() for c in caps)
    assert not any("a trousers" in c or "an trousers" in c for c in caps)
    assert not any("some trouser" == c or c.startswith("some trouser ") for c in caps)


def test_contains_phrase_matches_whole_words_only():
    assert vocabulary.contains_phrase("a tank top", "top")
    assert not vocabulary.contains_phrase("a laptop", "top")
    assert not vocabulary.contains_phrase("a t-shirt", "shirt")


def test_bad_number_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="singular"):
        vocabulary.class_names("mnist", "dual")

"""The course's datasets by name: the one registry of names, aliases and class names (chapter 0).

Every module that takes a dataset name (data loaders, captions, judges, generators, the command line)
normalises it here, so "Fashion-MNIST", "fashion-mnist" and "fashion" all mean "fashion_mnist" everywhere
and an unknown name gets the same clear error. Nothing here imports torch: the command line validates a
--dataset before it loads anything heavy.
"""
from __future__ import annotations

NAMES = ("fashion_mnist", "mnist")

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CLASSES = {"fashion_mnist": FASHION_CLASSES, "mnist": MNIST_CLASSES}

# other spellings people type, after lower-casing and turning "-" into "_"
ALIASES = {"fashion": "fashion_mnist", "fashionmnist": "fashion_mnist"}


class DatasetError(ValueError):
    """An unknown dataset name; the message lists the names that work."""


def dataset_key(name) -> str | None:
    """The course's name for a dataset ("mnist" or "fashion_mnist"), accepting "Fashion-MNIST", "fashion"...;
    None when the name is not one of them."""
    key = str(name).strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    return key if key in NAMES else None


def require_dataset(name) -> str:
    """dataset_key(name), or a DatasetError that says which names work."""
    key = dataset_key(name)
    if key is None:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(NAMES)} "
                           "(\"fashion-mnist\" and \"fashion\" also work).")
    return key


def class_names(name) -> list:
    """The 10 class names of a dataset, in label order."""
    return list(CLASSES[require_dataset(name)])

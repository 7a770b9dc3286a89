"""Text encoders behind one interface (chapter 6): the `TextEncoder` protocol and the label-lookup encoder.

Chapter 6 conditions one generator on three text encoders and compares them; every encoder declares the
same small interface, so the generator, the metrics and the next chapters can take any of them:

  name: str                              a label for tables and file metadata
  dim: int                               the size of one embedding
  encode(texts: list[str]) -> Tensor     (N, dim) embeddings on the CPU

Implemented by LabelLookupEncoder (here), text.TinyTextEncoder and pretrained.PretrainedTextEncoder (chapter 5).
"""
from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from . import captions
from .datasets import require_dataset
from .tokenisers import validate_texts


@runtime_checkable
class TextEncoder(Protocol):
    """What the generator needs from a text encoder (chapter 6).

    Lesson: 06_text_to_image.ipynb, "2. Three text encoders".
    """

    name: str
    dim: int

    def encode(self, texts: list) -> torch.Tensor:
        """texts (N strings) => embeddings (N, dim) on the CPU."""
        ...


class LabelLookupEncoder:
    """One-hot class labels as a "text encoder" (chapter 6, encoder a).

    Training uses the labels directly (`encode_labels`). A prompt is read by finding a training class
    word in it (whole words, longest first so "t-shirt" is not read as "shirt"); a prompt with no known
    class word encodes as the zero vector, which is what the generator saw for dropped conditions.

    Lesson: 06_text_to_image.ipynb, "2. Three text encoders".
    """

    def __init__(self, dataset: str):
        self.dataset = require_dataset(dataset)
        self.words = captions.CLASS_WORDS[self.dataset]
        self.dim = len(self.words)
        self.name = "one-hot label"
        order = sorted(range(self.dim), key=lambda c: -len(self.words[c]))
        self._patterns = [(c, re.compile(r"(?<![\w-])" + re.escape(self.words[c]) + r"(?![\w-])")) for c in order]

    def read(self, text: str) -> int:
        """The class a prompt names with a training class word, or -1 if it names none."""
        text = text.lower()
        for c, pat in self._patterns:
            if pat.search(text):
                return c
        return -1

    def encode_labels(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y.long(), self.dim).float()  # (N,) => (N, 10)

    def encode(self, texts) -> torch.Tensor:
        texts = validate_texts(texts)
        out = torch.zeros(len(texts), self.dim)
        for i, t in enumerate(texts):
            c = self.read(t)
            if c >= 0:
                out[i, c] = 1.0
        return out


def train_tiny_encoder(num_steps: int | None = None, seed: int = 0):
    """Chapter 5's tiny GPT, trained on chapter 5's caption corpus; returns (TinyTextEncoder, history).

    Lesson: 06_text_to_image.ipynb, "2. Three text encoders".
    """
    from . import text
    model, tokenizer, history = text.train_tiny_gpt(text.default_corpus(seed), num_steps=num_steps, seed=seed)
    return text.TinyTextEncoder(model, tokenizer), history


def make_encoder(kind: str, dataset: str, tiny=None):
    """The text encoder behind a kind in ENCODERS ("tiny" needs a trained TinyTextEncoder passed as tiny).

    Lesson: 06_text_to_image.ipynb, "2. Three text encoders".
    """
    if kind == "onehot":
        return LabelLookupEncoder(dataset)
    if kind == "tiny":
        if tiny is None:
            tiny, _ = train_tiny_encoder()
        return tiny
    if kind == "pretrained":
        from .pretrained import PretrainedTextEncoder
        return PretrainedTextEncoder()
    raise ValueError(f"Unknown encoder {kind!r}; choose one of {ENCODERS}.")


ENCODERS = ("onehot", "tiny", "pretrained")


ENCODER_LABELS = {"onehot": "one-hot label", "tiny": "tiny GPT (from scratch)",
                  "pretrained": "pretrained MiniLM (frozen)"}

"""Text encoders behind one interface (chapter 6): the `TextEncoder` protocol and the label-lookup encoder.

Chapter 6 conditions one generator on three text encoders and compares them; every encoder declares the
same small interface, so the generator, the metrics and the next chapters can take any of them:

  name: str                              a label for tables and file metadata
  dim: int                               the size of one embedding
  encode(texts: list[str]) -> Tensor     (N, dim) embeddings on the CPU

Implemented by LabelLookupEncoder and ScratchTextEncoder (here), text.TinyTextEncoder and
pretrained.PretrainedTextEncoder (chapter 5). An encoder with `trainable = True` (ScratchTextEncoder) is an
nn.Module that `conditional.train_conditional` trains together with the generator.
"""
from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

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


_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def words_of(text: str) -> list:
    """The lower-case words of a prompt ("A T-shirt, dark" => ["a", "t-shirt", "dark"])."""
    return _WORD.findall(text.lower())


class ScratchTextEncoder(nn.Module):
    """A text encoder with no pretraining, trained end to end with the generator (chapter 6, the fair baseline).

    One learned vector per word of its vocabulary (the words of the training captions); a prompt is the
    mean of its known words' vectors, scaled to unit length. Words it has never seen are skipped, so a
    prompt made only of unseen words ("a purse") encodes as the zero vector: the "no prompt" of condition
    dropout. `conditional.train_conditional` trains the word vectors with the generator's loss, so they
    learn whatever tells the classes apart in the captions it trains on, and nothing else.

    Lesson: 06_text_to_image.ipynb, "2. Three text encoders".
    """

    trainable = True

    def __init__(self, vocabulary, dim: int = 64, seed: int = 0):
        super().__init__()
        words = sorted({w for w in vocabulary if isinstance(w, str) and w})
        if not words:
            raise ValueError("the vocabulary is empty; pass the words of the training captions "
                             "(ScratchTextEncoder.for_dataset(dataset) builds it).")
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}.")
        self.index = {w: i + 1 for i, w in enumerate(words)}  # 0: padding and unknown words
        self.dim, self.name, self.trained_steps = dim, "from scratch (end to end)", 0
        self.embedding = nn.Embedding(len(words) + 1, dim, padding_idx=0)
        with torch.no_grad():  # its own generator: the same seed gives the same encoder, whatever ran before
            w = torch.randn(len(words) + 1, dim, generator=torch.Generator().manual_seed(seed))
            self.embedding.weight.copy_(w / dim ** 0.5)
            self.embedding.weight[0].zero_()

    @classmethod
    def for_dataset(cls, dataset: str, dim: int = 64, seed: int = 0) -> "ScratchTextEncoder":
        """A fresh (untrained) encoder whose vocabulary is every word of `dataset`'s training captions."""
        return cls({w for t in captions.all_captions(dataset, "train") for w in words_of(t)}, dim, seed)

    def token_ids(self, texts) -> torch.Tensor:
        """texts (N) => word ids (N, L), 0 for padding and for words outside the vocabulary."""
        ids = [[self.index.get(w, 0) for w in words_of(t)] for t in validate_texts(texts)]
        width = max(1, max(len(i) for i in ids))
        return torch.tensor([i + [0] * (width - len(i)) for i in ids], dtype=torch.long)

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Word ids (N, L) => unit-length mean of the known words' vectors (N, dim); zeros if none is known."""
        ids = ids.to(self.embedding.weight.device)
        known = (ids > 0).sum(1, keepdim=True).clamp_min(1)
        return F.normalize(self.embedding(ids).sum(1) / known, dim=1)  # padding rows are zero vectors

    def forward(self, texts) -> torch.Tensor:
        return self.embed_ids(self.token_ids(texts))

    @torch.no_grad()
    def encode(self, texts) -> torch.Tensor:
        return self.forward(texts).float().cpu()


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
    if kind == "scratch":
        return ScratchTextEncoder.for_dataset(dataset)
    if kind == "pretrained":
        from .pretrained import PretrainedTextEncoder
        return PretrainedTextEncoder()
    raise ValueError(f"Unknown encoder {kind!r}; choose one of {ENCODERS}.")


ENCODERS = ("onehot", "scratch", "tiny", "pretrained")


ENCODER_LABELS = {"onehot": "one-hot label", "scratch": "from scratch (end to end)",
                  "tiny": "tiny GPT (chapter 5, frozen)", "pretrained": "pretrained MiniLM (frozen)"}

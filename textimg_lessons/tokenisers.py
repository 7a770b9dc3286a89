"""Tokenisation (chapter 5): text => token ids and back, for the tiny GPT.

  validate_texts                                     a batch of prompts: non-empty strings
  CharTokenizer, WordTokenizer, train_subword_tokenizer   three tokenisers, from characters to byte-level BPE
  SubwordAdapter, as_course_tokenizer                 one interface for all three (encode, decode, token_id, vocab_size)
  batch_encode                                        <bos> text <eos>, padded: the tiny GPT's input
"""
from __future__ import annotations

import re

import torch

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]


def validate_texts(texts) -> list:
    """Validate a batch of prompts: a list of non-empty strings (a single string counts as a batch of one)."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__} ({t!r:.40}), not a string; convert it with str() "
                            "or drop it.")
        if not t.strip():
            raise ValueError(f"texts[{i}] is empty or whitespace only ({t!r}); an empty prompt has no meaning to "
                             "encode. Remove it or write a prompt.")
    return list(texts)


class CharTokenizer:
    """Characters as tokens. Ids 0-3 are <pad>, <bos>, <eos>, <unk>; characters not seen in fit() map to <unk>.

    Lesson: 05_language_models.ipynb, "2. Tokenisation: from text to integers".
    """

    def __init__(self, corpus):
        chars = sorted({c for text in corpus for c in text})
        self.itos = SPECIAL_TOKENS + chars
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def tokens(self, text: str) -> list:
        return list(text)

    def encode(self, text: str) -> list:
        return [self.stoi.get(t, self.stoi[UNK]) for t in self.tokens(text)]

    def decode(self, ids) -> str:
        return "".join(self.itos[i] for i in ids if self.itos[i] not in (PAD, BOS, EOS))

    def token_id(self, token: str) -> int | None:
        return self.stoi.get(token)


class WordTokenizer(CharTokenizer):
    """Words (and punctuation marks) as tokens; unseen words map to <unk>, so decode() cannot restore them.

    Lesson: 05_language_models.ipynb, "2. Tokenisation: from text to integers".
    """

    def __init__(self, corpus):
        words = sorted({w for text in corpus for w in self.tokens(text)})
        self.itos = SPECIAL_TOKENS + words
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def tokens(self, text: str) -> list:
        return re.findall(r"[\w'-]+|[^\w\s]", text.lower())

    def decode(self, ids) -> str:
        out = " ".join(self.itos[i] for i in ids if self.itos[i] not in (PAD, BOS, EOS))
        return out.replace(" ,", ",").replace(" .", ".")


def train_subword_tokenizer(corpus, vocab_size: int = 400):
    """Byte-level BPE (as in GPT-2) trained with the `tokenizers` library on `corpus`.

    Every byte is in the base vocabulary, so no text is ever unknown and decode(encode(s)) == s;
    merges learned from the corpus make frequent words single tokens. Special tokens: <pad> <bos> <eos> <unk>.

    Lesson: 05_language_models.ipynb, "2. Tokenisation: from text to integers".
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    corpus = list(corpus)
    if not corpus:
        raise ValueError("corpus is empty; pass a list of caption strings (see captions.caption_corpus).")
    base = len(pre_tokenizers.ByteLevel.alphabet()) + len(SPECIAL_TOKENS)
    if vocab_size < base:
        raise ValueError(f"vocab_size must be at least {base} (256 bytes + special tokens), got {vocab_size}.")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


class SubwordAdapter:
    """A `tokenizers.Tokenizer` (from train_subword_tokenizer) seen through the course's tokeniser interface.

    The course's interface is CharTokenizer's: encode(text) -> list of ids, decode(ids) -> text without
    special tokens, token_id(token) -> id or None, vocab_size. The library's own encode returns an object
    with .ids, so the tiny GPT code talks to it through this adapter.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list:
        return self.tokenizer.encode(text).ids

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def token_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)


def as_course_tokenizer(tokenizer):
    """The tokeniser itself if it is one of the course's (CharTokenizer, WordTokenizer, SubwordAdapter),
    else a `tokenizers.Tokenizer` wrapped in SubwordAdapter."""
    if isinstance(tokenizer, (CharTokenizer, SubwordAdapter)):
        return tokenizer
    from tokenizers import Tokenizer
    if isinstance(tokenizer, Tokenizer):
        return SubwordAdapter(tokenizer)
    raise TypeError(f"unknown tokeniser {type(tokenizer).__name__}; use CharTokenizer, WordTokenizer or "
                    "train_subword_tokenizer.")


def token_ids(tokenizer, text: str) -> list:
    """Token ids of text, for any of the course's tokenisers."""
    return as_course_tokenizer(tokenizer).encode(text)


def decode_ids(tokenizer, ids) -> str:
    """Text of token ids without special tokens, for any of the course's tokenisers."""
    return as_course_tokenizer(tokenizer).decode(ids)


def special_id(tokenizer, token: str) -> int:
    """The id of a special token (PAD, BOS, EOS, UNK); a clear error if the tokeniser lacks it."""
    i = as_course_tokenizer(tokenizer).token_id(token)
    if i is None:
        raise ValueError(f"the tokenizer has no {token} token; train it with train_subword_tokenizer or use "
                         "CharTokenizer/WordTokenizer.")
    return i


def vocab_size_of(tokenizer) -> int:
    return as_course_tokenizer(tokenizer).vocab_size


def batch_encode(tokenizer, texts, block_size: int):
    """<bos> text <eos>, right-padded with <pad> and cut to block_size: returns (ids, attention_mask), (N, T).

    Lesson: 05_language_models.ipynb, "5. A tiny GPT trained on the captions".
    """
    texts = validate_texts(texts)
    pad, bos, eos = (special_id(tokenizer, t) for t in (PAD, BOS, EOS))
    seqs = [([bos] + token_ids(tokenizer, t) + [eos])[:block_size] for t in texts]
    T = max((len(s) for s in seqs), default=1)
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask

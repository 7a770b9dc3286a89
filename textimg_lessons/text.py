"""A tiny GPT (chapter 5): a causal transformer trained on the caption corpus, then used as a text encoder.

  Block, TinyGPT, lm_loss, train_tiny_gpt, sample_captions     the model, its loss, training and sampling
  mean_pool, TinyTextEncoder                                   the same network as chapter 6's from-scratch encoder
  default_corpus, entropy_floor, cosine_matrix, synonym_retrieval   the chapter's measurements
  split_corpus, validation_sets, perplexity, token_losses     seen captions vs unseen templates

Around it: tokenisers (text => ids), attention (attention from scratch) and pretrained (the pretrained
sentence encoder all-MiniLM-L6-v2, chapter 6's third encoder).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import captions, config
from .attention import MultiHeadSelfAttention
from .histories import TinyGPTHistory
from .tokenisers import (BOS, EOS, PAD, batch_encode, decode_ids, special_id, token_ids, train_subword_tokenizer,
                         validate_texts, vocab_size_of)


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


def split_corpus(corpus, val_fraction: float = 0.1) -> tuple:
    """(training captions, validation captions): the validation set is the last `val_fraction` of the corpus.

    Lesson: 05_language_models.ipynb, "Seen captions and unseen templates".
    """
    corpus = list(corpus)
    n_val = max(1, int(len(corpus) * val_fraction))
    return corpus[:-n_val], corpus[-n_val:]


def validation_sets(corpus, val_fraction: float = 0.1, seed: int = 0) -> dict:
    """Two validation sets of the same size for a model trained by `train_tiny_gpt(corpus)`.

    "seen captions": train_tiny_gpt's own validation set. The corpus has only a few hundred distinct
    captions, so nearly all of these also occur verbatim in the training part: a low loss on them can
    come from memorising. "unseen templates": captions from captions.RECOMBINED_TEMPLATES, templates the
    model never trained on, made of words it did see: a low loss on them needs generalisation.

    Lesson: 05_language_models.ipynb, "Seen captions and unseen templates".
    """
    _, val = split_corpus(corpus, val_fraction)
    return {"seen captions": val, "unseen templates": captions.recombined_corpus("both", len(val), seed)}


def perplexity(model: TinyGPT, tokenizer, texts) -> float:
    """exp(mean loss per predicted token) of `model` on `texts`, encoded as train_tiny_gpt encodes them.

    Lesson: 05_language_models.ipynb, "Seen captions and unseen templates".
    """
    texts = validate_texts(list(texts))
    if not texts:
        raise ValueError("perplexity needs at least one text.")
    ids, _ = batch_encode(tokenizer, texts, model.block_size + 1)
    return math.exp(evaluate_lm(model, ids, special_id(tokenizer, PAD)))


@torch.no_grad()
def token_losses(model: TinyGPT, tokenizer, text: str) -> list:
    """[(token, loss in nats)] for each predicted token of one caption, <eos> included.

    Lesson: 05_language_models.ipynb, "Seen captions and unseen templates".
    """
    ids, _ = batch_encode(tokenizer, validate_texts([text]), model.block_size + 1)
    ids = ids.to(next(model.parameters()).device)  # (1, T): <bos> text <eos>, no padding
    model.eval()
    nll = F.cross_entropy(model(ids[:, :-1])[0], ids[0, 1:], reduction="none")  # (T-1,)
    eos = special_id(tokenizer, EOS)
    tokens = [EOS if i == eos else decode_ids(tokenizer, [i]) for i in ids[0, 1:].tolist()]
    return list(zip(tokens, nll.tolist()))


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
    train_text, val_text = split_corpus(corpus, val_fraction)
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
    val_loss = [val_loss_0] + r.evals["val_loss"]
    history = TinyGPTHistory(step=[0] + r.steps, train_loss=[float("nan")] + r.losses, val_loss=val_loss,
                             train_seconds=r.seconds, val_perplexity=math.exp(val_loss[-1]))
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


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average hidden states over real tokens only: (N, T, D) and (N, T) mask of 1/0 => (N, D).

    Lesson: 05_language_models.ipynb, "Exercise 3 (2 points): mean pooling".
    """
    if hidden.dim() != 3 or attention_mask.dim() != 2 or hidden.shape[:2] != attention_mask.shape:
        raise ValueError(f"hidden must be (N, T, D) and attention_mask (N, T); got {tuple(hidden.shape)} and "
                         f"{tuple(attention_mask.shape)}.")
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (N, T) => (N, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)  # (N, T, D) => (N, D)


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

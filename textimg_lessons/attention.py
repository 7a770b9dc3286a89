"""Attention from scratch (chapter 5): the weights, the scaled dot-product, the causal mask and the multi-head
layer, each checked in the notebook against PyTorch's own operator."""
from __future__ import annotations

import math

import torch
import torch.nn as nn

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

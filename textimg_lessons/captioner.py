"""Image -> caption (chapter 6, the reverse direction): the tiny GPT of chapter 5 reads judge features.

  ImageCaptioner        judge features as a prefix token of the tiny GPT
  train_captioner       fine-tunes a copy of the tiny GPT on (image features, caption) pairs
  caption_images, caption_accuracy, cycle_consistency   prompt -> image -> caption, and how often it comes back
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from . import captions
from .config import get_device, pick, seed_everything
from .histories import CaptionerHistory
from .metrics import judge_features
from .tokenisers import BOS, EOS, PAD, batch_encode, decode_ids, special_id
from .train import run_loop, step_rounds
from .conditional import ConditionalVAE, guidance_or_default, sample
from .encoders import LabelLookupEncoder


class ImageCaptioner(nn.Module):
    """The tiny GPT of chapter 5 conditioned on an image (chapter 6): judge features as a prefix token.

    A linear layer maps the judge's (N, 128) features to one token embedding placed before <bos>; the
    GPT's own blocks then predict the caption token by token, attending to that prefix at every step.

    Lesson: 06_text_to_image.ipynb, "8. The reverse direction: captioning".
    """

    def __init__(self, gpt, tokenizer, feature_dim: int = 128):
        super().__init__()
        self.gpt, self.tokenizer = gpt, tokenizer
        self.prefix = nn.Linear(feature_dim, gpt.d_model)

    def logits(self, feats: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """feats (N, F), ids (N, T) => logits (N, T + 1, V); position t scores token t (position 0: <bos>)."""
        if 1 + ids.shape[1] > self.gpt.block_size:
            raise ValueError(f"prefix + {ids.shape[1]} tokens exceed the GPT's block_size {self.gpt.block_size}.")
        x = torch.cat([self.prefix(feats)[:, None], self.gpt.tok_emb(ids)], dim=1)  # (N, 1 + T, d_model)
        return self.gpt.logits_from_embeddings(x)

    @torch.no_grad()
    def caption(self, feats: torch.Tensor, max_tokens: int | None = None) -> list:
        """Greedy captions for judge features (N, F): a list of N strings."""
        self.eval()
        bos, eos = special_id(self.tokenizer, BOS), special_id(self.tokenizer, EOS)
        max_tokens = max_tokens or self.gpt.block_size - 2
        device = next(self.parameters()).device
        ids = torch.full((len(feats), 1), bos, dtype=torch.long, device=device)
        done = torch.zeros(len(feats), dtype=torch.bool, device=device)
        for _ in range(max_tokens):
            nxt = self.logits(feats.to(device), ids)[:, -1].argmax(-1)  # (N,) most likely next token
            nxt[done] = eos
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done |= nxt == eos
            if bool(done.all()):
                break
        out = []
        for row in ids[:, 1:].tolist():
            out.append(decode_ids(self.tokenizer, row[:row.index(eos)] if eos in row else row).strip())
        return out


def train_captioner(tiny, judge, data, num_steps: int | None = None, num_images: int | None = None,
                    batch_size: int = 64, lr: float = 2e-3, seed: int = 0, progress: bool = True):
    """Fine-tune a copy of the tiny GPT (a TinyTextEncoder's model) to caption images; (captioner, history).

    Training pairs: judge features of training images and their training-family captions.

    Lesson: 06_text_to_image.ipynb, "8. The reverse direction: captioning".
    """
    num_steps = num_steps or pick(600, 40)
    num_images = min(num_images or pick(20000, 1000), len(data.X_train))
    g = seed_everything(seed)
    model = ImageCaptioner(copy.deepcopy(tiny.model), tiny.tokenizer, getattr(judge, "feature_dim", 128))
    device = get_device()
    model.to(device).train()
    feats = judge_features(judge, data.X_train[:num_images])  # (M, 128), computed once
    caps = captions.make_captions(data, "train", "train", seed=seed)[:num_images]
    ids, _ = batch_encode(tiny.tokenizer, caps, model.gpt.block_size - 1)  # (M, T): <bos> caption <eos> <pad>...
    pad = special_id(tiny.tokenizer, PAD)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)

    def batch_loss(step):
        b = torch.randint(len(ids), (batch_size,), generator=g)
        x_ids = ids[b].to(device)
        logits = model.logits(feats[b].to(device), x_ids[:, :-1])  # predicts x_ids[:, 0..T-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x_ids.reshape(-1), ignore_index=pad)
        return loss, len(b)

    # one step per round, so the history keeps every step's loss
    r = run_loop(model, opt, step_rounds(num_steps, 1), batch_loss, clip_grad_norm=1.0, desc="captioner",
                 progress=progress)
    return model, CaptionerHistory(loss=r.losses, train_seconds=r.seconds)


def caption_images(captioner: ImageCaptioner, judge, images: torch.Tensor) -> list:
    """Captions for images (N, 1, 28, 28) in [0, 1].

    Lesson: 06_text_to_image.ipynb, "8. The reverse direction: captioning".
    """
    return captioner.caption(judge_features(judge, images))


def caption_accuracy(captions_text: list, labels: torch.Tensor, dataset: str) -> float:
    """Share of captions whose class word (a training class word) names the true class.

    Lesson: 06_text_to_image.ipynb, "8. The reverse direction: captioning".
    """
    reader = LabelLookupEncoder(dataset)
    labels = torch.as_tensor(labels).tolist()
    if len(captions_text) != len(labels) or not labels:
        raise ValueError(f"need one caption per label (got {len(captions_text)} and {len(labels)}), at least one.")
    return sum(reader.read(c) == y for c, y in zip(captions_text, labels)) / len(labels)


def cycle_consistency(model: ConditionalVAE, encoder, captioner: ImageCaptioner, judge, dataset: str,
                      family: str = "train", n_per_prompt: int = 4, seed: int = 0,
                      guidance: float | None = None) -> dict:
    """prompt -> image -> caption: share of captions that name the class the prompt asked for.

    Lesson: 06_text_to_image.ipynb, "8. The reverse direction: captioning".
    """
    texts, labels = captions.prompt_set(dataset, family)
    images = sample(model, encoder.encode(texts), n_per_prompt, torch.Generator().manual_seed(seed),
                    guidance_or_default(guidance))
    caps = caption_images(captioner, judge, images)
    requested = labels.repeat_interleave(n_per_prompt)
    return {"accuracy": caption_accuracy(caps, requested, dataset), "prompts": texts, "images": images,
            "captions": caps, "requested": requested}

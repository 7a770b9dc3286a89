"""Chapter 7's generator as a product: prompt -> images with an honest answer, and the shipped weights.

diffusion.py holds the generator itself (noising, flow matching, the latent codec, the denoiser, the samplers,
training). This module wraps it into what a user calls and what `textimg-lessons generate` loads:

  OUT_OF_DOMAIN_PROMPTS, familiarity,   the unknown-prompt check: the cosine of a prompt to the nearest training
  auroc                                 caption, and how well it separates known from unknown prompts
  Generation, TextToImage               prompt -> images, with the prompt's familiarity and nearest classes
  train_text_to_image                   the chapter's whole recipe: latent VAE, token table, denoiser
  shipped_model_path, save_model,       the shipped weights behind `textimg-lessons generate --model diffusion`,
  load_model, train_shipped             and the command that rebuilds them (`textimg-lessons train diffusion`):
                                        training and saving stay together because the file's metadata records
                                        how it was trained
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import get_device
from .datasets import require_dataset
from .histories import ShippedFile, TextToImageHistory
from .diffusion import (RECIPE, Denoiser, LatentCodec, TokenTable, pool, sample_latents, token_states,
                        train_codec, train_diffusion)

DATASETS = ("fashion_mnist", "mnist")


# ---------------------------------------------------------------- prompts the model cannot serve

# Prompts outside what chapter 7's generators were trained on: other objects, and other languages (MiniLM
# was trained on English; "一件连衣裙" means "a dress"). Documented here so the separation can be measured.
OUT_OF_DOMAIN_PROMPTS = [
    "a red sports car", "a cat sleeping on a sofa", "a bowl of noodle soup", "the eiffel tower at night",
    "a mountain landscape", "a laptop computer", "a cup of coffee", "a bicycle", "an elephant",
    "a birthday cake", "a rainy street in tokyo", "a slice of pizza",
    "一件连衣裙", "一双运动鞋", "一条裤子", "数字七", "un vestido rojo", "eine Tasche", "une chemise", "три",
]


def familiarity(query: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Cosine of each query vector (Q, D) to its nearest known vector (K, D): (Q,). Both unit length.

    Lesson: 07_diffusion.ipynb, "10. Prompts the model cannot serve".
    """
    return (query @ known.T).amax(1)


def auroc(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    """Probability that a random in-domain prompt scores higher than a random out-of-domain one (ties: 1/2).

    Lesson: 07_diffusion.ipynb, "10. Prompts the model cannot serve".
    """
    diff = scores_in.double()[:, None] - scores_out.double()[None, :]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


# ---------------------------------------------------------------- prompt -> images, with an honest answer

@dataclass
class Generation:
    """What `TextToImage.generate` returns: the images, and how familiar the prompt was to the model.

    Lesson: 07_diffusion.ipynb, "10. Prompts the model cannot serve".
    """

    images: torch.Tensor          # (n, 1, 28, 28) in [0, 1]
    familiarity: float            # cosine of the prompt to the nearest training caption
    known: bool                   # familiarity >= the model's threshold
    nearest: list                 # the classes of the closest training captions, most similar first
    seconds: float                # wall time of encoding + sampling + decoding


class TextToImage:
    """Chapter 7's generator as one object: encoder + denoiser + codec + what it knows (for unknown prompts).

    known_pooled (U, D): pooled embeddings of the distinct training captions; known_labels (U,): their class.

    Lesson: 07_diffusion.ipynb, "10. Prompts the model cannot serve".
    """

    def __init__(self, codec: LatentCodec, model: Denoiser, encoder, known_pooled: torch.Tensor,
                 known_labels: torch.Tensor, dataset: str, threshold: float = RECIPE["unknown_threshold"]):
        self.codec, self.model, self.encoder = codec.eval(), model.eval(), encoder
        self.known_pooled = F.normalize(known_pooled.float(), dim=-1)
        self.known_labels = known_labels.long()
        self.dataset = require_dataset(dataset)
        self.threshold = threshold

    def check_prompt(self, states: torch.Tensor, mask: torch.Tensor):
        """(familiarity (P,), nearest classes per prompt (P, 3)) from the prompts' token states."""
        sims = pool(states, mask) @ self.known_pooled.T                   # (P, U)
        order = sims.argsort(dim=1, descending=True)
        nearest = []
        for row in self.known_labels[order]:
            seen = list(dict.fromkeys(row.tolist()))                      # classes by their best caption
            nearest.append(seen[:3])
        return sims.amax(1), nearest

    @torch.no_grad()
    def images_for(self, states, mask, n_per_prompt: int = 1, steps: int = RECIPE["sample_steps"],
                   guidance: float = RECIPE["guidance"], sampler: str = "heun", generator=None) -> torch.Tensor:
        z = sample_latents(self.model, states, mask, n_per_prompt, steps, guidance, sampler, generator)
        return self.codec.decode(z.to(self.codec.mean.device)).cpu()

    @torch.no_grad()
    def generate(self, prompt: str, n: int = 16, steps: int = RECIPE["sample_steps"], guidance: float = RECIPE["guidance"],
                 sampler: str = "heun", seed: int = 0) -> Generation:
        start = time.perf_counter()
        states, mask = token_states(self.encoder, [prompt])
        fam, nearest = self.check_prompt(states, mask)
        images = self.images_for(states, mask, n, steps, guidance, sampler, torch.Generator().manual_seed(seed))
        return Generation(images, float(fam[0]), bool(fam[0] >= self.threshold), nearest[0],
                          time.perf_counter() - start)


# ---------------------------------------------------------------- shipped weights

# The files' format tag, written when this class lived in diffusion.py; kept so the shipped files still load.
SHIPPED_FORMAT = "textimg_lessons.diffusion.TextToImage/v1"
SHIPPED_COMMAND = "textimg-lessons train diffusion"


def shipped_model_path(dataset: str):
    from .config import shipped_data_dir
    return shipped_data_dir() / f"diffusion_{require_dataset(dataset)}.safetensors"


def save_model(t2i: TextToImage, path, metadata: dict | None = None):
    """Save codec, denoiser and the known-caption embeddings as float16 safetensors (write, then rename).

    Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
    """
    from .weights import write_weights
    state = {f"codec.{k}": v for k, v in t2i.codec.state_dict().items()}
    state.update({f"model.{k}": v for k, v in t2i.model.state_dict().items()})
    state["known.pooled"], state["known.labels"] = t2i.known_pooled, t2i.known_labels
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()).contiguous()
             for k, v in state.items()}
    meta = {"format": SHIPPED_FORMAT, "dataset": t2i.dataset, "threshold": t2i.threshold,
            "codec_latent_dim": t2i.codec.latent_dim, "codec_channels": t2i.codec.encoder.features[0].out_channels,
            **{f"model_{k}": v for k, v in t2i.model.config().items()}}
    meta.update(metadata or {})
    return write_weights(path, state, meta)


def load_model(dataset: str, path=None, encoder=None, device=None) -> TextToImage:
    """The shipped (or a saved) chapter-7 generator; `.metadata` says how it was trained.

    encoder: a text.PretrainedTextEncoder to reuse (default: load MiniLM, the encoder it was trained with).

    Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
    """
    from .weights import read_weights, require_weights_file
    dataset = require_dataset(dataset)
    path = require_weights_file(path if path is not None else shipped_model_path(dataset), "diffusion weights",
                                SHIPPED_COMMAND)
    state, meta = read_weights(path)   # a WeightsFileError (a ValueError) says if the file is unreadable
    if meta.get("format") != SHIPPED_FORMAT or meta.get("dataset") != dataset:
        raise ValueError(f"{path.name} is not a {dataset} diffusion model saved by save_model "
                         f"(format {meta.get('format')!r}, dataset {meta.get('dataset')!r}).")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    codec = LatentCodec(int(meta["codec_latent_dim"]), int(meta["codec_channels"]))
    codec.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("codec.")})
    cfg = {k[6:]: meta[k] for k in meta if k.startswith("model_")}
    model = Denoiser(**{k: (v if k == "conditioning" else int(v)) for k, v in cfg.items()})
    model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    if encoder is None:
        from .pretrained import PretrainedTextEncoder
        encoder = PretrainedTextEncoder()
    device = device or get_device()
    t2i = TextToImage(codec.to(device), model.to(device), encoder, state["known.pooled"], state["known.labels"],
                      dataset, float(meta["threshold"]))
    t2i.metadata = meta
    return t2i


def train_text_to_image(data, encoder, conditioning: str = "cross", num_steps: int | None = None,
                        codec: LatentCodec | None = None, table: TokenTable | None = None, seed: int = 0,
                        progress: bool = True):
    """The chapter's whole recipe: latent VAE (unless given), token table (unless given), denoiser.

    Returns (TextToImage, history) with history "codec_seconds", "table_seconds", "seconds" (denoiser).

    Lesson: 07_diffusion.ipynb, "6. Training: pooled vector vs cross-attention".
    """
    codec_seconds = 0.0
    if codec is None:
        codec, h = train_codec(data, seed=seed, progress=progress)
        codec_seconds = h.seconds
    table = table if table is not None else TokenTable(data, encoder, seed=seed)
    model, h = train_diffusion(data, codec, table, num_steps, conditioning, seed=seed, progress=progress)
    history = TextToImageHistory(codec_seconds=codec_seconds, table_seconds=table.encode_seconds, loss=h.loss,
                                 step=h.step, seconds=h.seconds, cpu_seconds=h.cpu_seconds)
    return TextToImage(codec, model, encoder, table.pooled, table.labels, data.name), history


def train_shipped(datasets=DATASETS, out_dir=None, seed: int = 0) -> list:
    """Train and save the generators behind `textimg-lessons generate --model diffusion` (full recipe).

    Lesson: 07_diffusion.ipynb, "9. The shipped generator against chapter 6's".
    """
    from pathlib import Path

    from .data import load_dataset
    from .pretrained import PretrainedTextEncoder
    encoder = PretrainedTextEncoder()
    report = []
    for ds in datasets:
        start = time.perf_counter()
        data = load_dataset(ds)
        t2i, h = train_text_to_image(data, encoder, seed=seed)
        path = shipped_model_path(ds) if out_dir is None else Path(out_dir) / shipped_model_path(ds).name
        save_model(t2i, path, {"command": SHIPPED_COMMAND, "seed": seed, "steps": h["step"][-1],
                               "codec_seconds": round(h["codec_seconds"], 1), "train_seconds": round(h["seconds"], 1),
                               "train_cpu_seconds": round(h["cpu_seconds"], 1), "source": data.source,
                               "threads": torch.get_num_threads()})
        report.append(ShippedFile(ds, path.name, round(time.perf_counter() - start, 1)))
        print(report[-1].line(), flush=True)
    return report

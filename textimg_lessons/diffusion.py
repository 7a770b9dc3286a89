"""Text-to-image diffusion (chapter 7): flow matching in a VAE's latent space, with cross-attention to the
language model's token states and classifier-free guidance.

The pipeline is prompt -> MiniLM token states -> denoiser (run `steps` times, from noise to a latent)
-> the VAE decoder of chapter 4 -> image. Contents, in the order the chapter builds them:

  ddpm_alpha_bar, ddpm_forward_chain,   the forward noising process of DDPM and its closed form (the chapter
  ddpm_closed_form                      checks one against the other numerically)
  interpolate, velocity_target,         flow matching: the straight path from data (t=0) to noise (t=1) and
  flow_matching_loss                    the regression target v = noise - x0 along it
  LatentCodec, train_codec              chapter 4's conv encoder/decoder as a beta-VAE on grey images; the
                                        denoiser works on its 16 standardised latent numbers, not on 784 pixels
  cross_attention, Denoiser             a small transformer over latent tokens: adaLN for time, self-attention,
                                        cross-attention over the prompt's token states (or over its one pooled
                                        vector: conditioning="pooled"), with a null token that always attends
  guided_velocity, sample_latents       classifier-free guidance and the Euler / Heun samplers
  TokenTable, train_diffusion           captioned training with condition dropout; token states are computed
                                        once per distinct caption

The generator as a product (prompt -> images with the unknown-prompt check, the shipped weights) is in
text_to_image.py.

Guidance convention. Ho & Salimans (2022) write eps~ = (1 + w) eps(c) - w eps(0), so w = 0 is plain
conditional sampling. Chapter 6 (and this module) use the scale s = 1 + w: v~ = v(0) + s (v(c) - v(0)),
so s = 1 is plain sampling; chapter 6's default s = 2 is the paper's w = 1.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from . import vae, vocabulary
from .datasets import require_dataset
from .histories import CodecHistory, DiffusionHistory
from .config import FullFast, Recipe, get_device, seed_everything
from .train import run_loop, step_rounds

# The chapter's recipe: the notebook, the benchmark and `train diffusion` all read it, so they cannot drift.
RECIPE = Recipe(
    latent_dim=16,
    codec_channels=32,
    codec_kl_weight=0.5,    # beta of the latent VAE: small enough for sharp decodes, > 0 for a smooth latent
    codec_epochs=FullFast({"fashion_mnist": 6, "mnist": 30}, {"fashion_mnist": 1, "mnist": 1}),
    codec_batch_size=128,
    codec_lr=2e-3,
    width=128,
    tokens=8,               # the latent is read as 8 tokens of `width` features
    depth=4,
    heads=4,
    batch_size=256,
    lr=1e-3,
    num_steps=FullFast({"fashion_mnist": 4000, "mnist": 3000}, {"fashion_mnist": 60, "mnist": 60}),
    cond_drop=0.15,         # share of examples trained with no prompt (guidance needs that)
    captions_per_image=4,
    sample_steps=16,        # Heun steps at generation time (31 network evaluations, 62 with guidance)
    guidance=2.0,           # scale s; s = 1 means no guidance
    unknown_threshold=0.5,  # cosine to the nearest training caption below which a prompt is unknown
)


# ---------------------------------------------------------------- noising (DDPM) and flow matching

def ddpm_alpha_bar(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """alpha_bar_t = prod_{s<=t} (1 - beta_s) for DDPM's linear beta schedule: (num_steps,) float64.

    Lesson: 07_diffusion.ipynb, "1. Forward noising".
    """
    betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


def ddpm_forward_chain(x0: torch.Tensor, t: int, betas: torch.Tensor, generator=None) -> torch.Tensor:
    """Noise x0 step by step: x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) eps_s, for s = 1..t.

    Lesson: 07_diffusion.ipynb, "1. Forward noising".
    """
    x = x0.double()
    for s in range(t):
        eps = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        x = (1 - betas[s]).sqrt() * x + betas[s].sqrt() * eps
    return x


def ddpm_closed_form(x0: torch.Tensor, t: int, alpha_bar: torch.Tensor, generator=None) -> torch.Tensor:
    """Jump straight to step t: x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, one Gaussian draw.

    Lesson: 07_diffusion.ipynb, "1. Forward noising".
    """
    a = alpha_bar[t - 1]
    eps = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    return a.sqrt() * x0.double() + (1 - a).sqrt() * eps


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Flow matching's path: x_t = (1 - t) x0 + t noise, t in [0, 1] per example (t: (N,)).

    Lesson: 07_diffusion.ipynb, "2. Flow matching".
    """
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """d x_t / d t along the straight path: the denoiser regresses on this (a plain MSE, like chapter 4's).

    Lesson: 07_diffusion.ipynb, "2. Flow matching".
    """
    return noise - x0


def flow_matching_loss(model, z0: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean squared error between the model's velocity at a random (t, x_t) and noise - z0.

    Lesson: 07_diffusion.ipynb, "2. Flow matching".
    """
    t = torch.rand(len(z0), generator=generator).to(z0.device)
    noise = torch.randn(z0.shape, generator=generator).to(z0.device)
    v = model(interpolate(z0, noise, t), t, ctx, ctx_mask)
    return F.mse_loss(v, velocity_target(z0, noise))


# ---------------------------------------------------------------- the latent space (chapter 4's networks)

class LatentCodec(nn.Module):
    """Chapter 4's conv encoder and decoder as a beta-VAE on grey images; latents are standardised.

    encode(x) (N, 1, 28, 28) => z (N, latent_dim), the posterior mean minus the training mean, divided by
    the training std (so every dimension has unit scale, like the noise it will be mixed with);
    decode(z) => images in [0, 1].

    Lesson: 07_diffusion.ipynb, "3. Where the denoiser works".
    """

    def __init__(self, latent_dim: int = RECIPE["latent_dim"], channels: int = RECIPE["codec_channels"]):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = vae.ConvEncoder(latent_dim, channels=channels)
        self.decoder = vae.ConvDecoder(latent_dim, channels=channels)
        self.register_buffer("mean", torch.zeros(latent_dim))
        self.register_buffer("std", torch.ones(latent_dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (self.encoder(x)[0] - self.mean) / self.std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z * self.std + self.mean))

    @torch.no_grad()
    def encode_all(self, X: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        was = self.training
        self.eval()
        device = self.mean.device
        out = torch.cat([self.encode(X[i:i + batch_size].to(device)).cpu() for i in range(0, len(X), batch_size)])
        self.train(was)
        return out


def train_codec(data, num_epochs: int | None = None, kl_weight: float = RECIPE["codec_kl_weight"],
                latent_dim: int = RECIPE["latent_dim"], seed: int = 0, batch_size: int = RECIPE["codec_batch_size"],
                lr: float = RECIPE["codec_lr"],
                device=None, progress: bool = True):
    """Train the LatentCodec on data.X_train (grey pixels, Bernoulli NLL + kl_weight * KL); return (codec, history).

    Afterwards the latent mean and std are measured on the training set, so that encode() is standardised.

    Lesson: 07_diffusion.ipynb, "3. Where the denoiser works".
    """
    dataset = require_dataset(data.name)
    num_epochs = num_epochs or RECIPE["codec_epochs"][dataset]
    g = seed_everything(seed)
    device = device or get_device()
    codec = LatentCodec(latent_dim).to(device)
    opt = torch.optim.Adam(codec.parameters(), lr=lr)
    X = data.X_train
    steps = num_epochs * math.ceil(len(X) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)

    def batch_loss(idx):
        x = X[idx].to(device)
        mu, logvar = codec.encoder(x)
        logits = codec.decoder(vae.reparameterize(mu, logvar))
        return (vae.bernoulli_nll(logits, x) + kl_weight * vae.gaussian_kl(mu, logvar)).mean(), len(x)

    epochs = (torch.randperm(len(X), generator=g).split(batch_size) for _ in range(num_epochs))
    result = run_loop(codec, opt, epochs, batch_loss, scheduler=sched, total=steps,
                      desc=f"latent VAE [{dataset}]", progress=progress)
    history = CodecHistory(loss=result.losses, seconds=result.seconds, cpu_seconds=result.cpu_seconds)
    with torch.no_grad():
        mus = torch.cat([codec.encoder(X[i:i + 1000].to(device))[0].cpu() for i in range(0, len(X), 1000)])
    codec.mean.copy_(mus.mean(0))
    codec.std.copy_(mus.std(0).clamp_min(1e-3))
    return codec, history


# ---------------------------------------------------------------- the denoiser

def cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v with padded keys masked out (chapter 5's attention, queries from another
    sequence). q (N, H, L, d), k and v (N, H, S, d), mask (N, S) of 1 = real token => (N, H, L, d).

    Lesson: 07_diffusion.ipynb, "5. Token states and cross-attention".
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])          # (N, H, L, S)
    scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class TimeEmbedding(nn.Module):
    """t in [0, 1] => (N, width): sinusoids of 16 frequencies, then a small MLP.

    Lesson: 07_diffusion.ipynb, "5. Token states and cross-attention".
    """

    def __init__(self, width: int, frequencies: int = 16):
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0, math.log(1000), frequencies)))
        self.mlp = nn.Sequential(nn.Linear(2 * frequencies, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[:, None] * self.freqs[None] * math.pi               # (N,) => (N, F)
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))         # => (N, width)


class DenoiserBlock(nn.Module):
    """Self-attention among latent tokens, cross-attention to the text, an MLP; time enters by adaLN.

    Lesson: 07_diffusion.ipynb, "5. Token states and cross-attention".
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False)
        self.self_qkv = nn.Linear(width, 3 * width)
        self.self_out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.cross_q = nn.Linear(width, width)
        self.cross_kv = nn.Linear(width, 2 * width)
        self.cross_out = nn.Linear(width, width)
        self.norm3 = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.ada = nn.Linear(width, 6 * width)   # shift, scale, gate for self-attention and for the MLP
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        N, L, W = x.shape
        return x.view(N, L, self.heads, W // self.heads).transpose(1, 2)       # (N, L, W) => (N, H, L, W/H)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        N, H, L, d = x.shape
        return x.transpose(1, 2).reshape(N, L, H * d)

    def forward(self, h, temb, ctx, ctx_mask):
        s1, b1, g1, s2, b2, g2 = self.ada(F.silu(temb))[:, None].chunk(6, dim=-1)   # each (N, 1, W)
        x = self.norm1(h) * (1 + s1) + b1
        q, k, v = self.self_qkv(x).chunk(3, dim=-1)
        h = h + g1 * self.self_out(self._merge(F.scaled_dot_product_attention(
            self._heads(q), self._heads(k), self._heads(v))))
        k, v = self.cross_kv(ctx).chunk(2, dim=-1)
        keep = ctx_mask.bool()[:, None, None, :]                                # (N, 1, 1, S)
        h = h + self.cross_out(self._merge(F.scaled_dot_product_attention(
            self._heads(self.cross_q(self.norm2(h))), self._heads(k), self._heads(v), attn_mask=keep)))
        x = self.norm3(h) * (1 + s2) + b2
        return h + g2 * self.mlp(x)


class Denoiser(nn.Module):
    """Velocity v(z_t, t, text) for a latent z_t (N, latent_dim).

    conditioning="cross": the latent tokens attend over every token state of the prompt (N, S, text_dim).
    conditioning="pooled": the same network attends over one token, the prompt's mean-pooled vector, so
    the two differ only in what the text offers. A learned null token is always in the context: with the
    prompt dropped (all of ctx_mask 0) it is the only thing to attend to, which is the "no prompt" case.

    Lesson: 07_diffusion.ipynb, "5. Token states and cross-attention".
    """

    def __init__(self, latent_dim: int = RECIPE["latent_dim"], text_dim: int = 384, width: int = RECIPE["width"],
                 tokens: int = RECIPE["tokens"], depth: int = RECIPE["depth"], heads: int = RECIPE["heads"],
                 conditioning: str = "cross"):
        super().__init__()
        if conditioning not in ("cross", "pooled"):
            raise ValueError(f"conditioning must be 'cross' or 'pooled', got {conditioning!r}.")
        if width % heads:
            raise ValueError(f"width ({width}) must be a multiple of heads ({heads}).")
        self.latent_dim, self.text_dim, self.width, self.tokens = latent_dim, text_dim, width, tokens
        self.depth, self.heads, self.conditioning = depth, heads, conditioning
        self.inp = nn.Linear(latent_dim, tokens * width)
        self.pos = nn.Parameter(torch.randn(1, tokens, width) * 0.02)
        self.time = TimeEmbedding(width)
        self.text_proj = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, width))
        self.null = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.blocks = nn.ModuleList(DenoiserBlock(width, heads) for _ in range(depth))
        self.out_norm = nn.LayerNorm(tokens * width)
        self.out = nn.Linear(tokens * width, latent_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def config(self) -> dict:
        return {"latent_dim": self.latent_dim, "text_dim": self.text_dim, "width": self.width,
                "tokens": self.tokens, "depth": self.depth, "heads": self.heads, "conditioning": self.conditioning}

    def context(self, states: torch.Tensor, mask: torch.Tensor):
        """Text for the blocks: [null token, projected states] and its mask (N, 1 + S)."""
        if self.conditioning == "pooled":
            states, mask = pool(states, mask)[:, None], mask.amax(1, keepdim=True)   # (N, S, D) => (N, 1, D)
        ctx = torch.cat([self.null.expand(len(states), -1, -1), self.text_proj(states)], dim=1)
        return ctx, torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, states: torch.Tensor, mask: torch.Tensor,
                context=None) -> torch.Tensor:
        N = len(z_t)
        h = self.inp(z_t).view(N, self.tokens, self.width) + self.pos           # (N, D) => (N, K, W)
        temb = self.time(t)
        ctx, ctx_mask = context if context is not None else self.context(states, mask)
        for block in self.blocks:
            h = block(h, temb, ctx, ctx_mask)
        return self.out(self.out_norm(h.flatten(1)))                             # (N, K, W) => (N, D)


def pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens, then unit length: the sentence vector chapter 5 and 6 use. (N, S, D) => (N, D).

    Lesson: 07_diffusion.ipynb, "5. Token states and cross-attention".
    """
    m = mask.to(states.dtype)[..., None]
    return F.normalize((states * m).sum(1) / m.sum(1).clamp_min(1e-9), dim=-1)


# ---------------------------------------------------------------- sampling

def guided_velocity(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance with scale s: v(0) + s (v(c) - v(0)); s = 1 is plain conditional sampling.

    Lesson: 07_diffusion.ipynb, "7. Classifier-free guidance".
    """
    return v_uncond + scale * (v_cond - v_uncond)


@torch.no_grad()
def sample_latents(model: Denoiser, states: torch.Tensor, mask: torch.Tensor, n_per_prompt: int = 1,
                   steps: int = RECIPE["sample_steps"], guidance: float = RECIPE["guidance"], sampler: str = "heun",
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Integrate dz/dt = v from t = 1 (noise) to t = 0 (data): (P prompts) => (P * n_per_prompt, latent_dim).

    sampler "euler": z <- z + (t_next - t) v(z, t), one network evaluation per step (two with guidance).
    sampler "heun": Euler's guess, then the average of the velocities at both ends (second order; the last
    step is plain Euler), so 2 * steps - 1 evaluations for a much smaller error per step.

    Lesson: 07_diffusion.ipynb, "8. Samplers".
    """
    if sampler not in ("euler", "heun"):
        raise ValueError(f"sampler must be 'euler' or 'heun', got {sampler!r}.")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    states = states.repeat_interleave(n_per_prompt, 0).to(device)
    mask = mask.repeat_interleave(n_per_prompt, 0).to(device)
    z = torch.randn(len(states), model.latent_dim, generator=generator).to(device)
    cond = model.context(states, mask)
    guided = guidance != 1.0
    if guided:  # the unconditional context: only the null token
        uncond = model.context(states, torch.zeros_like(mask))
        ctx = (torch.cat([cond[0], uncond[0]]), torch.cat([cond[1], uncond[1]]))

    def velocity(z, t):
        tt = torch.full((len(z),), t, device=device)
        if not guided:
            return model(z, tt, None, None, context=cond)
        v = model(torch.cat([z, z]), torch.cat([tt, tt]), None, None, context=ctx)   # one batch for both
        v_c, v_u = v.chunk(2)
        return guided_velocity(v_c, v_u, guidance)

    ts = torch.linspace(1, 0, steps + 1).tolist()
    for i in range(steps):
        t, t_next = ts[i], ts[i + 1]
        v = velocity(z, t)
        z_euler = z + (t_next - t) * v
        if sampler == "heun" and i < steps - 1:
            z = z + (t_next - t) * 0.5 * (v + velocity(z_euler, t_next))
        else:
            z = z_euler
    model.train(was)
    return z.cpu()


def network_evaluations(steps: int, sampler: str = "heun", guidance: float = RECIPE["guidance"]) -> int:
    """Forward passes of the denoiser per image (a guided pass counts twice).

    Lesson: 07_diffusion.ipynb, "8. Samplers".
    """
    per = 2 if guidance != 1.0 else 1
    return per * (2 * steps - 1 if sampler == "heun" else steps)


# ---------------------------------------------------------------- text: token states, cached per caption

@torch.no_grad()
def token_states(encoder, texts: list, batch_size: int = 64):
    """The pretrained encoder's last hidden states for each prompt: (N, S, D) float32 and mask (N, S).

    encoder: a text.PretrainedTextEncoder (its `tokenize` and network). S is the longest prompt's length.

    Lesson: 07_diffusion.ipynb, "5. Token states and cross-attention".
    """
    from .tokenisers import validate_texts
    texts = validate_texts(texts)
    states, masks = [], []
    for i in range(0, len(texts), batch_size):
        batch = encoder.tokenize(texts[i:i + batch_size])   # each cut to max_length tokens, with one note
        states.append(encoder.model(**batch).last_hidden_state.float().cpu())
        masks.append(batch["attention_mask"].cpu())
    S = max(s.shape[1] for s in states)
    states = torch.cat([F.pad(s, (0, 0, 0, S - s.shape[1])) for s in states])
    masks = torch.cat([F.pad(m, (0, S - m.shape[1])) for m in masks])
    return states, masks


class TokenTable:
    """Captions of a training set with their token states computed once (like chapter 6's CaptionTable).

    states (U, S, D) float16 and mask (U, S) hold each distinct caption once; index (K, N) says which row
    caption k of image n is.

    Lesson: 07_diffusion.ipynb, "6. Training: pooled vector vs cross-attention".
    """

    def __init__(self, data, encoder, captions_per_image: int = RECIPE["captions_per_image"], seed: int = 0):
        start = time.perf_counter()
        per_seed = [vocabulary.make_rich_captions(data, "train", seed=seed + k) for k in range(captions_per_image)]
        self.texts = sorted({t for caps in per_seed for t in caps})
        row = {t: i for i, t in enumerate(self.texts)}
        states, self.mask = token_states(encoder, self.texts)
        self.states = states.half()
        self.index = torch.tensor([[row[t] for t in caps] for caps in per_seed])  # (K, N)
        self.labels = torch.zeros(len(self.texts), dtype=torch.long)             # the class each caption names
        for rows in self.index:
            self.labels[rows] = data.y_train.long()
        self.pooled = pool(states, self.mask)                                     # (U, D), for the unknown check
        self.encode_seconds = time.perf_counter() - start

    def batch(self, idx: torch.Tensor, generator: torch.Generator):
        k = torch.randint(self.index.shape[0], (len(idx),), generator=generator)
        rows = self.index[k, idx]
        return self.states[rows].float(), self.mask[rows]


# ---------------------------------------------------------------- training

def train_diffusion(data, codec: LatentCodec, table: TokenTable, num_steps: int | None = None,
                    conditioning: str = "cross", seed: int = 0, lr: float = RECIPE["lr"],
                    batch_size: int = RECIPE["batch_size"], cond_drop: float = RECIPE["cond_drop"], device=None,
                    progress: bool = True, desc: str | None = None):
    """Train a Denoiser by flow matching on the codec's latents of data.X_train; return (model, history).

    Each step: a batch of latents, one caption each (token states from `table`), a share cond_drop of them
    with the prompt removed, a random time and noise, and the MSE between predicted and true velocity.
    history: "loss" (mean per 100 steps), "seconds" (training wall time), "cpu_seconds".

    Lesson: 07_diffusion.ipynb, "6. Training: pooled vector vs cross-attention".
    """
    dataset = require_dataset(data.name)
    num_steps = num_steps or RECIPE["num_steps"][dataset]
    g = seed_everything(seed)
    device = device or get_device()
    Z = codec.encode_all(data.X_train)
    model = Denoiser(codec.latent_dim, table.states.shape[-1], conditioning=conditioning).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=num_steps, pct_start=0.05)

    def batch_loss(step):
        idx = torch.randint(len(Z), (batch_size,), generator=g)
        states, mask = table.batch(idx, g)
        keep = (torch.rand(batch_size, 1, generator=g) >= cond_drop).to(mask.dtype)  # dropped prompt: no tokens
        return flow_matching_loss(model, Z[idx].to(device), states.to(device), (mask * keep).to(device), g), batch_size

    result = run_loop(model, opt, step_rounds(num_steps, 100), batch_loss, scheduler=sched,
                      desc=desc or f"flow matching [{conditioning}]", progress=progress)
    history = DiffusionHistory(loss=result.losses, step=result.steps, seconds=result.seconds,
                               cpu_seconds=result.cpu_seconds)
    return model, history

"""Text-to-image generation (chapter 6): a conditional VAE that reads a text embedding.

The pipeline is prompt -> text encoder -> embedding -> condition projection -> decoder -> image. Chapter 6
builds it with three text encoders trained on the same budget and measures what each one buys:

  "onehot"      the class label as a one-hot vector; at test time a prompt is read by looking up the
                training class words in it (`LabelLookupEncoder`), so an unseen synonym reads as "nothing"
  "tiny"        the tiny GPT of chapter 5, trained from scratch on the caption corpus (`text.TinyTextEncoder`)
  "pretrained"  the frozen pretrained sentence encoder all-MiniLM-L6-v2 (`text.PretrainedTextEncoder`);
                captions are encoded once and the embeddings cached, so training never runs the language model

Contents, in the order the chapter builds them:
  FiLM, ConditionProjection, ConditionalVAE        conditioning by concatenation (vae.ConvEncoder/ConvDecoder
                                                   with cond_dim) plus FiLM on the decoder's feature maps
  LabelLookupEncoder, make_encoder                 the three text encoders behind one `.encode(texts)` API
  CaptionTable, train_conditional                  captioned training with condition dropout and embedding noise
  sample, prompt_adherence, adherence_report,      generating from prompts and measuring it: adherence per
  attribute_adherence, quality_report              caption family, confusions, attributes, Frechet distance,
                                                   diversity within a prompt
  compare_encoders                                 the chapter's experiment (3 encoders x 1 dataset)
  ImageCaptioner, train_captioner, caption_images, the reverse direction: judge features as a prefix token of
  caption_accuracy, cycle_consistency              the tiny GPT, and prompt -> image -> caption
  save_generator, load_generator, train_shipped    the weights behind `textimg-lessons generate`
  bench                                            what `textimg-lessons bench 06_text_to_image` reports

The shipped generators (textimg_lessons/shipped/cvae_<dataset>.safetensors) were produced by
    python -m textimg_lessons.conditional train-shipped
which runs `train_shipped()`: the "pretrained" recipe below with SHIPPED_STEPS steps on each dataset's full
training split (offline MNIST: the 4,000-image subset), stored as float16 (decoder, projection and FiLM only).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import captions, config, vae
from .config import get_device, pick, seed_everything

ENCODERS = ("onehot", "tiny", "pretrained")
ENCODER_LABELS = {"onehot": "one-hot label", "tiny": "tiny GPT (from scratch)",
                  "pretrained": "pretrained MiniLM (frozen)"}

# The chapter's recipe: the notebook, bench() and train-shipped all read it, so they cannot drift.
RECIPE = {
    "latent_dim": 4,           # small: the less z can carry, the more the decoder must read the condition
    "cond_dim": 32,            # size of the condition vector the projection makes from any text embedding
    "proj_hidden": 128,        # the small MLP on the embedding
    "batch_size": 128,
    "lr": 2e-3,
    "captions_per_image": 4,   # each image gets 4 captions (different templates/attribute words); one per step
    "cond_drop": 0.1,          # share of training steps' examples whose condition is blanked (zeros)
    "embed_noise": 0.05,       # Gaussian noise on the unit-length embedding: smoother around seen captions
    "norm": True,              # batch norm in chapter 4's conv encoder/decoder
    "z_drop": 0.3,             # share of examples decoded from a prior z instead of the posterior z
    "kl_weight": 2.0,          # weight of the KL term (beta); > 1 leaves less room in z, so c must carry the class
    "num_steps": {"fashion_mnist": 1800, "mnist": 1200},
    "fast_steps": 40,
    "eval_every": 100,
    "fast_eval_every": 20,
    "eval_per_prompt": 4,      # images per prompt while tracking adherence during training
    "target_adherence": 0.8,
    "guidance": 2.0,           # classifier-free guidance scale for every measurement (1.0 = plain sampling)
}

SHIPPED_FORMAT = "textimg_lessons.conditional.ConditionalVAE/v1"


# ---------------------------------------------------------------- conditioning layers

class FiLM(nn.Module):
    """Feature-wise linear modulation (chapter 6): h * (1 + gamma(c)) + beta(c), per channel.

    forward(h, c): h (N, C) or (N, C, H, W) features, c (N, cond_dim) => same shape as h. The linear layer
    starts at zero, so a fresh FiLM is the identity and training decides how much the condition steers.
    """

    def __init__(self, cond_dim: int, num_features: int):
        super().__init__()
        if cond_dim < 1 or num_features < 1:
            raise ValueError(f"cond_dim and num_features must be >= 1, got {cond_dim}, {num_features}.")
        self.num_features = num_features
        self.to_gamma_beta = nn.Linear(cond_dim, 2 * num_features)
        nn.init.zeros_(self.to_gamma_beta.weight)
        nn.init.zeros_(self.to_gamma_beta.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if h.dim() not in (2, 4) or h.shape[1] != self.num_features:
            raise ValueError(f"h must be (N, {self.num_features}) or (N, {self.num_features}, H, W), "
                             f"got {tuple(h.shape)}.")
        if c.dim() != 2 or c.shape[0] != h.shape[0]:
            raise ValueError(f"c must be (N, cond_dim) with N = {h.shape[0]}, got {tuple(c.shape)}.")
        gamma, beta = self.to_gamma_beta(c).chunk(2, dim=1)  # (N, cond_dim) => 2 x (N, C)
        if h.dim() == 4:
            gamma, beta = gamma[:, :, None, None], beta[:, :, None, None]  # (N, C) => (N, C, 1, 1)
        return h * (1 + gamma) + beta


class ConditionProjection(nn.Module):
    """Text embedding (N, text_dim) => condition vector (N, cond_dim): a small MLP (chapter 6).

    It belongs to the generator and is trained with it; the text encoder itself stays frozen.
    """

    def __init__(self, text_dim: int, cond_dim: int = RECIPE["cond_dim"], hidden: int = RECIPE["proj_hidden"]):
        super().__init__()
        if text_dim < 1:
            raise ValueError(f"text_dim must be >= 1, got {text_dim}.")
        self.text_dim, self.cond_dim = text_dim, cond_dim
        self.net = nn.Sequential(nn.Linear(text_dim, hidden), nn.SiLU(), nn.Linear(hidden, cond_dim))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        if e.dim() != 2 or e.shape[1] != self.text_dim:
            raise ValueError(f"text embeddings must be (N, {self.text_dim}), got {tuple(e.shape)}; "
                             "did you use the same text encoder as in training?")
        return self.net(e.float())  # (N, text_dim) => (N, cond_dim)


class ConditionalVAE(nn.Module):
    """A conditional VAE on 28x28 images (chapter 6), built from chapter 4's conv encoder and decoder.

    The condition c = projection(text embedding) is concatenated to the encoder's features and to z
    (that is what vae.ConvEncoder/ConvDecoder do with cond_dim > 0) and, with film=True, also modulates
    the decoder's 14x14 feature maps through FiLM (after the up-convolution's batch norm, before its ReLU).
    forward(x, e) => (x_logits, mu, logvar); decode(z, c) => logits; condition(e) => c.
    """

    def __init__(self, text_dim: int, latent_dim: int = RECIPE["latent_dim"], cond_dim: int = RECIPE["cond_dim"],
                 proj_hidden: int = RECIPE["proj_hidden"], film: bool = True, norm: bool = RECIPE["norm"]):
        super().__init__()
        self.text_dim, self.latent_dim, self.cond_dim, self.use_film = text_dim, latent_dim, cond_dim, film
        self.projection = ConditionProjection(text_dim, cond_dim, proj_hidden)
        self.encoder = vae.ConvEncoder(latent_dim, cond_dim, norm=norm)
        self.decoder = vae.ConvDecoder(latent_dim, cond_dim, norm=norm)
        self.norm = norm
        first_up = next(m for m in self.decoder.deconv if isinstance(m, nn.ConvTranspose2d))
        self.film = FiLM(cond_dim, first_up.out_channels) if film else None

    def condition(self, e: torch.Tensor) -> torch.Tensor:
        return self.projection(e)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """z (N, latent_dim), c (N, cond_dim) => pixel logits (N, 1, 28, 28)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (N, {self.latent_dim}), got {tuple(z.shape)}.")
        if self.film is None:
            return self.decoder(z, c)
        d = self.decoder
        h = d.fc(torch.cat([z, c], dim=1)).view(-1, 2 * d.channels, 7, 7)  # (N, D + cond) => (N, 32, 7, 7)
        filmed = False
        for layer in d.deconv:  # (N, 32, 7, 7) => (N, 16, 14, 14) => (N, 1, 28, 28)
            if not filmed and isinstance(layer, nn.ReLU):
                h = self.film(h, c)  # after the up-convolution (and its batch norm): scale and shift each map
                filmed = True
            h = layer(h)
        return h if getattr(d, "pixel_bias", None) is None else h + d.pixel_bias

    def forward(self, x: torch.Tensor, e: torch.Tensor, generator: torch.Generator | None = None):
        c = self.condition(e)
        mu, logvar = self.encoder(x, c)
        z = vae.reparameterize(mu, logvar, generator)
        return self.decode(z, c), mu, logvar


# ---------------------------------------------------------------- text encoders

def _normalise_dataset(dataset: str) -> str:
    return captions._check_dataset(dataset)


class LabelLookupEncoder:
    """One-hot class labels as a "text encoder" (chapter 6, encoder a).

    Training uses the labels directly (`encode_labels`). A prompt is read by finding a training class
    word in it (whole words, longest first so "t-shirt" is not read as "shirt"); a prompt with no known
    class word encodes as the zero vector, which is what the generator saw for dropped conditions.
    """

    def __init__(self, dataset: str):
        self.dataset = _normalise_dataset(dataset)
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
        from .text import check_texts
        texts = check_texts(texts)
        out = torch.zeros(len(texts), self.dim)
        for i, t in enumerate(texts):
            c = self.read(t)
            if c >= 0:
                out[i, c] = 1.0
        return out


def train_tiny_encoder(num_steps: int | None = None, seed: int = 0):
    """Chapter 5's tiny GPT, trained on chapter 5's caption corpus; returns (TinyTextEncoder, history)."""
    from . import text
    model, tokenizer, history = text.train_tiny_gpt(text.default_corpus(seed), num_steps=num_steps, seed=seed)
    return text.TinyTextEncoder(model, tokenizer), history


def make_encoder(kind: str, dataset: str, tiny=None):
    """The text encoder behind a kind in ENCODERS ("tiny" needs a trained TinyTextEncoder passed as tiny)."""
    if kind == "onehot":
        return LabelLookupEncoder(dataset)
    if kind == "tiny":
        if tiny is None:
            tiny, _ = train_tiny_encoder()
        return tiny
    if kind == "pretrained":
        from .text import PretrainedTextEncoder
        return PretrainedTextEncoder()
    raise ValueError(f"Unknown encoder {kind!r}; choose one of {ENCODERS}.")


# ---------------------------------------------------------------- captioned training data

class CaptionTable:
    """Captions of a training set, encoded once: K captions per image, each a row of a unique-caption table.

    embeddings (U, D) holds each distinct caption once (captions repeat: templates x words), index (K, N)
    says which row caption k of image n is. For the one-hot encoder the table is the 10 class vectors.
    """

    def __init__(self, data, encoder, captions_per_image: int = RECIPE["captions_per_image"], seed: int = 0):
        if len(data.X_train) == 0:
            raise ValueError("the training set is empty; pass an ImageData with images in X_train.")
        start = time.perf_counter()
        if isinstance(encoder, LabelLookupEncoder):
            self.texts = list(encoder.words)
            self.embeddings = torch.eye(encoder.dim)
            self.index = data.y_train.long().unsqueeze(0)  # (1, N): the label is the whole "caption"
        else:
            per_seed = [captions.make_captions(data, "train", "train", seed=seed + k)
                        for k in range(captions_per_image)]
            self.texts = sorted({t for caps in per_seed for t in caps})
            row = {t: i for i, t in enumerate(self.texts)}
            self.embeddings = encoder.encode(self.texts).float()  # (U, D): the only time the encoder runs
            self.index = torch.tensor([[row[t] for t in caps] for caps in per_seed])  # (K, N)
        self.encode_seconds = time.perf_counter() - start
        self.dim = self.embeddings.shape[1]

    def batch(self, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Embeddings (B, D) of one randomly chosen caption for each image index in idx (B,)."""
        k = torch.randint(self.index.shape[0], (len(idx),), generator=generator)
        return self.embeddings[self.index[k, idx]]


def _prompt_set(dataset: str, family: str):
    """(texts, requested classes) of the chapter's class prompts for one family."""
    prompts = captions.class_prompts(dataset, family)
    texts = [p for c in sorted(prompts) for p in prompts[c]]
    labels = torch.tensor([c for c in sorted(prompts) for _ in prompts[c]])
    return texts, labels


# ---------------------------------------------------------------- sampling and adherence

@torch.no_grad()
def sample(model: ConditionalVAE, embeddings: torch.Tensor, n_per_prompt: int = 1,
           generator: torch.Generator | None = None, guidance: float = 1.0) -> torch.Tensor:
    """Conditional sampling from the prior (chapter 6): z ~ N(0, I), image = sigmoid(decode(z, c)).

    embeddings (P, D) => images (P * n_per_prompt, 1, 28, 28), grouped by prompt (the first n belong to
    prompt 0). No encoder is involved: at generation time there is no image to encode.

    guidance w (classifier-free guidance): decode the same z twice, with the prompt's condition and with
    the "no prompt" condition (the zero embedding, which cond_drop trained on), and use the pixel logits
    u + w * (c - u). w = 1 is plain conditional sampling; w > 1 pushes each image further towards what
    the prompt adds, trading diversity for adherence.
    """
    if embeddings.dim() != 2 or len(embeddings) == 0:
        raise ValueError(f"embeddings must be a non-empty (P, D) batch, got {tuple(embeddings.shape)}.")
    if not isinstance(n_per_prompt, int) or n_per_prompt < 1:
        raise ValueError(f"n_per_prompt must be a positive int, got {n_per_prompt!r}.")
    if not isinstance(guidance, (int, float)) or not 0 <= guidance <= 20:
        raise ValueError(f"guidance must be a number in [0, 20] (1 = no guidance), got {guidance!r}.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    e = embeddings.float().repeat_interleave(n_per_prompt, dim=0).to(device)  # (P, D) => (P * n, D)
    z = torch.randn(len(e), model.latent_dim, generator=generator).to(device)
    logits = model.decode(z, model.condition(e))
    if guidance != 1.0:
        unconditional = model.decode(z, model.condition(torch.zeros_like(e)))  # same z, no prompt
        logits = unconditional + guidance * (logits - unconditional)
    images = torch.sigmoid(logits).cpu()
    model.train(was_training)
    return images


def _guidance(guidance) -> float:
    return RECIPE["guidance"] if guidance is None else guidance


def prompt_adherence(judge, images: torch.Tensor, requested: torch.Tensor) -> float:
    """Share of generated images that the judge classifies as the requested class (chapter 6).

    judge: any classifier returning logits (N, num_classes); images (N, 1, 28, 28) in [0, 1];
    requested (N,) class indices. 1.0 = every image shows what was asked for; chance is 1 / num_classes.
    """
    requested = torch.as_tensor(requested).long().flatten()
    if len(images) != len(requested):
        raise ValueError(f"{len(images)} images but {len(requested)} requested classes; pass one class per image.")
    if len(images) == 0:
        raise ValueError("adherence of zero images is undefined; generate at least one image.")
    return float((_judge_predict(judge, images) == requested).float().mean())


def _judge_predict(judge, images: torch.Tensor) -> torch.Tensor:
    """The judge's classes (N,) for images in [0, 1]; works for any classifier module, not only cnn.Judge."""
    from .metrics import judge_logits
    return judge_logits(judge, images).argmax(1)


def confusion_matrix(requested: torch.Tensor, predicted: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """(num_classes, num_classes) counts: row = requested class, column = the judge's class."""
    flat = requested.long() * num_classes + predicted.long()
    return torch.bincount(flat, minlength=num_classes ** 2).view(num_classes, num_classes)


def adherence_report(model: ConditionalVAE, encoder, judge, dataset: str, n_per_prompt: int = 20,
                     families=captions.FAMILIES, seed: int = 0, guidance: float | None = None) -> dict:
    """Prompt adherence per caption family: {family: {"adherence", "confusion", "per_class"}}.

    guidance: classifier-free guidance scale (None: RECIPE["guidance"]; 1.0: plain sampling)."""
    out = {}
    for family in families:
        texts, labels = _prompt_set(dataset, family)
        g = torch.Generator().manual_seed(seed)
        images = sample(model, encoder.encode(texts), n_per_prompt, g, _guidance(guidance))
        requested = labels.repeat_interleave(n_per_prompt)
        predicted = _judge_predict(judge, images)
        conf = confusion_matrix(requested, predicted)
        out[family] = {"adherence": float((predicted == requested).float().mean()), "confusion": conf,
                       "per_class": (conf.diag() / conf.sum(1).clamp_min(1)).tolist(), "prompts": len(texts)}
    return out


def _single_attribute_templates(dataset: str) -> dict:
    """{attribute: [training templates with the class and exactly that one attribute slot]}."""
    out = {}
    for t in captions.templates(dataset, "train"):
        slots = set(re.findall(r"{(\w+)}", t)) - {"cls"}
        if len(slots) == 1:
            out.setdefault(slots.pop(), []).append(t)
    return out


@torch.no_grad()
def attribute_adherence(model: ConditionalVAE, encoder, data, n_per_prompt: int = 10, seed: int = 0,
                        guidance: float | None = None) -> dict:
    """For prompts that ask for an attribute ("a large seven"), the share of images measured to have it.

    Prompts: every training template with one attribute slot x class x the attribute's three words.
    Images are measured with captions.image_attributes and binned with the training split's cut points,
    exactly as their captions were made. Chance is 1/3. Returns {attribute: share, "mean": ...}.
    """
    dataset = _normalise_dataset(data.name)
    cuts = captions.train_cuts(data)
    g = torch.Generator().manual_seed(seed)
    out = {}
    for attr, temps in _single_attribute_templates(dataset).items():
        texts, wanted = [], []
        for t in temps:
            for c, word in enumerate(captions.CLASS_WORDS[dataset]):
                for aw in captions.ATTRIBUTE_WORDS[attr]:
                    texts.append(captions.render(t, word, {attr: aw}))
                    wanted.append(aw)
        images = sample(model, encoder.encode(texts), n_per_prompt, g, _guidance(guidance))
        got = captions.attribute_words(captions.image_attributes(images), cuts)
        want = [w for w in wanted for _ in range(n_per_prompt)]
        out[attr] = sum(gw[attr] == w for gw, w in zip(got, want)) / len(want)
    out["mean"] = sum(out.values()) / max(len(out), 1)
    return out


def quality_report(model: ConditionalVAE, encoder, judge, data, n_images: int = 2000, seed: int = 0,
                   guidance: float | None = None) -> dict:
    """Frechet distance on judge features (test captions -> images vs the test images) and diversity.

    diversity: mean pairwise L2 distance between 16 images of the same prompt, averaged over the
    training-family prompts (0 = the prompt always gives the same image); real_diversity is the same
    for 16 real test images of each class, for scale.
    """
    from .metrics import diversity, judge_frechet_distance
    dataset = _normalise_dataset(data.name)
    n = min(n_images, len(data.X_test))
    caps = captions.make_captions(data, "test", "train", seed=seed)[:n]
    g = torch.Generator().manual_seed(seed)
    w = _guidance(guidance)
    fake = sample(model, encoder.encode(caps), 1, g, w)
    fd = judge_frechet_distance(judge, data.X_test[:n], fake)
    texts, labels = _prompt_set(dataset, "train")
    imgs = sample(model, encoder.encode(texts), 16, g, w).view(len(texts), 16, 1, 28, 28)
    div = sum(diversity(imgs[i]) for i in range(len(texts))) / len(texts)
    real = [data.X_test[data.y_test == c][:16] for c in range(10)]
    real_div = sum(diversity(r) for r in real if len(r) > 1) / sum(len(r) > 1 for r in real)
    return {"frechet": fd, "diversity": div, "real_diversity": real_div, "n_images": n}


# ---------------------------------------------------------------- training

def _quick_adherence(model, eval_embeddings, eval_labels, judge, n_per_prompt, seed=0) -> float:
    images = sample(model, eval_embeddings, n_per_prompt, torch.Generator().manual_seed(seed), RECIPE["guidance"])
    return float((_judge_predict(judge, images) == eval_labels.repeat_interleave(n_per_prompt)).float().mean())


def train_conditional(data, encoder, judge=None, num_steps: int | None = None, table: CaptionTable | None = None,
                      eval_every: int | None = None, seed: int = 0, lr: float = RECIPE["lr"],
                      batch_size: int = RECIPE["batch_size"], cond_drop: float = RECIPE["cond_drop"],
                      embed_noise: float = RECIPE["embed_noise"], kl_weight: float = RECIPE["kl_weight"],
                      latent_dim: int = RECIPE["latent_dim"], z_drop: float = RECIPE["z_drop"], film: bool = True,
                      norm: bool = RECIPE["norm"],
                      device=None,
                      desc: str | None = None, progress: bool = True):
    """Train a ConditionalVAE on captioned `data` with one text encoder; return (model, history) (chapter 6).

    Loss: chapter 4's negative ELBO with the KL term weighted by kl_weight (Bernoulli NLL on grey pixels +
    beta * KL; beta = 2 squeezes z, so the class has to come from the condition), each image conditioned
    on the embedding of one of its captions. Regularisers that help the generator read new
    wordings: z_drop (decode that share of examples from a prior z, so the class must come from c),
    cond_drop (blank the condition of that share of examples), embed_noise (Gaussian noise on
    the embedding, then renormalised to unit length; not for one-hot). When a judge is given, adherence
    on the training-family class prompts is measured every eval_every steps (history "step", "adherence",
    "seconds": training seconds so far, not counting evaluation), and "steps_to_target" /
    "seconds_to_target" record the first evaluation at RECIPE["target_adherence"] (None if never).
    """
    dataset = _normalise_dataset(data.name)
    num_steps = num_steps if num_steps is not None else pick(RECIPE["num_steps"][dataset], RECIPE["fast_steps"])
    eval_every = eval_every or pick(RECIPE["eval_every"], RECIPE["fast_eval_every"])
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}.")
    if not 0 <= cond_drop < 1:
        raise ValueError(f"cond_drop must be in [0, 1), got {cond_drop}.")
    table = table if table is not None else CaptionTable(data, encoder, seed=seed)
    g = seed_everything(seed)
    device = device or get_device()
    model = ConditionalVAE(table.dim, latent_dim=latent_dim, film=film, norm=norm).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=num_steps, pct_start=0.1)
    is_onehot = isinstance(encoder, LabelLookupEncoder)
    if judge is not None:
        texts, eval_labels = _prompt_set(dataset, "train")
        eval_emb = encoder.encode(texts)
    X = data.X_train
    history = {"step": [], "adherence": [], "seconds": [], "loss": [], "steps_to_target": None,
               "seconds_to_target": None, "encode_seconds": table.encode_seconds}
    target = RECIPE["target_adherence"]
    train_seconds, running = 0.0, []
    bar = tqdm(range(1, num_steps + 1), desc=desc or f"cVAE [{getattr(encoder, 'name', encoder)}]",
               disable=not progress)
    for step in bar:
        start = time.perf_counter()
        model.train()
        idx = torch.randint(len(X), (batch_size,), generator=g)
        x = X[idx].to(device)
        e = table.batch(idx, g)
        if embed_noise > 0 and not is_onehot:
            e = F.normalize(e + embed_noise * torch.randn(e.shape, generator=g), dim=1)
        if cond_drop > 0:
            keep = (torch.rand(len(e), 1, generator=g) >= cond_drop).float()
            e = e * keep  # a dropped condition is the zero vector, the same "nothing" an unknown word gives
        c = model.condition(e.to(device))
        mu, logvar = model.encoder(x, c)
        z = vae.reparameterize(mu, logvar)
        if z_drop > 0:
            # latent dropout: some images must be drawn from c alone with a prior z, exactly as at generation
            # time; without it the encoder hands the class to the decoder through z and c is ignored
            prior = (torch.rand(len(z), 1, generator=g) < z_drop).float().to(device)
            z = prior * torch.randn(z.shape, generator=g).to(device) + (1 - prior) * z
        x_logits = model.decode(z, c)
        loss = (vae.bernoulli_nll(x_logits, x) + kl_weight * vae.gaussian_kl(mu, logvar)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        train_seconds += time.perf_counter() - start
        running.append(loss.item())
        if judge is not None and (step % eval_every == 0 or step == num_steps):
            adh = _quick_adherence(model, eval_emb, eval_labels, judge, RECIPE["eval_per_prompt"])
            history["step"].append(step)
            history["adherence"].append(adh)
            history["seconds"].append(train_seconds)
            history["loss"].append(sum(running) / len(running))
            running = []
            if history["steps_to_target"] is None and adh >= target:
                history["steps_to_target"], history["seconds_to_target"] = step, train_seconds
            bar.set_postfix(loss=f"{history['loss'][-1]:.1f}", adherence=f"{adh:.2f}")
    history["train_seconds"] = train_seconds
    model.eval()
    return model, history


# ---------------------------------------------------------------- the chapter's experiment

def compare_encoders(data, judge, encoders: dict, num_steps: int | None = None, n_per_prompt: int | None = None,
                     seed: int = 0, progress: bool = True) -> dict:
    """Train one ConditionalVAE per text encoder on the same data, steps and seed; measure each (chapter 6).

    encoders: {kind: encoder} (see make_encoder). Returns {kind: {"model", "encoder", "history",
    "adherence" (adherence_report), "attributes", "quality", "wall_seconds"}}.
    """
    n_per_prompt = n_per_prompt or pick(20, 4)
    results = {}
    for kind, encoder in encoders.items():
        start = time.perf_counter()
        model, history = train_conditional(data, encoder, judge, num_steps=num_steps, seed=seed,
                                           desc=f"{data.name} / {ENCODER_LABELS.get(kind, kind)}",
                                           progress=progress)
        rep = adherence_report(model, encoder, judge, data.name, n_per_prompt, seed=seed)
        attrs = attribute_adherence(model, encoder, data, pick(10, 2), seed=seed)
        quality = quality_report(model, encoder, judge, data, pick(2000, 200), seed=seed)
        results[kind] = {"model": model, "encoder": encoder, "history": history, "adherence": rep,
                         "attributes": attrs, "quality": quality, "wall_seconds": time.perf_counter() - start}
    return results


def summary_rows(results: dict, dataset: str) -> list:
    """One flat dict per encoder (for printing as a table)."""
    rows = []
    for kind, r in results.items():
        h, a = r["history"], r["adherence"]
        rows.append({"dataset": dataset, "encoder": kind,
                     **{f"adh_{f}": a[f]["adherence"] for f in a},
                     "steps_to_80": h["steps_to_target"], "seconds_to_80": h["seconds_to_target"],
                     "train_seconds": h["train_seconds"], "encode_seconds": h["encode_seconds"],
                     "attribute_adherence": r["attributes"]["mean"], "frechet": r["quality"]["frechet"],
                     "diversity": r["quality"]["diversity"], "wall_seconds": r["wall_seconds"]})
    return rows


def print_summary(rows: list) -> None:
    """The comparison as a text table."""
    head = (f"{'dataset':14s} {'encoder':11s} {'train':>6s} {'phrase':>6s} {'synon':>6s} {'attr':>5s} "
            f"{'steps80':>7s} {'sec80':>6s} {'train s':>7s} {'FD':>6s} {'div':>5s}")
    print(head)
    for r in rows:
        s80 = "-" if r["steps_to_80"] is None else str(r["steps_to_80"])
        t80 = "-" if r["seconds_to_80"] is None else f"{r['seconds_to_80']:.1f}"
        print(f"{r['dataset']:14s} {r['encoder']:11s} {r['adh_train']:6.2f} {r['adh_heldout_phrasing']:6.2f} "
              f"{r['adh_heldout_synonym']:6.2f} {r['attribute_adherence']:5.2f} {s80:>7s} {t80:>6s} "
              f"{r['train_seconds']:7.1f} {r['frechet']:6.1f} {r['diversity']:5.2f}")


# ---------------------------------------------------------------- the reverse direction: captioning

class ImageCaptioner(nn.Module):
    """The tiny GPT of chapter 5 conditioned on an image (chapter 6): judge features as a prefix token.

    A linear layer maps the judge's (N, 128) features to one token embedding placed before <bos>; the
    GPT's own blocks then predict the caption token by token, attending to that prefix at every step.
    """

    def __init__(self, gpt, tokenizer, feature_dim: int = 128):
        super().__init__()
        self.gpt, self.tokenizer = gpt, tokenizer
        self.prefix = nn.Linear(feature_dim, gpt.d_model)

    def logits(self, feats: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """feats (N, F), ids (N, T) => logits (N, T + 1, V); position t scores token t (position 0: <bos>)."""
        g = self.gpt
        x = torch.cat([self.prefix(feats)[:, None], g.tok_emb(ids)], dim=1)  # (N, 1 + T, d_model)
        if x.shape[1] > g.block_size:
            raise ValueError(f"prefix + {ids.shape[1]} tokens exceed the GPT's block_size {g.block_size}.")
        x = x + g.pos_emb(torch.arange(x.shape[1], device=x.device))
        for block in g.blocks:
            x = block(x)
        return g.head(g.ln_f(x))

    @torch.no_grad()
    def caption(self, feats: torch.Tensor, max_tokens: int | None = None) -> list:
        """Greedy captions for judge features (N, F): a list of N strings."""
        from .text import BOS, EOS, _decode, _special_id
        self.eval()
        bos, eos = _special_id(self.tokenizer, BOS), _special_id(self.tokenizer, EOS)
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
            out.append(_decode(self.tokenizer, row[:row.index(eos)] if eos in row else row).strip())
        return out


def train_captioner(tiny, judge, data, num_steps: int | None = None, num_images: int | None = None,
                    batch_size: int = 64, lr: float = 2e-3, seed: int = 0, progress: bool = True):
    """Fine-tune a copy of the tiny GPT (a TinyTextEncoder's model) to caption images; (captioner, history).

    Training pairs: judge features of training images and their training-family captions.
    """
    import copy

    from .metrics import judge_features
    from .text import PAD, _special_id, batch_encode
    num_steps = num_steps or pick(600, 40)
    num_images = min(num_images or pick(20000, 1000), len(data.X_train))
    g = seed_everything(seed)
    model = ImageCaptioner(copy.deepcopy(tiny.model), tiny.tokenizer, judge.feature_dim if hasattr(judge, "feature_dim") else 128)
    device = get_device()
    model.to(device).train()
    feats = judge_features(judge, data.X_train[:num_images])  # (M, 128), computed once
    caps = captions.make_captions(data, "train", "train", seed=seed)[:num_images]
    ids, _ = batch_encode(tiny.tokenizer, caps, model.gpt.block_size - 1)  # (M, T): <bos> caption <eos> <pad>...
    pad = _special_id(tiny.tokenizer, PAD)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    history = {"loss": []}
    start = time.perf_counter()
    for step in tqdm(range(num_steps), desc="captioner", disable=not progress):
        b = torch.randint(len(ids), (batch_size,), generator=g)
        x_ids = ids[b].to(device)
        logits = model.logits(feats[b].to(device), x_ids[:, :-1])  # predicts x_ids[:, 0..T-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x_ids.reshape(-1), ignore_index=pad)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history["loss"].append(loss.item())
    history["train_seconds"] = time.perf_counter() - start
    model.eval()
    return model, history


def caption_images(captioner: ImageCaptioner, judge, images: torch.Tensor) -> list:
    """Captions for images (N, 1, 28, 28) in [0, 1]."""
    from .metrics import judge_features
    return captioner.caption(judge_features(judge, images))


def caption_accuracy(captions_text: list, labels: torch.Tensor, dataset: str) -> float:
    """Share of captions whose class word (a training class word) names the true class."""
    reader = LabelLookupEncoder(dataset)
    labels = torch.as_tensor(labels).tolist()
    if len(captions_text) != len(labels) or not labels:
        raise ValueError(f"need one caption per label (got {len(captions_text)} and {len(labels)}), at least one.")
    return sum(reader.read(c) == y for c, y in zip(captions_text, labels)) / len(labels)


def cycle_consistency(model: ConditionalVAE, encoder, captioner: ImageCaptioner, judge, dataset: str,
                      family: str = "train", n_per_prompt: int = 4, seed: int = 0,
                      guidance: float | None = None) -> dict:
    """prompt -> image -> caption: share of captions that name the class the prompt asked for."""
    texts, labels = _prompt_set(dataset, family)
    images = sample(model, encoder.encode(texts), n_per_prompt, torch.Generator().manual_seed(seed),
                    _guidance(guidance))
    caps = caption_images(captioner, judge, images)
    requested = labels.repeat_interleave(n_per_prompt)
    return {"accuracy": caption_accuracy(caps, requested, dataset), "prompts": texts, "images": images,
            "captions": caps, "requested": requested}


# ---------------------------------------------------------------- shipped weights

def shipped_generator_path(dataset: str) -> Path:
    return config.shipped_data_dir() / f"cvae_{_normalise_dataset(dataset)}.safetensors"


def save_generator(model: ConditionalVAE, path, dataset: str, text_encoder: str, metadata: dict | None = None) -> Path:
    """Save what generation needs (projection, FiLM, decoder; not the encoder q(z|x)) as float16 safetensors."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()).contiguous()
             for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    meta = {"format": SHIPPED_FORMAT, "dataset": _normalise_dataset(dataset), "text_encoder": text_encoder,
            "text_dim": model.text_dim, "latent_dim": model.latent_dim, "cond_dim": model.cond_dim,
            "proj_hidden": model.projection.net[0].out_features, "film": model.use_film, "norm": model.norm}
    meta.update(metadata or {})
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={k: str(v) for k, v in meta.items()})
    tmp.replace(path)
    return path


def load_generator(dataset: str, path=None, device=None) -> ConditionalVAE:
    """A shipped (or saved) ConditionalVAE for sampling, in eval mode; .metadata holds what it was trained with.

    Only the decoder side is stored, so the returned model can sample but not encode images.
    """
    from safetensors import safe_open
    dataset = _normalise_dataset(dataset)
    path = Path(path) if path is not None else shipped_generator_path(dataset)
    if not path.exists():
        raise FileNotFoundError(f"no generator weights at {path.name}; restore them with `git checkout -- "
                                f"textimg_lessons/shipped/{path.name}` or rebuild them with "
                                "`python -m textimg_lessons.conditional train-shipped`.")
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        state = {k: f.get_tensor(k) for k in f.keys()}
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    if meta.get("format") != SHIPPED_FORMAT or meta.get("dataset") != dataset:
        raise ValueError(f"{path.name} is not a {dataset} generator saved by save_generator "
                         f"(format {meta.get('format')!r}, dataset {meta.get('dataset')!r}).")
    model = ConditionalVAE(int(meta["text_dim"]), int(meta["latent_dim"]), int(meta["cond_dim"]),
                           int(meta["proj_hidden"]), film=meta["film"] == "True", norm=meta.get("norm", "True") == "True")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("encoder.") for k in missing):
        raise ValueError(f"{path.name} does not fit ConditionalVAE: missing {missing[:3]}, unexpected {unexpected[:3]}.")
    model.metadata = meta
    return model.to(device or get_device()).eval()


SHIPPED_COMMAND = "python -m textimg_lessons.conditional train-shipped"
SHIPPED_STEPS = {"fashion_mnist": 1800, "mnist": 1200}  # fixed here, so the command stays reproducible


def train_shipped(out_dir=None, datasets=("fashion_mnist", "mnist"), seed: int = 0) -> list:
    """Train the generators behind `textimg-lessons generate` with the pretrained encoder and save them."""
    from .cnn import load_judge
    from .data import load_dataset
    from .text import PretrainedTextEncoder
    out_dir = Path(out_dir) if out_dir is not None else config.shipped_data_dir()
    encoder = PretrainedTextEncoder()
    report = []
    for ds in datasets:
        start = time.perf_counter()
        data = load_dataset(ds)
        judge = load_judge(ds)
        model, history = train_conditional(data, encoder, judge, num_steps=SHIPPED_STEPS[_normalise_dataset(ds)],
                                           seed=seed)
        adh = adherence_report(model, encoder, judge, ds, 20, seed=seed)
        path = save_generator(model, out_dir / f"cvae_{_normalise_dataset(ds)}.safetensors", ds, encoder.name, {
            "command": SHIPPED_COMMAND, "seed": seed, "steps": history["step"][-1], "source": data.source,
            "guidance": f"{RECIPE['guidance']:g}",
            **{f"adherence_{f}": f"{adh[f]['adherence']:.3f}" for f in adh}})
        report.append({"dataset": ds, "file": path.name, "bytes": path.stat().st_size,
                       "seconds": round(time.perf_counter() - start, 1),
                       **{f: round(adh[f]["adherence"], 3) for f in adh}})
        print(json.dumps(report[-1]))
    return report


# ---------------------------------------------------------------- benchmark and command line

def _row(metric, value, dataset, target=None, met=None, seconds=0.0) -> dict:
    return {"metric": metric, "value": float(value) if value is not None else float("nan"), "dataset": dataset,
            "target": target, "met": met, "wall_seconds": float(seconds)}


def bench() -> list:
    """Chapter 6's measured claims, with the notebook's recipe (compare_encoders, train_captioner)."""
    from .cnn import load_judge
    from .data import load_dataset
    from .text import PretrainedTextEncoder
    rows = []
    tiny, tiny_hist = train_tiny_encoder()
    rows.append(_row("tiny GPT encoder training time (s, shared by both datasets)", tiny_hist["train_seconds"],
                     "captions", seconds=tiny_hist["train_seconds"]))
    pretrained = PretrainedTextEncoder()
    for ds in ("mnist", "fashion_mnist"):
        start = time.perf_counter()
        data = load_dataset(ds, verbose=False)
        judge = load_judge(ds)
        encoders = {"onehot": LabelLookupEncoder(ds), "tiny": tiny, "pretrained": pretrained}
        res = compare_encoders(data, judge, encoders, progress=False)
        name = ds + (" [fast subset]" if config.fast_mode() else "")
        for kind, r in res.items():
            h, a, sec = r["history"], r["adherence"], r["history"]["train_seconds"]
            for fam in captions.FAMILIES:
                target, met = None, None
                if kind == "pretrained" and fam == "heldout_phrasing":
                    target, met = ">= 0.9", a[fam]["adherence"] >= 0.9
                if kind == "pretrained" and fam == "heldout_synonym" and ds == "fashion_mnist":
                    target, met = ">= 0.5", a[fam]["adherence"] >= 0.5
                rows.append(_row(f"{kind}: prompt adherence, {fam}", a[fam]["adherence"], name, target, met, sec))
            rows.append(_row(f"{kind}: steps to 80% adherence (train prompts; nan = not reached)",
                             h["steps_to_target"], name, seconds=sec))
            rows.append(_row(f"{kind}: training seconds to 80% adherence (nan = not reached)",
                             h["seconds_to_target"], name, seconds=sec))
            rows.append(_row(f"{kind}: attribute adherence (chance 0.33)", r["attributes"]["mean"], name, seconds=sec))
            rows.append(_row(f"{kind}: Frechet distance on judge features", r["quality"]["frechet"], name, seconds=sec))
            rows.append(_row(f"{kind}: diversity within a prompt (real: {r['quality']['real_diversity']:.2f})",
                             r["quality"]["diversity"], name, seconds=sec))
        # the encoder alone: does the nearest training prompt of each synonym prompt have the right class?
        # A generator that reads only this embedding can hardly do better (chapter 5's synonym_retrieval).
        from .text import synonym_retrieval
        for kind in ("pretrained", "tiny"):
            rows.append(_row(f"{kind}: synonym retrieval of the encoder alone (ceiling reference)",
                             synonym_retrieval(encoders[kind], ds), name))
        gap = (res["pretrained"]["adherence"]["heldout_synonym"]["adherence"]
               - res["tiny"]["adherence"]["heldout_synonym"]["adherence"])
        rows.append(_row("pretrained - tiny adherence on unseen synonyms", gap, name,
                         ">= 0.3" if ds == "fashion_mnist" else None, gap >= 0.3 if ds == "fashion_mnist" else None))
        cap, cap_hist = train_captioner(tiny, judge, data, progress=False)
        n = pick(1000, 200)
        acc = caption_accuracy(caption_images(cap, judge, data.X_test[:n]), data.y_test[:n], ds)
        rows.append(_row("captioner: class word correct on test images", acc, name, seconds=cap_hist["train_seconds"]))
        cyc = cycle_consistency(res["pretrained"]["model"], pretrained, cap, judge, ds)
        rows.append(_row("cycle prompt -> image -> caption names the class (train prompts)", cyc["accuracy"], name))
        wall = time.perf_counter() - start
        rows.append(_row("total wall time for the dataset (s)", wall, name, "<= 900", wall <= 900, wall))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textimg_lessons.conditional", description="chapter 6 tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train-shipped", help="train the generators used by `textimg-lessons generate`")
    p.add_argument("--out", default=None, help="output folder (default: the package's shipped/ folder)")
    p.add_argument("--datasets", nargs="+", default=["fashion_mnist", "mnist"])
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "train-shipped":
        train_shipped(args.out, args.datasets, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

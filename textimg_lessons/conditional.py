"""Text-to-image generation (chapter 6): a conditional VAE that reads a text embedding.

The pipeline is prompt -> text encoder -> embedding -> condition projection -> decoder -> image. This
module is the generator: its layers, its captioned training data, its training loop and sampling.

  FiLM, ConditionProjection, ConditionalVAE   conditioning by concatenation (vae.ConvEncoder/ConvDecoder
                                              with cond_dim) plus FiLM on the decoder's feature maps
  CaptionTable, train_conditional             captioned training with condition dropout and embedding noise
  sample                                      generating from prompts, with classifier-free guidance

Around it: encoders (the TextEncoder interface and the one-hot encoder), adherence (measuring a generator),
encoder_comparison (the chapter's experiment), captioner (image -> caption) and generator_io (the shipped
weights behind `textimg-lessons generate`).
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from . import captions, vae
from .config import FullFast, Recipe, get_device, seed_everything
from .datasets import require_dataset
from .histories import ConditionalHistory
from .encoders import LabelLookupEncoder
from .metrics import prompt_adherence
from .train import run_loop, step_rounds

# The chapter's recipe: the notebook, the benchmark and `train generators` all read it, so they cannot drift.
RECIPE = Recipe(
    latent_dim=4,           # small: the less z can carry, the more the decoder must read the condition
    cond_dim=32,            # size of the condition vector the projection makes from any text embedding
    proj_hidden=128,        # the small MLP on the embedding
    batch_size=128,
    lr=2e-3,
    captions_per_image=4,   # each image gets 4 captions (different templates/attribute words); one per step
    cond_drop=0.1,          # share of training steps' examples whose condition is blanked (zeros)
    embed_noise=0.05,       # Gaussian noise on the unit-length embedding: smoother around seen captions
    norm=True,              # batch norm in chapter 4's conv encoder/decoder
    z_drop=0.3,             # share of examples decoded from a prior z instead of the posterior z
    kl_weight=2.0,          # weight of the KL term (beta); > 1 leaves less room in z, so c must carry the class
    num_steps=FullFast({"fashion_mnist": 1800, "mnist": 1200}, {"fashion_mnist": 40, "mnist": 40}),
    eval_every=FullFast(100, 20),
    eval_per_prompt=4,      # images per prompt while tracking adherence during training
    target_adherence=0.8,
    guidance=2.0,           # classifier-free guidance scale for every measurement (1.0 = plain sampling)
)


# ---------------------------------------------------------------- conditioning layers

class FiLM(nn.Module):
    """Feature-wise linear modulation (chapter 6): h * (1 + gamma(c)) + beta(c), per channel.

    forward(h, c): h (N, C) or (N, C, H, W) features, c (N, cond_dim) => same shape as h. The linear layer
    starts at zero, so a fresh FiLM is the identity and training decides how much the condition steers.

    Lesson: 06_text_to_image.ipynb, "Exercise 1: FiLM".
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

    Lesson: 06_text_to_image.ipynb, "3. The conditional VAE".
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

    Lesson: 06_text_to_image.ipynb, "3. The conditional VAE".
    """

    def __init__(self, text_dim: int, latent_dim: int = RECIPE["latent_dim"], cond_dim: int = RECIPE["cond_dim"],
                 proj_hidden: int = RECIPE["proj_hidden"], film: bool = True, norm: bool = RECIPE["norm"]):
        super().__init__()
        self.text_dim, self.latent_dim, self.cond_dim, self.use_film = text_dim, latent_dim, cond_dim, film
        self.projection = ConditionProjection(text_dim, cond_dim, proj_hidden)
        self.encoder = vae.ConvEncoder(latent_dim, cond_dim, norm=norm)
        self.decoder = vae.ConvDecoder(latent_dim, cond_dim, norm=norm)
        self.norm = norm
        self.film = FiLM(cond_dim, self.decoder.feature_channels) if film else None

    def condition(self, e: torch.Tensor) -> torch.Tensor:
        return self.projection(e)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """z (N, latent_dim), c (N, cond_dim) => pixel logits (N, 1, 28, 28)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (N, {self.latent_dim}), got {tuple(z.shape)}.")
        if self.film is None:
            return self.decoder(z, c)
        # FiLM scales and shifts each 14x14 feature map (after the up-convolution and its batch norm)
        return self.decoder(z, c, modulate=lambda h: self.film(h, c))

    def forward(self, x: torch.Tensor, e: torch.Tensor, generator: torch.Generator | None = None):
        c = self.condition(e)
        mu, logvar = self.encoder(x, c)
        z = vae.reparameterize(mu, logvar, generator)
        return self.decode(z, c), mu, logvar


# ---------------------------------------------------------------- captioned training data

class CaptionTable:
    """Captions of a training set, encoded once: K captions per image, each a row of a unique-caption table.

    embeddings (U, D) holds each distinct caption once (captions repeat: templates x words), index (K, N)
    says which row caption k of image n is. For the one-hot encoder the table is the 10 class vectors.

    Lesson: 06_text_to_image.ipynb, "4. Training with three encoders: Fashion-MNIST".
    """

    def __init__(self, data, encoder, captions_per_image: int = RECIPE["captions_per_image"], seed: int = 0):
        if len(data.X_train) == 0:
            raise ValueError("the training set is empty; pass an ImageData with images in X_train.")
        start = time.perf_counter()
        self.encoder = encoder if getattr(encoder, "trainable", False) else None
        if isinstance(encoder, LabelLookupEncoder):
            self.texts = list(encoder.words)
            self.embeddings = torch.eye(encoder.dim)
            self.index = data.y_train.long().unsqueeze(0)  # (1, N): the label is the whole "caption"
        else:
            per_seed = [captions.make_captions(data, "train", "train", seed=seed + k)
                        for k in range(captions_per_image)]
            self.texts = sorted({t for caps in per_seed for t in caps})
            row = {t: i for i, t in enumerate(self.texts)}
            if self.encoder is not None:  # trained with the generator: keep word ids, embed at every step
                self.ids, self.embeddings = encoder.token_ids(self.texts), None
            else:
                self.embeddings = encoder.encode(self.texts).float()  # (U, D): the only time the encoder runs
            self.index = torch.tensor([[row[t] for t in caps] for caps in per_seed])  # (K, N)
        self.encode_seconds = time.perf_counter() - start
        self.dim = encoder.dim if self.encoder is not None else self.embeddings.shape[1]

    def batch(self, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Embeddings (B, D) of one randomly chosen caption for each image index in idx (B,)."""
        k = torch.randint(self.index.shape[0], (len(idx),), generator=generator)
        rows = self.index[k, idx]
        if self.encoder is not None:
            return self.encoder.embed_ids(self.ids[rows])  # with gradients to the word vectors
        return self.embeddings[rows]


# ---------------------------------------------------------------- sampling

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

    Lesson: 06_text_to_image.ipynb, "Exercise 2: conditional sampling".
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


def guidance_or_default(guidance: float | None) -> float:
    """The guidance scale to sample with: the chapter's RECIPE["guidance"] when None.

    Lesson: 06_text_to_image.ipynb, "Classifier-free guidance".
    """
    return RECIPE["guidance"] if guidance is None else guidance


# ---------------------------------------------------------------- training


def _adherence_hook(judge, encoder, dataset: str):
    """The evaluation during training: adherence on the training-family class prompts, a fixed seed."""
    texts, labels = captions.prompt_set(dataset, "train")
    trainable, n = getattr(encoder, "trainable", False), RECIPE["eval_per_prompt"]
    embeddings = None if trainable else encoder.encode(texts)

    def evaluate(model) -> dict:
        e = encoder.encode(texts) if trainable else embeddings  # a trained encoder changes at every step
        images = sample(model, e, n, torch.Generator().manual_seed(0), RECIPE["guidance"])
        return {"adherence": prompt_adherence(judge, images, labels.repeat_interleave(n))}
    return evaluate


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
    An encoder with `trainable = True` (encoders.ScratchTextEncoder) is trained with the generator, by the
    same optimiser and loss; it must be fresh (each generator gets its own encoder).

    Lesson: 06_text_to_image.ipynb, "4. Training with three encoders: Fashion-MNIST".
    """
    dataset = require_dataset(data.name)
    num_steps = num_steps if num_steps is not None else RECIPE["num_steps"][dataset]
    eval_every = eval_every or RECIPE["eval_every"]
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}.")
    if not 0 <= cond_drop < 1:
        raise ValueError(f"cond_drop must be in [0, 1), got {cond_drop}.")
    trainable = getattr(encoder, "trainable", False)
    if trainable and encoder.trained_steps:
        raise ValueError(f"this {encoder.name} encoder was already trained with a generator "
                         f"({encoder.trained_steps} steps); each generator needs a fresh one, e.g. "
                         "encoders.ScratchTextEncoder.for_dataset(dataset).")
    table = table if table is not None else CaptionTable(data, encoder, seed=seed)
    g = seed_everything(seed)
    device = device or get_device()
    model = ConditionalVAE(table.dim, latent_dim=latent_dim, film=film, norm=norm).to(device)
    params = list(model.parameters())
    if trainable:
        params += list(encoder.to(device).parameters())  # one optimiser, one loss: trained end to end
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=num_steps, pct_start=0.1)
    is_onehot = isinstance(encoder, LabelLookupEncoder)
    X = data.X_train

    def batch_loss(step):
        idx = torch.randint(len(X), (batch_size,), generator=g)
        x = X[idx].to(device)
        e = table.batch(idx, g)
        if embed_noise > 0 and not is_onehot:
            e = F.normalize(e + embed_noise * torch.randn(e.shape, generator=g).to(e.device), dim=1)
        if cond_drop > 0:
            keep = (torch.rand(len(e), 1, generator=g) >= cond_drop).float().to(e.device)
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
        return (vae.bernoulli_nll(x_logits, x) + kl_weight * vae.gaussian_kl(mu, logvar)).mean(), len(x)

    # without a judge there is nothing to evaluate: one round holds every step
    rounds = step_rounds(num_steps, eval_every if judge is not None else num_steps)
    r = run_loop(model, opt, rounds, batch_loss, scheduler=sched,
                 evaluate=None if judge is None else _adherence_hook(judge, encoder, dataset),
                 desc=desc or f"cVAE [{getattr(encoder, 'name', encoder)}]", progress=progress,
                 postfix=lambda r: f"loss={r.losses[-1]:.1f}" + (
                     f", adherence={r.evals['adherence'][-1]:.2f}" if r.evals else ""))
    if trainable:
        encoder.trained_steps = num_steps
        encoder.eval()
    history = {"step": [], "adherence": [], "seconds": [], "loss": [], "steps_to_target": None,
               "seconds_to_target": None, "encode_seconds": table.encode_seconds, "train_seconds": r.seconds}
    if judge is not None:
        history.update(step=r.steps, adherence=r.evals["adherence"], seconds=r.elapsed, loss=r.losses)
        reached = [i for i, a in enumerate(history["adherence"]) if a >= RECIPE["target_adherence"]]
        if reached:
            history["steps_to_target"], history["seconds_to_target"] = r.steps[reached[0]], r.elapsed[reached[0]]
    return model, ConditionalHistory(**history)

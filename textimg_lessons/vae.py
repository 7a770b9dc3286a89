"""Variational autoencoders (chapter 4): the reparameterisation trick, the ELBO, and the models.

Everything here is the package copy of what chapter 4 derives step by step:
- `binarize`: the course's FIXED binarisation (pixel > 0.5 => 1, else 0). Every number in nats in this
  module is "per image on binarised data" with this rule; another rule (e.g. stochastic binarisation)
  gives different numbers, so compare like with like.
- `reparameterize`, `gaussian_kl`, `bernoulli_nll`, `negative_elbo`: the pieces of the loss.
- `ConvEncoder`, `ConvDecoder`, `MLPEncoder`, `MLPDecoder`, `VAE`: the networks. The conv ones take an
  optional conditioning vector (`cond_dim`) concatenated to their features, and ConvDecoder a `modulate`
  function for its feature maps, so chapter 6's conditional VAE reuses them unchanged.
- `train_vae`, `test_negative_elbo`, `importance_weighted_nll`: the training recipe and the metrics in nats.
- `Autoencoder`, `train_autoencoder`: the chapter's plain autoencoder.

What the chapter does with a trained VAE (denoising, inpainting, PSNR/SSIM, the conv-vs-MLP comparison) is
in vae_experiments.py.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import FullFast, Recipe, get_device, seed_everything
from .histories import VAEHistory

IMAGE_SHAPE = (1, 28, 28)
NUM_PIXELS = 28 * 28
BINARIZE_THRESHOLD = 0.5
LOG_2PI = math.log(2 * math.pi)

# The chapter's recipe (the notebook and the benchmark both read it, so they cannot drift).
RECIPE = Recipe(
    latent_dim=20,                 # the same latent size as the classic MLP baseline, so only the networks differ
    batch_size=128,
    lr=1e-3,
    num_epochs=FullFast(5, 2),     # both models
)


# ---------------------------------------------------------------- input checks

def _require_tensor(name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}; convert it with torch.as_tensor().")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}; call .float() first.")


def _require_pair(name_a: str, a, name_b: str, b) -> None:
    _require_tensor(name_a, a)
    _require_tensor(name_b, b)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}; "
                         "they must match.")
    if a.dim() < 2:
        raise ValueError(f"{name_a} must be batched, shaped (N, ...), got shape {tuple(a.shape)}; "
                         "add a batch axis with .unsqueeze(0).")
    if a.shape[0] == 0:
        raise ValueError(f"{name_a} is an empty batch (N = 0); pass at least one example.")


def require_images(name: str, x, binary: bool) -> None:
    """Images shaped (N, 1, 28, 28), N >= 1, floating point (and 0/1 if binary), or an error saying the fix."""
    _require_tensor(name, x)
    if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{name} must be images shaped (N, 1, 28, 28), got {tuple(x.shape)}.")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0); pass at least one image.")
    if binary and not ((x == 0) | (x == 1)).all():
        raise ValueError(f"{name} must be binary (0/1) for a likelihood in nats; binarise it first with "
                         "textimg_lessons.vae.binarize(x).")


def binarize(X: torch.Tensor, threshold: float = BINARIZE_THRESHOLD) -> torch.Tensor:
    """The course's fixed binarisation: 1.0 where a pixel is > threshold (0.5), else 0.0 (chapter 4).

    Lesson: 04_vae.ipynb, "The data: Fashion-MNIST, binarised".
    """
    _require_tensor("X", X)
    return (X > threshold).to(X.dtype)


# ---------------------------------------------------------------- the pieces of the ELBO

def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2) (chapter 4).

    Sampling is moved into eps, which does not depend on the parameters, so gradients flow to mu and logvar.

    Lesson: 04_vae.ipynb, "The reparameterisation trick".
    """
    _require_pair("mu", mu, "logvar", logvar)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device="cpu" if generator is not None else mu.device)
    return mu + torch.exp(0.5 * logvar) * eps.to(mu.device)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) in nats, summed over latent dims: (N, D) => (N,) (chapter 4).

    Per dim: 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2).

    Lesson: 04_vae.ipynb, "Checking the closed form with Monte Carlo".
    """
    _require_pair("mu", mu, "logvar", logvar)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def bernoulli_nll(x_logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) for independent Bernoulli pixels, in nats, summed over pixels: (N, ...) => (N,) (chapter 4).

    Computed from logits (binary cross-entropy with logits), which is stable where sigmoid-then-log is not.
    x must lie in [0, 1]; it is a log-likelihood only when x is binary (see `binarize`).

    Lesson: 04_vae.ipynb, "1. An autoencoder first".
    """
    _require_pair("x_logits", x_logits, "x", x)
    if (x < 0).any() or (x > 1).any():
        raise ValueError("x must lie in [0, 1] (pixel probabilities or binary pixels); rescale it, e.g. x / 255.")
    return F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").flatten(1).sum(1)


def negative_elbo(x_logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """-ELBO = reconstruction (Bernoulli NLL) + KL(q(z|x) || p(z)), in nats per example: (N,) (chapter 4).

    Lesson: 04_vae.ipynb, "The reconstruction term and the whole negative ELBO".
    """
    rec = bernoulli_nll(x_logits, x)
    kl = gaussian_kl(mu, logvar)
    if rec.shape != kl.shape:
        raise ValueError(f"x has {len(rec)} examples but mu has {len(kl)}; pass the same batch to both.")
    return rec + kl


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor | None = None, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dim: (..., D) => (...). Defaults: N(0, I).

    Lesson: 04_vae.ipynb, "Checking the closed form with Monte Carlo".
    """
    mu = torch.zeros_like(z) if mu is None else mu
    logvar = torch.zeros_like(z) if logvar is None else logvar
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


# ---------------------------------------------------------------- networks

class ConvEncoder(nn.Module):
    """q(z | x[, c]): two stride-2 convolutions (with batch norm), a dense layer, then (mu, logvar) (chapter 4).

    Batch norm is there because without it this small conv VAE learns more slowly than the MLP baseline in
    the first epochs (measured in chapter 4's budget); chapter 6 passes a conditioning vector c.

    forward(x, c=None): x (N, 1, 28, 28), c (N, cond_dim) => mu, logvar each (N, latent_dim).

    Lesson: 04_vae.ipynb, "1. An autoencoder first".
    """

    def __init__(self, latent_dim: int, cond_dim: int = 0, channels: int = 16, hidden: int = 256, norm: bool = True):
        super().__init__()
        if latent_dim < 1 or cond_dim < 0:
            raise ValueError(f"latent_dim must be >= 1 and cond_dim >= 0, got {latent_dim}, {cond_dim}.")
        self.latent_dim, self.cond_dim = latent_dim, cond_dim
        bn = (lambda c: nn.BatchNorm2d(c)) if norm else (lambda c: nn.Identity())
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 4, stride=2, padding=1), bn(channels), nn.ReLU(),                 # (N, 1, 28, 28) => (N, 16, 14, 14)
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), bn(2 * channels), nn.ReLU(),  # => (N, 32, 7, 7)
            nn.Flatten(),                                                                             # => (N, 32 * 7 * 7)
        )
        self.fc = nn.Sequential(nn.Linear(2 * channels * 49 + cond_dim, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 2 * latent_dim)  # one layer predicts both mu and logvar

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None):
        h = _concat_cond(self.features(x), c, self.cond_dim)  # (N, 1568) => (N, 1568 + cond_dim)
        mu, logvar = self.head(self.fc(h)).chunk(2, dim=1)    # (N, 2D) => 2 x (N, D)
        return mu, logvar


class ConvDecoder(nn.Module):
    """p(x | z[, c]): the mirror of ConvEncoder; returns pixel logits (N, 1, 28, 28) (chapter 4).

    Lesson: 04_vae.ipynb, "1. An autoencoder first".
    """

    def __init__(self, latent_dim: int, cond_dim: int = 0, channels: int = 16, hidden: int = 256,
                 pixel_bias: bool = True, norm: bool = True):
        super().__init__()
        if latent_dim < 1 or cond_dim < 0:
            raise ValueError(f"latent_dim must be >= 1 and cond_dim >= 0, got {latent_dim}, {cond_dim}.")
        self.latent_dim, self.cond_dim, self.channels = latent_dim, cond_dim, channels
        self.fc = nn.Sequential(nn.Linear(latent_dim + cond_dim, hidden), nn.ReLU(),
                                nn.Linear(hidden, 2 * channels * 49), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),  # (N, 32, 7, 7) => (N, 16, 14, 14)
            nn.BatchNorm2d(channels) if norm else nn.Identity(), nn.ReLU(),
            nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1),                       # => (N, 1, 28, 28) logits
        )
        # one learned bias per pixel (e.g. "the border is almost always 0"), which a convolution, sharing its
        # bias across positions, cannot express; the MLP decoder gets it from its last layer's bias
        self.pixel_bias = nn.Parameter(torch.zeros(1, *IMAGE_SHAPE)) if pixel_bias else None

    @property
    def feature_channels(self) -> int:
        """Channels of the 14x14 feature maps that `modulate` receives."""
        return self.channels

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, modulate=None) -> torch.Tensor:
        """z (N, latent_dim)[, c (N, cond_dim)] => pixel logits (N, 1, 28, 28).

        modulate: optional function applied to the (N, channels, 14, 14) feature maps after the first
        up-convolution and its batch norm, before its ReLU; chapter 6 passes FiLM here to let a text
        condition scale and shift each map.
        """
        h = self.fc(_concat_cond(z, c, self.cond_dim))             # (N, D + cond_dim) => (N, 1568)
        up, norm, relu, to_pixels = self.deconv
        h = norm(up(h.view(-1, 2 * self.channels, 7, 7)))          # (N, 32, 7, 7) => (N, 16, 14, 14)
        if modulate is not None:
            h = modulate(h)
        logits = to_pixels(relu(h))                                # => (N, 1, 28, 28)
        return logits if self.pixel_bias is None else logits + self.pixel_bias


class MLPEncoder(nn.Module):
    """The classic pytorch/examples VAE encoder: 784 => 400 => (mu, logvar) of size latent_dim (baseline).

    Lesson: 04_vae.ipynb, "3. Training the VAE and measuring it in nats".
    """

    def __init__(self, latent_dim: int = 20, hidden: int = 400, cond_dim: int = 0):
        super().__init__()
        self.latent_dim, self.cond_dim = latent_dim, cond_dim
        self.fc = nn.Sequential(nn.Linear(NUM_PIXELS + cond_dim, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None):
        h = self.fc(_concat_cond(x.flatten(1), c, self.cond_dim))  # (N, 1, 28, 28) => (N, 784) => (N, 400)
        return self.mu(h), self.logvar(h)


class MLPDecoder(nn.Module):
    """The classic pytorch/examples VAE decoder: latent_dim => 400 => 784 logits, shaped (N, 1, 28, 28).

    Lesson: 04_vae.ipynb, "3. Training the VAE and measuring it in nats".
    """

    def __init__(self, latent_dim: int = 20, hidden: int = 400, cond_dim: int = 0):
        super().__init__()
        self.latent_dim, self.cond_dim = latent_dim, cond_dim
        self.net = nn.Sequential(nn.Linear(latent_dim + cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, NUM_PIXELS))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_concat_cond(z, c, self.cond_dim)).view(-1, *IMAGE_SHAPE)  # (N, 784) => (N, 1, 28, 28)


def _concat_cond(h: torch.Tensor, c: torch.Tensor | None, cond_dim: int) -> torch.Tensor:
    """Append the conditioning vector c (N, cond_dim) to features h (N, F); checks that c fits."""
    if cond_dim == 0:
        if c is not None:
            raise ValueError("this network was built with cond_dim=0 but got a conditioning vector c; "
                             "build it with cond_dim=c.shape[1] or pass c=None.")
        return h
    if c is None:
        raise ValueError(f"this network was built with cond_dim={cond_dim}; pass c shaped (N, {cond_dim}).")
    if c.dim() != 2 or c.shape != (h.shape[0], cond_dim):
        raise ValueError(f"c must be shaped ({h.shape[0]}, {cond_dim}), got {tuple(c.shape)}.")
    return torch.cat([h, c.to(h.dtype)], dim=1)


class VAE(nn.Module):
    """A VAE with a Gaussian encoder q(z|x), a N(0, I) prior and a Bernoulli decoder p(x|z) (chapter 4).

    kind="conv" (the chapter's model) or "mlp" (the classic 784-400-20 baseline). forward(x) returns
    (x_logits, mu, logvar); sample(n) draws images from the prior; decode(z) returns pixel logits.
    cond_dim > 0 makes it conditional: pass c (N, cond_dim) to forward, decode and sample.

    Lesson: 04_vae.ipynb, "Spot the bug: the source article's VAE".
    """

    def __init__(self, latent_dim: int = RECIPE["latent_dim"], kind: str = "conv", cond_dim: int = 0):
        super().__init__()
        if kind == "conv":
            self.encoder, self.decoder = ConvEncoder(latent_dim, cond_dim), ConvDecoder(latent_dim, cond_dim)
        elif kind == "mlp":
            self.encoder = MLPEncoder(latent_dim, cond_dim=cond_dim)
            self.decoder = MLPDecoder(latent_dim, cond_dim=cond_dim)
        else:
            raise ValueError(f"kind must be 'conv' or 'mlp', got {kind!r}.")
        self.latent_dim, self.kind, self.cond_dim = latent_dim, kind, cond_dim

    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None):
        """x (N, 1, 28, 28) => mu, logvar (N, latent_dim)."""
        require_images("x", x, binary=False)
        return self.encoder(x, c)

    def decode(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z (N, latent_dim) => pixel logits (N, 1, 28, 28); sigmoid gives pixel probabilities."""
        _require_tensor("z", z)
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be shaped (N, {self.latent_dim}), got {tuple(z.shape)}.")
        return self.decoder(z, c)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, generator: torch.Generator | None = None):
        mu, logvar = self.encode(x, c)
        z = reparameterize(mu, logvar, generator)  # one sample per image: (N, D)
        return self.decode(z, c), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        """n images drawn from the model: z ~ N(0, I), then pixel probabilities sigmoid(decode(z)): (n, 1, 28, 28)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}.")
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return torch.sigmoid(self.decode(z, c))


# ---------------------------------------------------------------- training and metrics

def _device_of(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def train_vae(data, kind: str = "conv", latent_dim: int = RECIPE["latent_dim"], num_epochs: int | None = None,
              lr: float = RECIPE["lr"], seed: int = 0, batch_size: int = RECIPE["batch_size"],
              device=None, desc: str | None = None, eval_every_epoch: bool = True):
    """Train a VAE on binarised `data` (an ImageData) with Adam; return (vae, history) (chapter 4).

    Loss: the mean negative ELBO of a batch. history: "train_nelbo" (mean over each epoch, nats per image),
    "test_nelbo" (test negative ELBO after each epoch, nats per image), "seconds" (training wall time,
    not counting the per-epoch evaluation) and "cpu_seconds" (CPU time of the same: on a machine shared with
    other jobs it is closer than wall time to what an idle machine with torch's thread count would take).
    num_epochs defaults to the recipe (5; 2 in fast mode).

    Lesson: 04_vae.ipynb, "3. Training the VAE and measuring it in nats".
    """
    num_epochs = RECIPE["num_epochs"] if num_epochs is None else num_epochs
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be at least 1, got {num_epochs}")
    X_train, X_test = binarize(data.X_train), binarize(data.X_test)
    if len(X_train) == 0:
        raise ValueError("the training set is empty; pass an ImageData with images in X_train.")
    from .train import run_loop
    seed_everything(seed)
    device = device or get_device()
    vae = VAE(latent_dim, kind).to(device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    order_gen = torch.Generator().manual_seed(seed)
    # one round per epoch, its batches a fresh shuffle (drawn when the epoch starts)
    epochs = (torch.randperm(len(X_train), generator=order_gen).split(batch_size) for _ in range(num_epochs))
    epoch = 0

    def batch_loss(idx):
        x = X_train[idx].to(device)
        return negative_elbo(*_forward_for_loss(vae, x)).mean(), len(x)

    def evaluate(model) -> dict:
        nonlocal epoch
        epoch += 1
        return {"test_nelbo": test_negative_elbo(model, X_test)} if eval_every_epoch or epoch == num_epochs else {}

    r = run_loop(vae, optimizer, epochs, batch_loss, evaluate=evaluate, desc=desc or f"{kind} VAE (latent {latent_dim})",
                 total=num_epochs * math.ceil(len(X_train) / batch_size),
                 postfix=lambda r: f"train={r.losses[-1]:.1f}, test={r.evals['test_nelbo'][-1]:.1f}"
                 if r.evals.get("test_nelbo") else f"train={r.losses[-1]:.1f}")
    history = VAEHistory(train_nelbo=r.losses, test_nelbo=r.evals.get("test_nelbo", []), seconds=r.seconds,
                         cpu_seconds=r.cpu_seconds)
    return vae, history


def _forward_for_loss(vae: VAE, x: torch.Tensor):
    x_logits, mu, logvar = vae(x)
    return x_logits, x, mu, logvar


@torch.no_grad()
def test_negative_elbo(vae: VAE, X: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> float:
    """Mean negative ELBO in nats per image on binary X (one z sample per image, seeded) (chapter 4).

    Lesson: 04_vae.ipynb, "A tighter estimate of -log p(x): importance weighting".
    """
    require_images("X", X, binary=True)
    was_training = vae.training
    vae.eval()
    device, gen = _device_of(vae), torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(0, len(X), batch_size):
        x = X[i:i + batch_size].to(device)
        x_logits, mu, logvar = vae(x, generator=gen)
        total += negative_elbo(x_logits, x, mu, logvar).sum().item()
    vae.train(was_training)
    return total / len(X)


@torch.no_grad()
def log_importance_weights(vae: VAE, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x) for k samples z_i ~ q(z|x): (k, N) (chapter 4).

    Lesson: 04_vae.ipynb, "A tighter estimate of -log p(x): importance weighting".
    """
    mu, logvar = vae.encode(x)                                  # (N, D)
    mu_k, logvar_k = mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape)  # => (k, N, D)
    z = reparameterize(mu_k.reshape(-1, mu.shape[1]), logvar_k.reshape(-1, mu.shape[1]), generator)
    x_logits = vae.decode(z)                                    # (k * N, D) => (k * N, 1, 28, 28)
    log_px_z = -bernoulli_nll(x_logits, x.expand(k, *x.shape).reshape(-1, *x.shape[1:]))  # (k * N,)
    z = z.view(k, *mu.shape)
    return log_px_z.view(k, -1) + gaussian_log_prob(z) - gaussian_log_prob(z, mu_k, logvar_k)


@torch.no_grad()
def importance_weighted_nll(vae: VAE, X: torch.Tensor, k: int = 100, batch_size: int = 100, seed: int = 0) -> float:
    """IWAE estimate of -log p(x) in nats per image on binary X (chapter 4).

    -log p(x) <= -log (1/k) sum_i w_i with w_i = p(x, z_i) / q(z_i | x); the bound tightens as k grows and
    k = 1 is the single-sample ELBO. logsumexp keeps the sum of tiny weights (e^-200) from underflowing.

    Lesson: 04_vae.ipynb, "A tighter estimate of -log p(x): importance weighting".
    """
    require_images("X", X, binary=True)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int (number of importance samples), got {k!r}.")
    was_training = vae.training
    vae.eval()
    device, gen = _device_of(vae), torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(0, len(X), batch_size):
        log_w = log_importance_weights(vae, X[i:i + batch_size].to(device), k, gen)  # (k, n)
        total += -(torch.logsumexp(log_w, dim=0) - math.log(k)).sum().item()
    vae.train(was_training)
    return total / len(X)


# ---------------------------------------------------------------- the plain autoencoder

class Autoencoder(nn.Module):
    """A deterministic autoencoder with the VAE's conv networks: x => code => logits (chapter 4, part 1).

    It reuses ConvEncoder's mu head as the code (logvar is ignored), so the only difference from the VAE
    is the loss: reconstruction only, no noise and no KL.

    Lesson: 04_vae.ipynb, "1. An autoencoder first".
    """

    def __init__(self, latent_dim: int = RECIPE["latent_dim"]):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder, self.decoder = ConvEncoder(latent_dim), ConvDecoder(latent_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)[0]      # (N, 1, 28, 28) => (N, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))  # => logits (N, 1, 28, 28)


def reconstruction_loss(x_logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the per-image Bernoulli NLL (the autoencoder's loss; a fit() loss_fn).

    Lesson: 04_vae.ipynb, "1. An autoencoder first".
    """
    return bernoulli_nll(x_logits, x).mean()


def train_autoencoder(X: torch.Tensor, latent_dim: int = RECIPE["latent_dim"], num_epochs: int = 2,
                      lr: float = RECIPE["lr"], seed: int = 0, batch_size: int = RECIPE["batch_size"]):
    """Train an Autoencoder on binarised images X with the course's fit() loop; return (ae, history).

    Lesson: 04_vae.ipynb, "1. An autoencoder first".
    """
    from torch.utils.data import DataLoader, TensorDataset

    from .train import fit
    Xb = binarize(X)
    require_images("X", Xb, binary=True)
    seed_everything(seed)
    ae = Autoencoder(latent_dim)
    # fit() computes loss_fn(net(X), y); giving the images as their own targets turns it into an AE loop
    loader = DataLoader(TensorDataset(Xb, Xb), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    history = fit(ae, loader, num_epochs, lr=lr, loss_fn=reconstruction_loss, desc="autoencoder")
    ae.eval()
    return ae, history

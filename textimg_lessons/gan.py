"""Generative adversarial networks (chapter 3): losses, MLP and DCGAN models, WGAN-GP, training and bench.

Conventions used throughout:
- Images enter training in [0, 1] (the course's ImageData) and are mapped to [-1, 1] because the
  generators end in tanh; `sample()` maps generated images back to [0, 1] for plots and metrics.
- Discriminators return *logits* of shape (N,), never probabilities: `binary_cross_entropy_with_logits`
  computes log(sigmoid(l)) as -softplus(-l), which stays finite where log(sigmoid(l)) would be log(0).
- L_D = -[log D(x) + log(1 - D(G(z)))]; non-saturating L_G = -log D(G(z)) (chapter 3 derives both).
"""
from __future__ import annotations

import copy
import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .config import FullFast, Recipe, get_device, seed_everything
from .tensors import require_image_batch

KINDS = ("mlp", "dcgan", "dcgan-sn", "wgan-gp")


# ---------------------------------------------------------------- input checks

def _require_logits(name: str, logits) -> Tensor:
    if not isinstance(logits, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of discriminator logits, got {type(logits).__name__}.")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be float logits, got {logits.dtype}.")
    if logits.numel() == 0:
        raise ValueError(f"{name} is empty; a loss over 0 samples is undefined. Pass at least one logit.")
    return logits


def _require_z(z, z_dim: int) -> None:
    if not isinstance(z, Tensor):
        raise TypeError(f"z must be a torch.Tensor (N, {z_dim}), got {type(z).__name__}.")
    if z.dim() != 2 or z.shape[1] != z_dim:
        raise ValueError(f"z must have shape (N, {z_dim}), got {tuple(z.shape)}; "
                         f"draw it with torch.randn(N, {z_dim}).")
    if z.shape[0] == 0:
        raise ValueError("z is empty (N = 0); ask for at least one sample.")


def _require_x(x) -> None:
    require_image_batch(x, "x (the discriminator's input)")


# ---------------------------------------------------------------- losses

def d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator loss -[log D(x) + log(1 - D(G(z)))], batch means, from logits.

    Real images get target 1, generated ones target 0 (one seed swaps them: then D learns the opposite
    and the generator is pushed *away* from the data). Targets are built with ones_like/zeros_like so
    they always have the logits' shape (another seed's BCELoss got (N,) targets for (N, 1) outputs).

    Lesson: 03_gan.ipynb, "Exercise 1 (2 points): the discriminator loss".
    """
    real_logits = _require_logits("real_logits", real_logits)
    fake_logits = _require_logits("fake_logits", fake_logits)
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))   # -log D(x)
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))  # -log(1 - D(G(z)))
    return real + fake


def g_loss_nonsaturating(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss -log D(G(z)) = softplus(-l), batch mean.

    Its gradient is large exactly when D confidently rejects the fakes (early training), unlike
    log(1 - D(G(z))), whose gradient vanishes there.

    Lesson: 03_gan.ipynb, "Exercise 2 (2 points): the non-saturating generator loss".
    """
    fake_logits = _require_logits("fake_logits", fake_logits)
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def g_loss_minimax(fake_logits: Tensor) -> Tensor:
    """The original minimax generator loss log(1 - D(G(z))) = -softplus(l), batch mean (to be minimised).

    Lesson: 03_gan.ipynb, "2. Why the generator uses".
    """
    fake_logits = _require_logits("fake_logits", fake_logits)
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def wgan_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """WGAN critic loss E[f(G(z))] - E[f(x)] (the critic's scores are unbounded, no sigmoid).

    Lesson: 03_gan.ipynb, "7. Two fixes: spectral normalisation and the gradient penalty".
    """
    return _require_logits("fake_scores", fake_scores).mean() - _require_logits("real_scores", real_scores).mean()


def wgan_generator_loss(fake_scores: Tensor) -> Tensor:
    """WGAN generator loss -E[f(G(z))].

    Lesson: 03_gan.ipynb, "7. Two fixes: spectral normalisation and the gradient penalty".
    """
    return -_require_logits("fake_scores", fake_scores).mean()


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     eps: Tensor | None = None) -> Tensor:
    """WGAN-GP penalty E[(||grad_x f(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake.

    eps ~ U(0, 1), one per sample (pass `eps` of shape (N,) to fix it). The graph is kept
    (create_graph=True) so that the penalty can be backpropagated into the critic's weights.

    Lesson: 03_gan.ipynb, "Exercise 3 (3 points): the gradient penalty".
    """
    if not isinstance(real, Tensor) or not isinstance(fake, Tensor):
        raise TypeError("real and fake must be torch.Tensors of images (N, C, H, W).")
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same shape; "
                         "draw as many fakes as there are real images in the batch.")
    if real.dim() < 2 or real.shape[0] == 0:
        raise ValueError(f"real and fake must be non-empty batches (N, ...), got shape {tuple(real.shape)}.")
    n = real.shape[0]
    if eps is None:
        eps = torch.rand(n, device=real.device, dtype=real.dtype)
    if eps.shape != (n,):
        raise ValueError(f"eps must have shape ({n},), one mixing weight per sample; got {tuple(eps.shape)}.")
    eps = eps.view(n, *([1] * (real.dim() - 1)))  # (N,) => (N, 1, 1, 1) to broadcast over pixels
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)  # (N, 1, 28, 28)
    grad_norm = grad.flatten(1).norm(2, dim=1)  # (N, 784) => (N,)
    return ((grad_norm - 1) ** 2).mean()


# ---------------------------------------------------------------- models

def _maybe_sn(layer: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if on else layer


class MLPGenerator(nn.Module):
    """The seeds' fully connected generator: z (N, z_dim) => images (N, 1, 28, 28) in [-1, 1].

    Lesson: 03_gan.ipynb, "3. Spot the bugs: the articles' PyTorch MLP GAN".
    """

    def __init__(self, z_dim: int = 100, hidden=(256, 512, 1024)):
        super().__init__()
        self.z_dim = z_dim
        layers, d = [], z_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2)]
            d = h
        self.net = nn.Sequential(*layers, nn.Linear(d, 28 * 28), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        _require_z(z, self.z_dim)
        return self.net(z).view(-1, 1, 28, 28)  # (N, 784) => (N, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """The seeds' fully connected discriminator: images (N, 1, 28, 28) => logits (N,) (no sigmoid).

    Lesson: 03_gan.ipynb, "3. Spot the bugs: the articles' PyTorch MLP GAN".
    """

    def __init__(self, hidden=(1024, 512, 256), dropout: float = 0.3, spectral_norm: bool = False):
        super().__init__()
        layers, d = [], 28 * 28
        for h in hidden:
            layers += [_maybe_sn(nn.Linear(d, h), spectral_norm), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            d = h
        self.net = nn.Sequential(*layers, _maybe_sn(nn.Linear(d, 1), spectral_norm))

    def forward(self, x: Tensor) -> Tensor:
        _require_x(x)
        return self.net(x.flatten(1)).squeeze(1)  # (N, 784) => (N, 1) => (N,)


class DCGANGenerator(nn.Module):
    """Convolutional generator: z (N, z_dim) => (N, 2w, 7, 7) => (N, w, 14, 14) => (N, 1, 28, 28) in [-1, 1].

    Transposed convolutions upsample by 2; batch norm keeps the activations' scale steady while D moves.

    Lesson: 03_gan.ipynb, "4. DCGAN: convolutions in both players".
    """

    def __init__(self, z_dim: int = 64, width: int = 32):
        super().__init__()
        self.z_dim, self.width = z_dim, width
        self.project = nn.Sequential(nn.Linear(z_dim, 2 * width * 7 * 7, bias=False),
                                     nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),  # 7x7 => 14x14
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),  # 14x14 => 28x28
            nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        _require_z(z, self.z_dim)
        h = self.project(z).view(-1, 2 * self.width, 7, 7)  # (N, z_dim) => (N, 2w, 7, 7)
        return self.up(h)  # (N, 2w, 7, 7) => (N, 1, 28, 28)


class DCGANDiscriminator(nn.Module):
    """Convolutional discriminator (or WGAN critic): (N, 1, 28, 28) => (N, w, 14, 14) => (N, 2w, 7, 7) => (N,).

    No batch norm, so each sample's score depends on that sample only (the gradient penalty needs this);
    `spectral_norm=True` divides every weight by its largest singular value, bounding how fast D can change.

    Lesson: 03_gan.ipynb, "4. DCGAN: convolutions in both players".
    """

    def __init__(self, width: int = 32, spectral_norm: bool = False):
        super().__init__()
        self.net = nn.Sequential(
            _maybe_sn(nn.Conv2d(1, width, 4, stride=2, padding=1), spectral_norm),  # 28x28 => 14x14
            nn.LeakyReLU(0.2),
            _maybe_sn(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), spectral_norm),  # 14x14 => 7x7
            nn.LeakyReLU(0.2),
            nn.Flatten(),  # (N, 2w, 7, 7) => (N, 2w * 49)
            _maybe_sn(nn.Linear(2 * width * 7 * 7, 1), spectral_norm))

    def forward(self, x: Tensor) -> Tensor:
        _require_x(x)
        return self.net(x).squeeze(1)  # (N, 1) => (N,)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters.

    Lesson: 03_gan.ipynb, "3. Spot the bugs: the articles' PyTorch MLP GAN".
    """
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def make_models(kind: str, z_dim: int | None = None, width: float | None = None,
                spectral_norm: bool | None = None):
    """(G, D) for a kind of GAN: "mlp", "dcgan", "dcgan-sn" (spectral norm in D) or "wgan-gp".

    width: DCGAN channel width (default 32); for "mlp" a multiplier of the seeds' hidden sizes (default 1).
    spectral_norm: spectral norm in the DCGAN discriminator; None means "only for kind 'dcgan-sn'".

    Lesson: 03_gan.ipynb, "7. Two fixes: spectral normalisation and the gradient penalty".
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "mlp":
        scale = 1.0 if width is None else float(width)
        hidden = tuple(max(8, int(h * scale)) for h in (256, 512, 1024))
        return (MLPGenerator(z_dim or 100, hidden=hidden),
                MLPDiscriminator(hidden=tuple(reversed(hidden))))
    width = width or 32
    sn = (kind == "dcgan-sn") if spectral_norm is None else bool(spectral_norm)
    return DCGANGenerator(z_dim or 64, width), DCGANDiscriminator(width, spectral_norm=sn)


# ---------------------------------------------------------------- sampling and training

@torch.no_grad()
def sample(G: nn.Module, n: int, seed: int = 0, batch_size: int = 500) -> Tensor:
    """n generated images (n, 1, 28, 28) in [0, 1] on the CPU, from noise fixed by `seed`.

    G runs in eval mode (batch norm uses its running averages), so an image does not depend on the
    other images in its batch; G's mode is restored afterwards.

    Lesson: 03_gan.ipynb, "5. Measuring generated images with the judge".
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not hasattr(G, "z_dim"):
        raise TypeError(f"G ({type(G).__name__}) has no z_dim attribute; use a generator from textimg_lessons.gan.")
    device = next(G.parameters()).device
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    was_training = G.training
    G.eval()
    try:
        out = torch.cat([G(z[i:i + batch_size].to(device)).cpu() for i in range(0, n, batch_size)])
    finally:
        G.train(was_training)
    return ((out + 1) / 2).clamp(0, 1)  # tanh's [-1, 1] => [0, 1]


def _train_images(data) -> Tensor:
    X = getattr(data, "X_train", data)
    if not isinstance(X, Tensor):
        raise TypeError(f"data must be an ImageData (from load_fashion_mnist()) or a tensor (N, 1, 28, 28), "
                        f"got {type(data).__name__}.")
    if X.dim() != 4 or tuple(X.shape[1:]) != (1, 28, 28):
        raise ValueError(f"training images must be (N, 1, 28, 28), got {tuple(X.shape)}.")
    if not X.is_floating_point() or float(X.min()) < 0 or float(X.max()) > 1:
        raise ValueError("training images must be floats in [0, 1], as the course's loaders return them.")
    return X



def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge discriminator loss mean(relu(1 - l_real)) + mean(relu(1 + l_fake)).

    D stops being pushed on a real image once its logit is above 1 and on a fake once it is below -1, so a
    discriminator that is already right spends its updates on the samples it still gets wrong.

    Lesson: 03_gan.ipynb, "The DCGAN's recipe".
    """
    real_logits = _require_logits("real_logits", real_logits)
    fake_logits = _require_logits("fake_logits", fake_logits)
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_g_loss(fake_logits: Tensor) -> Tensor:
    """Generator loss of the hinge GAN: -mean(l_fake).

    Lesson: 03_gan.ipynb, "The DCGAN's recipe".
    """
    return -_require_logits("fake_logits", fake_logits).mean()


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema_w <- decay * ema_w + (1 - decay) * w for every parameter (buffers are left alone).

    The average over the last ~1 / (1 - decay) steps smooths out the generator's oscillation around the
    moving target that D sets; each single step's G is noisier than the average.

    Lesson: 03_gan.ipynb, "The DCGAN's recipe".
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay!r}")
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p.detach(), 1.0 - decay)


@torch.no_grad()
def recompute_batch_norm(G: nn.Module, num_batches: int = 20, batch_size: int = 256, seed: int = 0) -> nn.Module:
    """Re-estimate the running mean and variance of G's batch-norm layers for G's current weights.

    An averaged (EMA) generator has weights no single training step had, so the running statistics
    collected during training do not match them; this runs G in training mode on fresh noise (from a local
    generator: the global random state is untouched) and keeps the plain average over all batches.

    Lesson: 03_gan.ipynb, "The DCGAN's recipe".
    """
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return G
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    momenta = [m.momentum for m in bns]
    was_training = G.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over every batch below
    G.train()
    try:
        for _ in range(num_batches):
            G(torch.randn(batch_size, G.z_dim, generator=gen).to(device))
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        G.train(was_training)
    return G


def diff_augment(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Differentiable augmentation: a random shift of up to 1/8 of the size and a random cutout square.

    Applied to real *and* generated images before D, so D never sees an un-augmented image and G is not
    pushed to draw shifted or cut-out images; gradients flow through both operations into G.
    Images are in [-1, 1]; the shift fills with -1 (background), the cutout with 0.

    Lesson: 03_gan.ipynb, "The DCGAN's recipe".
    """
    n, c, h, w = x.shape
    s = max(1, h // 8)
    dev = x.device
    dy = torch.randint(-s, s + 1, (n, 1, 1), generator=generator).to(dev)
    dx = torch.randint(-s, s + 1, (n, 1, 1), generator=generator).to(dev)
    padded = F.pad(x, (s, s, s, s), value=-1.0)                              # (N, C, H + 2s, W + 2s)
    rows = (torch.arange(h, device=dev).view(1, h, 1) + s - dy).expand(n, h, w)
    cols = (torch.arange(w, device=dev).view(1, 1, w) + s - dx).expand(n, h, w)
    idx = torch.arange(n, device=dev).view(n, 1, 1).expand(n, h, w)
    out = padded.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2)     # (N, H, W, C) => (N, C, H, W)
    ch, cw = h // 2, w // 2
    cy = torch.randint(0, h, (n, 1, 1), generator=generator).to(dev)
    cx = torch.randint(0, w, (n, 1, 1), generator=generator).to(dev)
    yy = torch.arange(h, device=dev).view(1, h, 1)
    xx = torch.arange(w, device=dev).view(1, 1, w)
    keep = ~(((yy - cy).abs() <= ch // 2) & ((xx - cx).abs() <= cw // 2))   # (N, H, W)
    return out * keep.unsqueeze(1).to(out.dtype)


def train_gan(data, kind: str = "dcgan", num_epochs: int = 5, batch_size: int = 64, lr: float = 2e-4,
              betas=(0.5, 0.999), z_dim: int | None = None, width: int | None = None,
              g_loss: str = "nonsaturating", g_lr: float | None = None, d_lr: float | None = None,
              n_critic: int = 5, gp_weight: float = 10.0, num_grid: int = 32, seed: int = 0, device=None,
              callback: Callable | None = None, G: nn.Module | None = None, D: nn.Module | None = None,
              desc: str | None = None, loss: str = "bce", ema_decay: float | None = None,
              augment: bool = False, spectral_norm: bool | None = None):
    """Train a GAN on images in [0, 1]; return (G, D, history).

    kind: "mlp" (the seeds' MLP GAN, fixed), "dcgan", "dcgan-sn" (spectral norm in D) or "wgan-gp"
    (DCGAN networks, Wasserstein loss with gradient penalty, the generator updated every `n_critic` batches).
    g_loss: "nonsaturating" (-log D(G(z)), the default) or "minimax" (log(1 - D(G(z)))).
    loss: "bce" (the binary cross-entropy game, default) or "hinge" (hinge_d_loss / hinge_g_loss); not for WGAN-GP.
    ema_decay: keep an exponential moving average of G's weights (e.g. 0.999) and return *it* as G, its batch-norm
    statistics recomputed (recompute_batch_norm); the grids are drawn from it too. The generator that took the
    optimiser's steps is history["trained_generator"] (and the `G` passed in, trained in place, if one was).
    augment: apply diff_augment to real and generated images before every D call.
    spectral_norm: spectral norm in the DCGAN discriminator for any kind but "mlp" (None: only for "dcgan-sn").
    g_lr, d_lr: learning rates of G and D when they differ from `lr` (d_lr=0 freezes D: G then collapses
    onto whatever the fixed D likes best, the chapter's mode-collapse experiment).
    history: per-epoch means "d_loss", "g_loss", "d_real", "d_fake" (mean D(x), D(G(z)) probabilities, or
    critic scores for WGAN-GP); per-update "d_loss_step", "g_loss_step"; "grids": num_grid images in [0, 1]
    from the same noise after every epoch; "seconds" of training. `callback(epoch, G, history)` runs after
    each epoch (e.g. to show the grid).

    The loop is written out by hand on purpose: alternating the discriminator and generator updates is
    chapter 3's lesson, and it does not fit train.run_loop's one-loss-one-optimiser step.

    Lesson: 03_gan.ipynb, "3. Spot the bugs: the articles' PyTorch MLP GAN".
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if loss not in ("bce", "hinge"):
        raise ValueError(f"loss must be 'bce' or 'hinge', got {loss!r}")
    if loss == "hinge" and kind == "wgan-gp":
        raise ValueError("WGAN-GP has its own loss; loss='hinge' is for the other kinds.")
    if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be None or in [0, 1), got {ema_decay!r}")
    if g_loss not in ("nonsaturating", "minimax"):
        raise ValueError(f"g_loss must be 'nonsaturating' or 'minimax', got {g_loss!r}")
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    X = _train_images(data)
    if batch_size < 2 or batch_size > len(X):
        raise ValueError(f"batch_size must be between 2 (batch norm needs two samples) and the number of "
                         f"training images ({len(X)}), got {batch_size}.")
    seed_everything(seed)
    device = device or get_device()
    if G is None or D is None:
        G0, D0 = make_models(kind, z_dim, width, spectral_norm)
        G, D = G or G0, D or D0
    G.to(device).train()
    D.to(device).train()
    wgan = kind == "wgan-gp"
    if wgan:
        betas = (0.0, 0.9)  # the WGAN-GP paper's Adam settings: momentum fights the critic's moving target
    opt_g = torch.optim.Adam(G.parameters(), lr=lr if g_lr is None else g_lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr if d_lr is None else d_lr, betas=betas)
    gen_loss = g_loss_nonsaturating if g_loss == "nonsaturating" else g_loss_minimax
    if loss == "hinge":
        gen_loss = hinge_g_loss
    G_ema = None
    if ema_decay is not None:
        G_ema = copy.deepcopy(G).requires_grad_(False)
    aug_gen = torch.Generator().manual_seed(seed + 1)  # a local generator: augment=True leaves z's draws alone
    D_in = (lambda x: D(diff_augment(x, aug_gen))) if augment else D
    fixed_seed = 1234
    history = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": [], "d_loss_step": [], "g_loss_step": [],
               "grids": [], "kind": kind}
    order_gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = len(X) // batch_size  # drop the last partial batch (batch norm dislikes tiny ones)
    start = time.perf_counter()
    bar = tqdm(range(num_epochs), desc=desc or f"{kind} GAN")
    step = 0
    for epoch in bar:
        sums = {"d_loss": 0.0, "g_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
        n_d, n_g = 0, 0
        perm = torch.randperm(len(X), generator=order_gen)
        for b in range(steps_per_epoch):
            real = X[perm[b * batch_size:(b + 1) * batch_size]].to(device) * 2 - 1  # [0, 1] => [-1, 1]
            z = torch.randn(len(real), G.z_dim, device=device)
            fake = G(z)
            # --- discriminator step: fakes are detached so this step does not touch G
            real_logits, fake_logits = D_in(real), D_in(fake.detach())
            if wgan:
                loss_d = wgan_critic_loss(real_logits, fake_logits) + gp_weight * gradient_penalty(D, real, fake)
                d_r, d_f = real_logits.mean().item(), fake_logits.mean().item()
            else:
                loss_d = (hinge_d_loss if loss == "hinge" else d_loss)(real_logits, fake_logits)
                d_r, d_f = torch.sigmoid(real_logits).mean().item(), torch.sigmoid(fake_logits).mean().item()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            sums["d_loss"] += loss_d.item()
            sums["d_real"] += d_r
            sums["d_fake"] += d_f
            n_d += 1
            history["d_loss_step"].append(loss_d.item())
            step += 1
            if wgan and step % n_critic != 0:
                continue
            # --- generator step: gradients flow through D into G; only G's optimiser steps
            fake_logits = D_in(fake)
            loss_g = wgan_generator_loss(fake_logits) if wgan else gen_loss(fake_logits)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            if G_ema is not None:  # warm-up: early on average over the n_g steps so far, not the random start
                ema_update(G_ema, G, min(ema_decay, (1 + len(history["g_loss_step"])) / (10 + len(history["g_loss_step"]))))
            sums["g_loss"] += loss_g.item()
            n_g += 1
            history["g_loss_step"].append(loss_g.item())
        for k in ("d_loss", "d_real", "d_fake"):
            history[k].append(sums[k] / max(n_d, 1))
        history["g_loss"].append(sums["g_loss"] / max(n_g, 1))
        if G_ema is not None:
            recompute_batch_norm(G_ema)
        history["grids"].append(sample(G if G_ema is None else G_ema, num_grid, seed=fixed_seed))
        bar.set_postfix(d_loss=f"{history['d_loss'][-1]:.3f}", g_loss=f"{history['g_loss'][-1]:.3f}")
        if not all(math.isfinite(history[k][-1]) for k in ("d_loss", "g_loss")):
            print(f"[gan] epoch {epoch + 1}: a loss is not finite; training diverged, stopping early.")
            break
        if callback is not None:
            callback(epoch, G, history)
    history["seconds"] = time.perf_counter() - start
    if G_ema is not None:
        G.eval()
        history["trained_generator"] = G  # what the average stands in for, to compare the two
        G = G_ema.requires_grad_(True)  # trainable again, like the G it stands for (e.g. to keep training it)
    G.eval()
    D.eval()
    from .histories import GANHistory
    return G, D, GANHistory(**history)


# ---------------------------------------------------------------- the chapter's recipe, shared with the benchmark

# The chapter's main runs (the notebook and the benchmark read it). Fast mode also shrinks the networks.
# dcgan: the DCGAN's own recipe, found by chapter 3's screening (section 8) and confirmed on the full data:
# the DCGAN networks with spectral norm in D, the hinge loss, Adam lr 5e-4 with betas (0, 0.9), and samples from
# an exponential moving average of G. The MLP GAN (the articles' model) keeps lr and betas, the targets' baseline.
RECIPE = Recipe(num_epochs=FullFast(6, 1), batch_size=FullFast(64, 32), lr=2e-4, wgan_lr=1e-4,
                width=FullFast(None, {"mlp": 0.125, "conv": 8}),
                dcgan={"spectral_norm": True, "loss": "hinge", "lr": 5e-4, "betas": (0.0, 0.9), "ema_decay": 0.999})


def recipe(kind: str) -> dict:
    """train_gan settings of RECIPE for one kind of GAN (WGAN-GP trains with the smaller wgan_lr).

    recipe("dcgan") is the chapter's DCGAN recipe: the DCGAN networks with spectral norm in D, the hinge loss, Adam lr 5e-4 with betas (0, 0.9) and an EMA of G's weights for sampling.
    recipe("dcgan-sn") and the others keep the shared lr 2e-4 and betas (0.5, 0.999).

    Lesson: 03_gan.ipynb, "Training the MLP GAN".
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    base = {"kind": kind, "num_epochs": RECIPE["num_epochs"], "batch_size": RECIPE["batch_size"],
            "lr": RECIPE["wgan_lr"] if kind == "wgan-gp" else RECIPE["lr"]}
    if kind == "dcgan":
        base.update(RECIPE["dcgan"])
    if RECIPE["width"] is not None:
        base["width"] = RECIPE["width"]["mlp" if kind == "mlp" else "conv"]
    return base


def train_recipe(data, kind: str = "dcgan", **overrides):
    """Train with `recipe(kind)` (any setting can be overridden); return (G, D, history).

    Lesson: 03_gan.ipynb, "Training the MLP GAN".
    """
    return train_gan(data, **{**recipe(kind), **overrides})


def evaluate(G: nn.Module, judge: nn.Module, real_images: Tensor, n: int | None = None, seed: int = 0) -> dict:
    """Frechet distance to `real_images`, class histogram/coverage and confidence of n samples of G.

    Lesson: 03_gan.ipynb, "5. Measuring generated images with the judge".
    """
    from .metrics import class_coverage, class_histogram, judge_confidence, judge_frechet_distance
    n = n or len(real_images)
    fake = sample(G, n, seed=seed)
    hist = class_histogram(judge, fake)
    return {"frechet": judge_frechet_distance(judge, real_images, fake), "histogram": hist,
            "coverage": class_coverage(hist), "min_share": float(hist.min()),
            "confidence": judge_confidence(judge, fake)}


# ---------------------------------------------------------------- what spectral norm bounds, measured

def conv_operator_norm(conv: nn.Conv2d, input_shape, num_iters: int = 200, block: int = 8, seed: int = 0) -> float:
    """Largest singular value of the linear map x -> conv(x) (bias left out) on inputs of shape (C, H, W).

    Spectral normalisation divides a convolution's kernel, reshaped to (out_channels, in_channels * kh * kw),
    by that matrix's largest singular value. The convolution applies the matrix at every position, and with
    overlapping windows (a 4x4 kernel at stride 2) one input pixel feeds several of them, so the operator's own
    norm can exceed 1: it is at most sqrt(m) times the reshaped kernel's, m = the most windows one pixel is in.
    Power iteration on A^T A measures it, with A = conv2d and its adjoint A^T = conv_transpose2d, both with the
    layer's stride, padding and dilation, on the input shape the layer sees. It iterates a block of vectors
    (kept orthonormal) rather than one: a convolution's top singular values are often close together, and one
    vector would need thousands of steps to tell them apart.

    Lesson: 03_gan.ipynb, "7. Two fixes: spectral normalisation and the gradient penalty".
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}.")
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise ValueError("conv_operator_norm needs numeric zero padding (padding=1, not 'same' or "
                         f"padding_mode={conv.padding_mode!r}).")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[0] != conv.in_channels:
        raise ValueError(f"input_shape must be (C, H, W) with C = {conv.in_channels} (the layer's in_channels), "
                         f"got {tuple(input_shape)}.")
    if not isinstance(num_iters, int) or num_iters < 1 or not isinstance(block, int) or block < 1:
        raise ValueError(f"num_iters and block must be positive ints, got {num_iters!r} and {block!r}")
    was_training = conv.training
    conv.eval()  # a spectral-norm layer in training mode would run a power-iteration step on every access
    try:
        with torch.no_grad():
            w = conv.weight.detach().to("cpu", torch.float64)
    finally:
        conv.train(was_training)
    args = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
    n = math.prod(shape)
    x = torch.randn(min(block, n), *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out_hw = F.conv2d(x, w, **args).shape[2:]
    # conv_transpose2d can return several sizes; output_padding picks the input's, making it the exact adjoint
    out_pad = tuple(shape[1 + i] - ((out_hw[i] - 1) * conv.stride[i] - 2 * conv.padding[i]
                                    + conv.dilation[i] * (conv.kernel_size[i] - 1) + 1) for i in range(2))
    with torch.no_grad():
        for _ in range(num_iters):
            q, _ = torch.linalg.qr(x.flatten(1).T)  # (n, block) with orthonormal columns
            x = q.T.reshape(-1, *shape)
            x = F.conv_transpose2d(F.conv2d(x, w, **args), w, output_padding=out_pad, **args)  # A^T A x
        q, _ = torch.linalg.qr(x.flatten(1).T)
        ax = F.conv2d(q.T.reshape(-1, *shape), w, **args).flatten(1)  # A on the block's orthonormal basis
        return float(torch.linalg.matrix_norm(ax, ord=2))  # the largest singular value A has on that subspace

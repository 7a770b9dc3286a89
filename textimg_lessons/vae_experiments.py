"""What chapter 4 does with a trained VAE: denoising, inpainting, image quality, and the conv-vs-MLP comparison.

vae.py holds the model, its loss (the ELBO) and its training; this module uses them:
- `reconstruct`, `flip_pixels`, `denoise`, `inpaint`: the applications (a VAE as a prior over images);
  `flip_noise_nll` is the likelihood of a noisy image that `denoise` maximises.
- `reconstruction_quality`: PSNR and SSIM of reconstructions, with torchmetrics.
- `compare_conv_mlp`: the chapter's comparison, which `textimg-lessons bench 04_vae` reports.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import pick
from .histories import VAERun
from .vae import VAE, binarize, importance_weighted_nll, require_images, train_vae


@torch.no_grad()
def reconstruct(vae: VAE, x: torch.Tensor) -> torch.Tensor:
    """Pixel probabilities of the decoder at the posterior mean: sigmoid(decode(mu(x))): (N, 1, 28, 28).

    Lesson: 04_vae.ipynb, "An application: denoising and inpainting".
    """
    mu, _ = vae.encode(x.to(next(vae.parameters()).device))
    return torch.sigmoid(vae.decode(mu)).cpu()


def flip_pixels(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Salt-and-pepper noise on binary images: flip each pixel with probability p.

    Lesson: 04_vae.ipynb, "An application: denoising and inpainting".
    """
    require_images("x", x, binary=True)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p}.")
    flips = (torch.rand(x.shape, generator=generator) < p).to(x.dtype)
    return (x - flips).abs()  # 0 -> 1 and 1 -> 0 where flips == 1


def flip_noise_nll(x_logits: torch.Tensor, x_noisy: torch.Tensor, p: float) -> torch.Tensor:
    """-log p(x_noisy | z) in nats per image (N,) when each clean pixel is Bernoulli(sigmoid(logit)) and the
    observation flips it with probability p (the noise of `flip_pixels`).

    A pixel is observed as 1 with probability (1 - p) s + p (1 - s), s = sigmoid(logit); computed in log space
    (logaddexp of log-sigmoids), so confident logits stay finite. p = 0 gives `vae.bernoulli_nll`.

    Lesson: 04_vae.ipynb, "Denoising: ask the decoder, not the encoder".
    """
    if not 0 <= p < 0.5:
        raise ValueError(f"p must be in [0, 0.5) (at 0.5 the noisy image says nothing about the clean one), got {p}.")
    if x_logits.shape != x_noisy.shape:
        raise ValueError(f"x_logits {tuple(x_logits.shape)} and x_noisy {tuple(x_noisy.shape)} must have the same shape.")
    log_keep = torch.tensor(1.0 - p, dtype=x_logits.dtype, device=x_logits.device).log()
    log_flip = torch.tensor(p, dtype=x_logits.dtype, device=x_logits.device).log()   # -inf when p = 0
    log_s1, log_s0 = F.logsigmoid(x_logits), F.logsigmoid(-x_logits)                 # log s, log (1 - s)
    log_obs1 = torch.logaddexp(log_keep + log_s1, log_flip + log_s0)                # log P(observed 1)
    log_obs0 = torch.logaddexp(log_keep + log_s0, log_flip + log_s1)                # log P(observed 0)
    return -(x_noisy * log_obs1 + (1 - x_noisy) * log_obs0).flatten(1).sum(1)


def denoise(vae: VAE, x_noisy: torch.Tensor, p: float, steps: int = 50, lr: float = 0.1) -> torch.Tensor:
    """Denoise binary images whose pixels were flipped with probability p: the MAP latent code, decoded.

    Finds, for each image, the z that best explains the *noisy* pixels under the flip noise model plus the prior:
    minimise flip_noise_nll(decode(z), x_noisy, p) + |z|^2 / 2 with Adam (`steps` steps of size `lr`, from z = 0),
    then returns the decoder's clean-pixel probabilities sigmoid(decode(z)): (N, 1, 28, 28). The encoder is not
    used: it was trained on clean images only. Only z is optimised; the VAE is unchanged (and used in eval mode).

    Lesson: 04_vae.ipynb, "Denoising: ask the decoder, not the encoder".
    """
    require_images("x_noisy", x_noisy, binary=True)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    device = next(vae.parameters()).device
    was_training = vae.training
    vae.eval()
    try:
        x_noisy = x_noisy.to(device)
        z = torch.zeros(len(x_noisy), vae.latent_dim, device=device, requires_grad=True)
        optimizer = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            loss = (flip_noise_nll(vae.decode(z), x_noisy, p) + 0.5 * z.pow(2).sum(1)).sum()
            z.grad, = torch.autograd.grad(loss, z)     # gradients for z only, none left on the VAE's weights
            optimizer.step()
        with torch.no_grad():
            return torch.sigmoid(vae.decode(z)).cpu()
    finally:
        vae.train(was_training)


@torch.no_grad()
def inpaint(vae: VAE, x: torch.Tensor, known: torch.Tensor, steps: int = 20) -> torch.Tensor:
    """Fill the unknown pixels of x (known == 0) by iterating: reconstruct, then restore the known pixels.

    Starts the missing region at 0.5 (no information); each step projects the image towards what the VAE
    can explain while keeping what we observed. Returns pixel probabilities (N, 1, 28, 28).

    Lesson: 04_vae.ipynb, "An application: denoising and inpainting".
    """
    if known.shape != x.shape:
        raise ValueError(f"known must have the shape of x {tuple(x.shape)}, got {tuple(known.shape)}.")
    known = known.to(x.dtype)
    current = x * known + 0.5 * (1 - known)
    for _ in range(steps):
        current = x * known + reconstruct(vae, current) * (1 - known)
    return current


def reconstruction_quality(pred: torch.Tensor, target: torch.Tensor) -> dict:
    """PSNR (dB) and SSIM of pred vs target images in [0, 1], with torchmetrics (data_range 1).

    Lesson: 04_vae.ipynb, "An application: denoising and inpainting".
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
    require_images("pred", pred, binary=False)
    require_images("target", target, binary=False)
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape.")
    pred, target = pred.float().clamp(0, 1), target.float()
    psnr = peak_signal_noise_ratio(pred, target, data_range=1.0)
    ssim = structural_similarity_index_measure(pred, target, data_range=1.0)
    return {"psnr": float(psnr), "ssim": float(ssim)}


IWAE_K = 100
IWAE_IMAGES = 2000   # the IWAE estimate uses the first 2,000 test images (k = 100 decodes each)


def compare_conv_mlp(data, num_epochs: int | None = None, seed: int = 0) -> dict:
    """The chapter's comparison: conv VAE vs the MLP baseline, same data, latent size, optimiser and epochs.

    Returns {"conv": VAERun, "mlp": VAERun}: the model, history, test negative ELBO, IWAE NLL and
    reconstruction PSNR/SSIM (decoded posterior mean vs the binarised test image) of each.

    Lesson: 04_vae.ipynb, "3. Training the VAE and measuring it in nats".
    """
    X_test = binarize(data.X_test)
    X_iw = X_test[:pick(IWAE_IMAGES, 200)]
    k = pick(IWAE_K, 10)
    out = {}
    for kind in ("conv", "mlp"):
        vae, history = train_vae(data, kind=kind, num_epochs=num_epochs, seed=seed)
        quality = reconstruction_quality(reconstruct(vae, X_test), X_test)
        out[kind] = VAERun(vae=vae, history=history, test_nelbo=history["test_nelbo"][-1],
                           iwae_nll=importance_weighted_nll(vae, X_iw, k=k), iwae_k=k, iwae_images=len(X_iw),
                           psnr=quality["psnr"], ssim=quality["ssim"], train_seconds=history["seconds"],
                           train_cpu_seconds=history["cpu_seconds"], params=sum(p.numel() for p in vae.parameters()))
    return out

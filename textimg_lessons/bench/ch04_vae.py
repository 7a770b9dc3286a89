"""Chapter 4's benchmark: conv VAE vs MLP VAE on binarised Fashion-MNIST (`vae_experiments.compare_conv_mlp`),
and the conv VAE's denoising of 20%-flipped test images (`vae_experiments.denoise`, the notebook's setting)."""
from __future__ import annotations

import time

from .report import BenchRow


def bench() -> list:
    import torch

    from ..data import load_fashion_mnist
    from ..config import pick
    from ..vae import binarize
    from ..vae_experiments import compare_conv_mlp, denoise, flip_pixels, reconstruction_quality
    data = load_fashion_mnist(verbose=False)
    ds = "Fashion-MNIST (binarised > 0.5)" + (" [fast subset]" if "fast" in data.source else "")
    start = time.perf_counter()
    res = compare_conv_mlp(data)
    wall = time.perf_counter() - start
    rows = []
    for kind in ("conv", "mlp"):
        r = res[kind]
        sec = r["train_seconds"]
        rows += [
            BenchRow(f"{kind} VAE test negative ELBO (nats/image)", r["test_nelbo"], ds, wall_seconds=sec),
            BenchRow(f"{kind} VAE IWAE NLL k={r['iwae_k']} (nats/image, first {r['iwae_images']} test)",
                     r["iwae_nll"], ds, wall_seconds=sec),
            BenchRow(f"{kind} VAE reconstruction PSNR (dB)", r["psnr"], ds, wall_seconds=sec),
            BenchRow(f"{kind} VAE reconstruction SSIM", r["ssim"], ds, wall_seconds=sec),
        ]
    conv, mlp = res["conv"], res["mlp"]
    threads = torch.get_num_threads()
    rows += [
        BenchRow("conv VAE train wall time (s)", conv["train_seconds"], ds, "<= 600",
                 conv["train_seconds"] <= 600, conv["train_seconds"]),
        BenchRow("mlp VAE train wall time (s)", mlp["train_seconds"], ds, wall_seconds=mlp["train_seconds"]),
        BenchRow(f"conv VAE train CPU time (s, {threads} torch threads)", conv["train_cpu_seconds"], ds,
                 wall_seconds=conv["train_seconds"]),
        BenchRow(f"mlp VAE train CPU time (s, {threads} torch threads)", mlp["train_cpu_seconds"], ds,
                 wall_seconds=mlp["train_seconds"]),
        BenchRow("conv - mlp test negative ELBO (nats/image, same epochs)", conv["test_nelbo"] - mlp["test_nelbo"],
                 ds, "<= 0", conv["test_nelbo"] <= mlp["test_nelbo"], wall),
    ]
    # denoising as in the notebook: the first 1,000 test images, 20% of the pixels flipped, the MAP code (p = 0.2)
    x_clean = binarize(data.X_test[:pick(1000, 200)])
    x_noisy = flip_pixels(x_clean, 0.20, torch.Generator().manual_seed(0))
    start = time.perf_counter()
    x_map = denoise(conv["vae"], x_noisy, p=0.20)
    den_sec = time.perf_counter() - start
    ssim_noisy = reconstruction_quality(x_noisy, x_clean)["ssim"]
    ssim_map = reconstruction_quality(x_map, x_clean)["ssim"]
    rows += [
        BenchRow("SSIM of the 20%-flipped test images (before denoising)", ssim_noisy, ds),
        BenchRow("conv VAE denoised SSIM (MAP code, flip noise p = 0.2)", ssim_map, ds,
                 f"> {ssim_noisy:.3f} (noisy) + 0.25", ssim_map > ssim_noisy + 0.25, den_sec),
    ]
    return rows

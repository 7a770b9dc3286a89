"""Chapter 4's benchmark: conv VAE vs MLP VAE on binarised Fashion-MNIST (`vae_experiments.compare_conv_mlp`)."""
from __future__ import annotations

import time

from .report import BenchRow


def bench() -> list:
    import torch

    from ..data import load_fashion_mnist
    from ..vae_experiments import compare_conv_mlp
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
    return rows

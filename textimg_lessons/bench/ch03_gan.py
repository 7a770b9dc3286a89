"""Chapter 3's benchmark: the MLP GAN (the articles' recipe) vs the DCGAN (its own recipe: spectral norm in D, hinge
loss, Adam 5e-4 with betas (0, 0.9), samples from an EMA of G), as the notebook trains them, on Fashion-MNIST."""
from __future__ import annotations

from .report import BenchRow


def bench() -> list:
    """Frechet distances, their ratio, class coverage and training time."""
    from ..judges import load_judge
    from ..data import load_fashion_mnist
    from ..gan import evaluate, train_recipe
    data = load_fashion_mnist()
    judge = load_judge("fashion_mnist")
    results = {}
    for kind in ("mlp", "dcgan"):
        G, _, history = train_recipe(data, kind)
        results[kind] = {**evaluate(G, judge, data.X_test), "seconds": history["seconds"]}
    mlp, dc = results["mlp"], results["dcgan"]
    ratio = dc["frechet"] / max(mlp["frechet"], 1e-12)
    ds, sec = "fashion_mnist", dc["seconds"]
    return [
        BenchRow("mlp_gan_frechet", mlp["frechet"], ds, wall_seconds=mlp["seconds"]),
        BenchRow("dcgan_frechet", dc["frechet"], ds, wall_seconds=sec),
        BenchRow("dcgan_over_mlp_frechet_ratio", ratio, ds, "<= 0.5", ratio <= 0.5, sec + mlp["seconds"]),
        BenchRow("dcgan_class_coverage", dc["coverage"], ds, ">= 10", dc["coverage"] >= 10, sec),
        BenchRow("dcgan_min_class_share", dc["min_share"], ds, ">= 0.05", dc["min_share"] >= 0.05, sec),
        BenchRow("dcgan_judge_confidence", dc["confidence"], ds, wall_seconds=sec),
        BenchRow("dcgan_train_seconds", sec, ds, "<= 600", sec <= 600, sec),
    ]

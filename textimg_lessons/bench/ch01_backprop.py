"""Chapter 1's benchmark: the notebook's manual MLP on MNIST, test accuracy and training time."""
from __future__ import annotations

from .report import BenchRow


def bench() -> list:
    """The notebook's MLP recipe (backprop.train_manual_mlp) on load_mnist()."""
    from ..backprop import train_manual_mlp
    from ..config import pick
    from ..data import load_mnist
    data = load_mnist()
    net, history = train_manual_mlp(data)
    acc, seconds = history["test_acc"][-1], history["seconds"]
    online_full = "online" in data.source and "full" in data.source
    target = pick(0.97 if online_full else 0.92, 0.75)
    return [
        BenchRow("test_accuracy", acc, data.source, f">= {target}", acc >= target, seconds),
        BenchRow("train_seconds", seconds, data.source, pick("< 180", None), pick(seconds < 180, None), seconds),
    ]

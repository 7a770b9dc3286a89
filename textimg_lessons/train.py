"""A small, readable training loop with a progress bar (chapter 2 onwards; chapter 1 writes its own by hand)."""
from __future__ import annotations

import time
from typing import Callable

import torch
from tqdm.auto import tqdm

from .config import get_device


@torch.no_grad()
def accuracy(net: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             device=None) -> float:
    """Share of X that `net` classifies as y (argmax of its outputs), evaluated in batches."""
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}; they must match.")
    if len(X) == 0:
        raise ValueError("accuracy of an empty set is undefined; pass at least one example.")
    device = device or next(net.parameters()).device
    was_training = net.training
    net.eval()
    correct = 0
    for i in range(0, len(X), batch_size):
        out = net(X[i:i + batch_size].to(device))
        correct += (out.argmax(1).cpu() == y[i:i + batch_size]).sum().item()
    net.train(was_training)
    return correct / len(X)


@torch.no_grad()
def predict(net: torch.nn.Module, X: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Class predictions (argmax) of `net` for X, on the CPU."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    preds = [net(X[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(X), batch_size)]
    net.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def fit(net: torch.nn.Module, train_loader, num_epochs: int, lr: float = 1e-3,
        loss_fn: Callable = torch.nn.functional.cross_entropy, optimizer: torch.optim.Optimizer | None = None,
        eval_fn: Callable[[torch.nn.Module], dict] | None = None, device=None, scheduler=None,
        desc: str = "training") -> dict:
    """Train `net` with mini-batches from `train_loader`; return a history dict.

    history["loss"] holds the mean training loss per epoch; every key returned by `eval_fn(net)` (called
    after each epoch) is appended too, and history["seconds"] is the wall time of training.
    """
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be at least 1, got {num_epochs}")
    device = device or get_device()
    net.to(device)
    optimizer = optimizer or torch.optim.Adam(net.parameters(), lr=lr)
    history = {"loss": []}
    start = time.perf_counter()
    bar = tqdm(range(num_epochs), desc=desc)
    for _ in bar:
        net.train()
        total, count = 0.0, 0
        for X, y in train_loader:
            X, y = X.to(device), y.to(device)
            loss = loss_fn(net(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(X)
            count += len(X)
        if scheduler is not None:
            scheduler.step()
        history["loss"].append(total / max(count, 1))
        if eval_fn is not None:
            for k, v in eval_fn(net).items():
                history.setdefault(k, []).append(v)
        bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items()})
    history["seconds"] = time.perf_counter() - start
    return history

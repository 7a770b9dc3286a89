"""The course's one training loop, with hooks, and the helpers around it (chapter 2 onwards).

`run_loop` is the loop every chapter's trainer uses (classifiers, VAEs, the tiny GPT, the text-to-image
generator, the captioner): it moves through rounds of batches (an epoch, or the steps between two
evaluations), steps the optimiser and scheduler, clips gradients if asked, times training apart from
evaluation, calls an `evaluate` hook after each round and drives the progress bar. What differs between
chapters is only how one batch's loss is computed (`batch_loss`), which stays in the chapter's module.
`fit` is the classic (X, y) loader version of it.

Two loops stay written out by hand because they are the lesson: chapter 1's manual-backprop MLP
(backprop.train_manual_mlp) and chapter 3's alternating GAN step (gan.train_gan).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from tqdm.auto import tqdm

from .config import get_device
from .histories import FitHistory


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


@dataclass
class LoopResult:
    """What run_loop measured: per round, the step count, the mean loss, the training seconds so far and
    each evaluate() value."""
    steps: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    elapsed: list = field(default_factory=list)
    evals: dict = field(default_factory=dict)
    seconds: float = 0.0        # training only: the evaluate() calls are not counted
    cpu_seconds: float = 0.0    # CPU time of the same (closer than wall time to an idle machine's on a busy one)
    eval_seconds: float = 0.0


def run_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer, rounds: Iterable, batch_loss: Callable,
             *, scheduler=None, scheduler_every: str = "batch", clip_grad_norm: float | None = None,
             evaluate: Callable[[torch.nn.Module], dict] | None = None, total: int | None = None,
             desc: str = "training", progress: bool = True, postfix: Callable | None = None) -> LoopResult:
    """Train `model`: for each batch of each round, loss = batch_loss(batch), then one optimiser step.

    rounds: an iterable of rounds, each an iterable of batches (e.g. [loader] * num_epochs, or lists of
    step numbers between evaluations). batch_loss(batch) returns (loss, n): the mean loss of the batch
    and its number of examples (a round's loss is the n-weighted mean). The batch may be just a step
    number when batch_loss draws its own examples. scheduler: stepped after every batch
    (scheduler_every="batch") or every round ("round"). evaluate(model): called after each round; each
    entry of its dict is appended to result.evals. postfix(result): text for the progress bar.
    total: number of batches, for the progress bar (found from the rounds when they have a length).

    Lesson: 04_vae.ipynb, "3. Training the VAE and measuring it in nats".
    """
    if scheduler_every not in ("batch", "round"):
        raise ValueError(f"scheduler_every must be 'batch' or 'round', got {scheduler_every!r}.")
    if total is None and isinstance(rounds, (list, tuple)):
        total = sum(len(r) for r in rounds) if all(hasattr(r, "__len__") for r in rounds) else None
    result = LoopResult()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    bar = tqdm(total=total, desc=desc, disable=not progress)
    step = 0
    for batches in rounds:
        start, cpu_start = time.perf_counter(), time.process_time()
        model.train()
        loss_sum, count = 0.0, 0
        for batch in batches:
            loss, n = batch_loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
            optimizer.step()
            if scheduler is not None and scheduler_every == "batch":
                scheduler.step()
            loss_sum += loss.item() * n
            count += n
            step += 1
            bar.update(1)
        if scheduler is not None and scheduler_every == "round":
            scheduler.step()
        result.seconds += time.perf_counter() - start
        result.cpu_seconds += time.process_time() - cpu_start
        result.steps.append(step)
        result.elapsed.append(result.seconds)
        result.losses.append(loss_sum / max(count, 1))
        if evaluate is not None:
            start = time.perf_counter()
            for k, v in evaluate(model).items():
                result.evals.setdefault(k, []).append(v)
            result.eval_seconds += time.perf_counter() - start
        bar.set_postfix_str(postfix(result) if postfix else f"loss={result.losses[-1]:.4g}")
    bar.close()
    model.eval()
    return result


def step_rounds(num_steps: int, eval_every: int) -> list:
    """Step numbers 1..num_steps cut into rounds that end at every eval_every-th step and at the last."""
    if num_steps < 1 or eval_every < 1:
        raise ValueError(f"num_steps and eval_every must be at least 1, got {num_steps}, {eval_every}.")
    return [list(range(a, min(a + eval_every, num_steps + 1))) for a in range(1, num_steps + 1, eval_every)]


def fit(net: torch.nn.Module, train_loader, num_epochs: int, lr: float = 1e-3,
        loss_fn: Callable = torch.nn.functional.cross_entropy, optimizer: torch.optim.Optimizer | None = None,
        eval_fn: Callable[[torch.nn.Module], dict] | None = None, device=None, scheduler=None,
        desc: str = "training", progress: bool = True) -> FitHistory:
    """Train `net` on (X, y) mini-batches from `train_loader` with run_loop; return a FitHistory.

    history["loss"] holds the mean training loss per epoch; every key returned by `eval_fn(net)` (called
    after each epoch) is appended too; history["seconds"] is the wall time of training and evaluation,
    history["cpu_seconds"] the CPU time of training. scheduler (if any) is stepped once per epoch.

    Lesson: 04_vae.ipynb, "1. An autoencoder first".
    """
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be at least 1, got {num_epochs}")
    device = device or get_device()
    net.to(device)
    optimizer = optimizer or torch.optim.Adam(net.parameters(), lr=lr)

    def batch_loss(batch):
        X, y = batch[0].to(device), batch[1].to(device)
        return loss_fn(net(X), y), len(X)

    def postfix(r: LoopResult) -> str:
        return ", ".join(f"{k}={v[-1]:.4g}" for k, v in {"loss": r.losses, **r.evals}.items())

    r = run_loop(net, optimizer, [train_loader] * num_epochs, batch_loss, scheduler=scheduler,
                 scheduler_every="round", evaluate=eval_fn, desc=desc, progress=progress, postfix=postfix)
    net.train()  # as before run_loop existed: fit leaves the network as it trained it; callers set eval()
    return FitHistory(loss=r.losses, seconds=r.seconds + r.eval_seconds, cpu_seconds=r.cpu_seconds, evals=r.evals)

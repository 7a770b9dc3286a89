"""The experiment of chapter 6: one generator per text encoder, same data, steps and seed, measured alike."""
from __future__ import annotations

import time

from .adherence import adherence_report, attribute_adherence, quality_report
from .conditional import train_conditional
from .config import pick
from .encoders import ENCODER_LABELS


def compare_encoders(data, judge, encoders: dict, num_steps: int | None = None, n_per_prompt: int | None = None,
                     seed: int = 0, progress: bool = True) -> dict:
    """Train one ConditionalVAE per text encoder on the same data, steps and seed; measure each (chapter 6).

    encoders: {kind: encoder} (see make_encoder). Returns {kind: {"model", "encoder", "history",
    "adherence" (adherence_report), "attributes", "quality", "wall_seconds"}}.

    Lesson: 06_text_to_image.ipynb, "4. Training with three encoders: Fashion-MNIST".
    """
    n_per_prompt = n_per_prompt or pick(20, 4)
    results = {}
    for kind, encoder in encoders.items():
        start = time.perf_counter()
        model, history = train_conditional(data, encoder, judge, num_steps=num_steps, seed=seed,
                                           desc=f"{data.name} / {ENCODER_LABELS.get(kind, kind)}",
                                           progress=progress)
        rep = adherence_report(model, encoder, judge, data.name, n_per_prompt, seed=seed)
        attrs = attribute_adherence(model, encoder, data, pick(10, 2), seed=seed)
        quality = quality_report(model, encoder, judge, data, pick(2000, 200), seed=seed)
        results[kind] = {"model": model, "encoder": encoder, "history": history, "adherence": rep,
                         "attributes": attrs, "quality": quality, "wall_seconds": time.perf_counter() - start}
    return results


def summary_rows(results: dict, dataset: str) -> list:
    """One flat dict per encoder (for printing as a table).

    Lesson: 06_text_to_image.ipynb, "4. Training with three encoders: Fashion-MNIST".
    """
    rows = []
    for kind, r in results.items():
        h, a = r["history"], r["adherence"]
        rows.append({"dataset": dataset, "encoder": kind,
                     **{f"adh_{f}": a[f]["adherence"] for f in a},
                     "steps_to_80": h["steps_to_target"], "seconds_to_80": h["seconds_to_target"],
                     "train_seconds": h["train_seconds"], "encode_seconds": h["encode_seconds"],
                     "attribute_adherence": r["attributes"]["mean"], "frechet": r["quality"]["frechet"],
                     "diversity": r["quality"]["diversity"], "wall_seconds": r["wall_seconds"]})
    return rows


def print_summary(rows: list) -> None:
    """The comparison as a text table.

    Lesson: 06_text_to_image.ipynb, "4. Training with three encoders: Fashion-MNIST".
    """
    head = (f"{'dataset':14s} {'encoder':11s} {'train':>6s} {'phrase':>6s} {'synon':>6s} {'attr':>5s} "
            f"{'steps80':>7s} {'sec80':>6s} {'train s':>7s} {'FD':>6s} {'div':>5s}")
    print(head)
    for r in rows:
        s80 = "-" if r["steps_to_80"] is None else str(r["steps_to_80"])
        t80 = "-" if r["seconds_to_80"] is None else f"{r['seconds_to_80']:.1f}"
        print(f"{r['dataset']:14s} {r['encoder']:11s} {r['adh_train']:6.2f} {r['adh_heldout_phrasing']:6.2f} "
              f"{r['adh_heldout_synonym']:6.2f} {r['attribute_adherence']:5.2f} {s80:>7s} {t80:>6s} "
              f"{r['train_seconds']:7.1f} {r['frechet']:6.1f} {r['diversity']:5.2f}")

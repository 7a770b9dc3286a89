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
                     **{f"conf_{f}": a[f]["confident"] for f in a},
                     **{f"unreadable_{f}": a[f]["unreadable"] for f in a},
                     "steps_to_80": h["steps_to_target"], "seconds_to_80": h["seconds_to_target"],
                     "train_seconds": h["train_seconds"], "encode_seconds": h["encode_seconds"],
                     "attribute_adherence": r["attributes"]["mean"], "frechet": r["quality"]["frechet"],
                     "diversity": r["quality"]["diversity"], "wall_seconds": r["wall_seconds"]})
    return rows


def print_summary(rows: list) -> None:
    """The comparison as a text table (syn>.5: synonym adherence counting only confident readings, p >= 0.5).

    Lesson: 06_text_to_image.ipynb, "4. Training with three encoders: Fashion-MNIST".
    """
    head = (f"{'dataset':14s} {'encoder':11s} {'train':>6s} {'phrase':>6s} {'synon':>6s} {'syn>.5':>6s} {'attr':>5s} "
            f"{'steps80':>7s} {'sec80':>6s} {'train s':>7s} {'FD':>6s} {'div':>5s}")
    print(head)
    for r in rows:
        s80 = "-" if r["steps_to_80"] is None else str(r["steps_to_80"])
        t80 = "-" if r["seconds_to_80"] is None else f"{r['seconds_to_80']:.1f}"
        print(f"{r['dataset']:14s} {r['encoder']:11s} {r['adh_train']:6.2f} {r['adh_heldout_phrasing']:6.2f} "
              f"{r['adh_heldout_synonym']:6.2f} {r['conf_heldout_synonym']:6.2f} {r['attribute_adherence']:5.2f} {s80:>7s} {t80:>6s} "
              f"{r['train_seconds']:7.1f} {r['frechet']:6.1f} {r['diversity']:5.2f}")


# ---------------------------------------------------------------- the spread over training seeds

SPREAD_METRICS = ("adh_train", "adh_heldout_phrasing", "adh_heldout_synonym", "conf_heldout_synonym",
                  "frechet", "diversity")
SPREAD_LABELS = {"adh_train": "adherence, training prompts", "adh_heldout_phrasing": "adherence, unseen phrasings",
                 "adh_heldout_synonym": "adherence, unseen synonyms",
                 "conf_heldout_synonym": "confident adherence (p >= 0.5), unseen synonyms",
                 "frechet": "Frechet distance", "diversity": "diversity within a prompt"}


def seed_spread(data, judge, make_encoders, seeds=(0, 1, 2), num_steps: int | None = None,
                n_per_prompt: int | None = None, progress: bool = True) -> dict:
    """How much of a difference between encoders is the training seed? (chapter 6)

    For each seed, make_encoders() gives a fresh {kind: encoder} (an encoder trained end to end cannot be
    reused), one generator per encoder is trained with that seed (no evaluation during training) and
    measured as compare_encoders does. Returns {kind: {metric: [value for each seed]}} for SPREAD_METRICS.

    Lesson: 06_text_to_image.ipynb, "How much is the seed?".
    """
    seeds = list(seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"a spread needs at least 2 different seeds, got {seeds}.")
    n_per_prompt = n_per_prompt or pick(20, 4)
    out: dict = {}
    for seed in seeds:
        for kind, encoder in make_encoders().items():
            model, _ = train_conditional(data, encoder, None, num_steps=num_steps, seed=seed, progress=progress,
                                         desc=f"{data.name} / {ENCODER_LABELS.get(kind, kind)} / seed {seed}")
            rep = adherence_report(model, encoder, judge, data.name, n_per_prompt, seed=seed)
            quality = quality_report(model, encoder, judge, data, pick(2000, 200), seed=seed)
            values = {**{f"adh_{f}": rep[f]["adherence"] for f in rep},
                      "conf_heldout_synonym": rep["heldout_synonym"]["confident"],
                      "frechet": quality["frechet"], "diversity": quality["diversity"]}
            for metric in SPREAD_METRICS:
                out.setdefault(kind, {}).setdefault(metric, []).append(values[metric])
    return out


def spread_stats(values) -> dict:
    """mean, sample standard deviation, min and max of a list of per-seed values.

    Lesson: 06_text_to_image.ipynb, "How much is the seed?".
    """
    v = [float(x) for x in values]
    if not v:
        raise ValueError("no values to summarise.")
    mean = sum(v) / len(v)
    sd = (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(v), "max": max(v), "n": len(v)}


def seed_record_rows(report: dict) -> dict:
    """{(dataset, kind, metric): [values by seed]} from a `bench 06_seeds` JSON report (its per-seed rows).

    Lesson: 06_text_to_image.ipynb, "How much is the seed?".
    """
    out: dict = {}
    for row in report["results"]:
        head, sep, seed = row["metric"].rpartition(", seed ")
        kind, sep2, metric = head.partition(": ")
        if sep and sep2 and metric in SPREAD_METRICS:
            out.setdefault((row["dataset"], kind, metric), []).append(row["value"])
    if not out:
        raise ValueError("no per-seed rows found; this is not the JSON of `textimg-lessons bench 06_seeds`.")
    return out


def load_seed_record(path=None) -> dict:
    """The committed run of `textimg-lessons bench 06_seeds` (or the JSON at path), as a report dict.

    Lesson: 06_text_to_image.ipynb, "How much is the seed?".
    """
    import json
    from importlib import resources
    if path is None:
        return json.loads(resources.files("textimg_lessons").joinpath(SEED_RECORD).read_text())
    with open(path) as f:
        return json.load(f)


SEED_RECORD = "shipped/bench_06_seeds.json"


def print_seed_spread(report: dict) -> None:
    """The spread over seeds as a table: mean, standard deviation, min-max for each dataset, encoder, metric.

    Lesson: 06_text_to_image.ipynb, "How much is the seed?".
    """
    values = seed_record_rows(report)
    print(f"{'dataset':14s} {'encoder':11s} {'metric':48s} {'mean':>7s} {'sd':>6s} {'min':>7s} {'max':>7s}  n")
    for (ds, kind, metric), v in values.items():
        st = spread_stats(v)
        print(f"{ds:14s} {kind:11s} {SPREAD_LABELS[metric]:48s} {st['mean']:7.3f} {st['sd']:6.3f} "
              f"{st['min']:7.3f} {st['max']:7.3f}  {st['n']}")

"""Chapter 6's seed spread: the encoder comparison trained with 3 seeds, so differences can be judged."""
from __future__ import annotations

from .report import BenchRow

SEEDS = (0, 1, 2)


def bench() -> list:
    """For each dataset, encoder and seed: adherence per family (and confident adherence on synonyms),
    Frechet distance and diversity; plus mean and standard deviation over the seeds."""
    from ..config import fast_mode
    from ..data import load_dataset
    from ..encoder_comparison import SPREAD_LABELS, seed_spread, spread_stats
    from ..encoders import LabelLookupEncoder, ScratchTextEncoder
    from ..judges import load_judge
    from ..pretrained import PretrainedTextEncoder
    pretrained = PretrainedTextEncoder()
    rows = []
    for ds in ("fashion_mnist", "mnist"):
        data, judge = load_dataset(ds, verbose=False), load_judge(ds)
        name = ds + (" [fast subset]" if fast_mode() else "")

        def make_encoders():
            return {"onehot": LabelLookupEncoder(ds), "scratch": ScratchTextEncoder.for_dataset(ds),
                    "pretrained": pretrained}
        spread = seed_spread(data, judge, make_encoders, SEEDS, progress=False)
        for kind, metrics in spread.items():
            for metric, values in metrics.items():
                for seed, v in zip(SEEDS, values):
                    rows.append(BenchRow(f"{kind}: {metric}, seed {seed}", v, name))
                st = spread_stats(values)
                rows.append(BenchRow(f"{kind}: {SPREAD_LABELS[metric]}, mean over {st['n']} seeds", st["mean"], name))
                rows.append(BenchRow(f"{kind}: {SPREAD_LABELS[metric]}, sd over {st['n']} seeds", st["sd"], name))
    return rows

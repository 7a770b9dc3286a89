"""`textimg-lessons train judges|generators`: rebuild the weights that ship with the package.

    textimg-lessons train judges [--out DIR] [--datasets mnist fashion_mnist] [--seed 0]
    textimg-lessons train generators [--out DIR] [--datasets fashion_mnist mnist] [--seed 0]
    textimg-lessons train diffusion [--out DIR] [--datasets fashion_mnist mnist] [--seed 0]
    textimg-lessons train reflow [--out DIR] [--datasets fashion_mnist mnist] [--seed 0]

judges trains chapter 2's judge classifiers (`judges.train_judges`); generators trains chapter 6's
text-conditioned VAEs (`generator_io.train_shipped`); diffusion trains chapter 7's diffusion generators
(`text_to_image.train_shipped`); reflow distils the shipped diffusion generators into chapter 8's few-step students,
the default of `textimg-lessons generate` (`reflow.train_shipped_student`). All run in full
mode for minutes to an hour on a CPU. The arguments are checked before torch is imported. The default
--out is a folder in the data cache; the shipped files are replaced only when --out names the package's
shipped folder, and an existing weight file only with --force.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .datasets import NAMES, DatasetError, require_dataset

WHAT = {
    "judges": "chapter 2's judge classifiers, judge_<dataset>.safetensors",
    "generators": "chapter 6's text-conditioned VAEs (generate --model cvae), cvae_<dataset>.safetensors",
    "diffusion": "chapter 7's diffusion generators (generate --model diffusion), diffusion_<dataset>.safetensors",
    "reflow": "chapter 8's few-step students of the shipped diffusion generators (generate's default), "
              "reflow_<dataset>.safetensors",
}
FILE_NAME = {"judges": "judge_{}.safetensors", "generators": "cvae_{}.safetensors",
             "diffusion": "diffusion_{}.safetensors", "reflow": "reflow_{}.safetensors"}


def default_out(what: str) -> Path:
    """<data cache>/judges or <data cache>/generators (config.data_dir(): TEXTIMG_DATA or the clone's data/cache)."""
    from . import config
    return config.data_dir() / what


def validate_args(args) -> tuple:
    """(datasets, out folder) from parsed arguments; a clear ValueError if they do not make sense."""
    datasets = [require_dataset(d) for d in args.datasets]
    if len(set(datasets)) != len(datasets):
        raise ValueError(f"--datasets names a dataset twice: {' '.join(args.datasets)}.")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}.")
    out = Path(args.out) if args.out is not None else default_out(args.what)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder.")
    existing = [out / FILE_NAME[args.what].format(d) for d in datasets]
    existing = [p.name for p in existing if p.exists()]
    if existing and not args.force:
        raise ValueError(f"{', '.join(existing)} already in {out}; choose another --out or add --force to replace.")
    return datasets, out


def _run(args) -> int:
    try:
        datasets, out = validate_args(args)
    except (ValueError, DatasetError) as e:
        print(f"textimg-lessons train {args.what}: error: {e}", file=sys.stderr)
        return 2
    if args.what == "judges":
        from .judges import train_judges
        train_judges(out, datasets, args.seed)
    elif args.what == "generators":
        from .generator_io import train_shipped
        train_shipped(out, datasets, args.seed)
    elif args.what == "diffusion":
        from .text_to_image import train_shipped
        train_shipped(datasets, out, args.seed)
    else:
        from .reflow import train_shipped_student
        train_shipped_student(datasets, out, args.seed)
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="rebuild the shipped weights: the judges or the text-to-image generators")
    p.add_argument("what", choices=list(WHAT), help="; ".join(f"{k}: {v}" for k, v in WHAT.items()))
    p.add_argument("--out", default=None, help="output folder (default: judges/, generators/, diffusion/ or reflow/ in the data cache; "
                   "textimg_lessons/shipped replaces the shipped weights)")
    p.add_argument("--force", action="store_true", help="replace weight files that already exist in --out")
    p.add_argument("--datasets", nargs="+", default=list(NAMES), help=f"any of {', '.join(NAMES)} (default: both)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_run)

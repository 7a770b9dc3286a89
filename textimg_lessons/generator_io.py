"""The shipped text-to-image generators (chapter 6): saving, loading and rebuilding them.

The generators behind `textimg-lessons generate` (textimg_lessons/shipped/cvae_<dataset>.safetensors) were
produced by `textimg-lessons train generators` (earlier spelled `python -m textimg_lessons.conditional
train-shipped`, as the files' metadata records), which runs `train_shipped()`: the chapter's "pretrained"
recipe with its full number of steps (RECIPE.full("num_steps")) on each dataset's full training split (offline
MNIST: the 4,000-image subset), stored as float16 (decoder, projection and FiLM only).
"""
from __future__ import annotations

import time
from pathlib import Path

from . import config
from .conditional import RECIPE, ConditionalVAE, train_conditional
from .config import get_device
from .datasets import require_dataset
from .histories import ShippedFile
from .weights import read_weights, require_weights_file, write_weights


SHIPPED_FORMAT = "textimg_lessons.conditional.ConditionalVAE/v1"


def shipped_generator_path(dataset: str) -> Path:
    return config.shipped_data_dir() / f"cvae_{require_dataset(dataset)}.safetensors"


def save_generator(model: ConditionalVAE, path, dataset: str, text_encoder: str, metadata: dict | None = None) -> Path:
    """Save what generation needs (projection, FiLM, decoder; not the encoder q(z|x)) as float16 safetensors."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()).contiguous()
             for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    meta = {"format": SHIPPED_FORMAT, "dataset": require_dataset(dataset), "text_encoder": text_encoder,
            "text_dim": model.text_dim, "latent_dim": model.latent_dim, "cond_dim": model.cond_dim,
            "proj_hidden": model.projection.net[0].out_features, "film": model.use_film, "norm": model.norm}
    meta.update(metadata or {})
    return write_weights(path, state, meta)


def load_generator(dataset: str, path=None, device=None) -> ConditionalVAE:
    """A shipped (or saved) ConditionalVAE for sampling, in eval mode; .metadata holds what it was trained with.

    Only the decoder side is stored, so the returned model can sample but not encode images.
    """
    dataset = require_dataset(dataset)
    path = require_weights_file(path if path is not None else shipped_generator_path(dataset), "generator weights",
                                "textimg-lessons train generators")
    state, meta = read_weights(path)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    if meta.get("format") != SHIPPED_FORMAT or meta.get("dataset") != dataset:
        raise ValueError(f"{path.name} is not a {dataset} generator saved by save_generator "
                         f"(format {meta.get('format')!r}, dataset {meta.get('dataset')!r}).")
    model = ConditionalVAE(int(meta["text_dim"]), int(meta["latent_dim"]), int(meta["cond_dim"]),
                           int(meta["proj_hidden"]), film=meta["film"] == "True", norm=meta.get("norm", "True") == "True")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("encoder.") for k in missing):
        raise ValueError(f"{path.name} does not fit ConditionalVAE: missing {missing[:3]}, unexpected {unexpected[:3]}.")
    model.metadata = meta
    return model.to(device or get_device()).eval()


SHIPPED_COMMAND = "textimg-lessons train generators"




def train_shipped(out_dir=None, datasets=("fashion_mnist", "mnist"), seed: int = 0) -> list:
    """Train the generators behind `textimg-lessons generate` with the pretrained encoder and save them."""
    from .adherence import adherence_report
    from .judges import load_judge
    from .data import load_dataset
    from .pretrained import PretrainedTextEncoder
    out_dir = Path(out_dir) if out_dir is not None else config.shipped_data_dir()
    encoder = PretrainedTextEncoder()
    report = []
    for ds in datasets:
        start = time.perf_counter()
        data = load_dataset(ds)
        judge = load_judge(ds)
        model, history = train_conditional(data, encoder, judge, num_steps=RECIPE.full("num_steps")[require_dataset(ds)],
                                           seed=seed)
        adh = adherence_report(model, encoder, judge, ds, 20, seed=seed)
        path = save_generator(model, out_dir / f"cvae_{require_dataset(ds)}.safetensors", ds, encoder.name, {
            "command": SHIPPED_COMMAND, "seed": seed, "steps": history["step"][-1], "source": data.source,
            "guidance": f"{RECIPE['guidance']:g}",
            **{f"adherence_{f}": f"{adh[f]['adherence']:.3f}" for f in adh}})
        report.append(ShippedFile(ds, path.name, round(time.perf_counter() - start, 1),
                                  {"bytes": path.stat().st_size, **{f: round(adh[f]["adherence"], 3) for f in adh}}))
        print(report[-1].line(), flush=True)
    return report

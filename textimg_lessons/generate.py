"""`textimg-lessons generate PROMPT`: prompt -> image grid from a shipped text-to-image model.

    textimg-lessons generate "a photo of a trouser" --n 16 --out grid.png [--dataset fashion_mnist] [--seed 0]
                             [--model fast|diffusion|cvae] [--steps N] [--guidance 2]

The default model, `fast`, is chapter 8's reflow student (textimg_lessons/shipped/reflow_<dataset>.safetensors,
made by `textimg-lessons train reflow`): chapter 7's diffusion generator distilled so that a few Euler steps
(the number chosen when it was trained: the fewest that keep adherence within 5 points of the teacher's) and
no guidance pass give its images. `--model diffusion` is chapter 7's generator itself
(diffusion_<dataset>.safetensors, made by `textimg-lessons train diffusion`): MiniLM's token states condition
a denoiser that runs --steps Heun steps (default 16) with classifier-free guidance in a VAE's latent space.
`--model cvae` is chapter 6's text-conditioned VAE (cvae_<dataset>.safetensors, made by `textimg-lessons train
generators`). The chapter 2 judge says what it sees in each image and how sure
it is; a prompt far from every training caption (an unknown object, another language) gets a warning that
names the nearest known classes. An existing --out is never overwritten without --force.

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


MODELS = ("fast", "diffusion", "cvae")
MODEL_HELP = {"fast": "chapter 8's few-step student, the default", "diffusion": "chapter 7's generator",
              "cvae": "chapter 6's text-conditioned VAE"}
_LOADED: dict = {}   # (what, dataset) => a loaded model, so later calls in one process skip the loading


def validate_model(model: str) -> str:
    if model not in MODELS:
        raise GenerateError(f"--model must be one of: {'; '.join(f'{k} ({v})' for k, v in MODEL_HELP.items())}, "
                            f"got {model!r}.")
    return model


def validate_steps(steps) -> int | None:
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 200):
        raise GenerateError(f"--steps must be a whole number between 1 and 200, got {steps!r}.")
    return steps


def validate_model_options(model: str, guidance) -> None:
    if model == "fast" and guidance is not None:
        raise GenerateError("the fast model has chapter 7's guidance (2.0) distilled into it and takes none; drop "
                            "--guidance, or choose it with --model diffusion.")


def _cached(key, load):
    if key not in _LOADED:
        _LOADED[key] = load()
    return _LOADED[key]


def generate(prompt: str, n: int = 16, dataset: str = "fashion_mnist", seed: int = 0, encoder=None,
             model=None, judge=None, guidance: float | None = None, kind: str | None = None,
             steps: int | None = None) -> dict:
    """Images for a prompt from a shipped generator, with the judge's reading of each.

    kind: "fast" (chapter 8's reflow student with the int8 language model: chapter 7's quality bar at a
    fraction of its time, measured by `textimg-lessons bench 08_faster_generation`), "diffusion" (chapter 7) or "cvae" (chapter 6). None means
    the kind of `model` when one is passed (a reflow student is "fast", another chapter 7 TextToImage
    "diffusion", a chapter 6 ConditionalVAE "cvae"), else "fast".
    guidance: classifier-free guidance scale (None: the chapter's recipe; 1 = none; not for "fast", which has it
    built in). steps: the diffusion model's Heun steps, or the student's Euler steps (None: the recipe's, or
    the number chosen for the student when it was trained).

    Returns {"images": (n, 1, 28, 28), "readings": [class name per image], "confidence": [the judge's
    probability of that class per image], "counts": Counter, "seconds": generation time, and for diffusion
    "known" / "familiarity" / "nearest": whether the prompt is close to what the model was trained on, and
    the names of the nearest known classes}. encoder/model/judge may be passed in to reuse loaded ones
    (a given encoder is used as it is; the default for "fast" is the int8 one).

    Lesson: 07_diffusion.ipynb, "12. A prompt box".
    """
    prompt, dataset = validate_prompt(prompt), validate_dataset(dataset)
    n, guidance = validate_count(n), validate_guidance(guidance)
    import time

    import torch

    if kind is None:
        from .text_to_image import TextToImage
        if model is None:
            kind = "fast"
        elif isinstance(model, TextToImage):
            kind = "fast" if getattr(model, "metadata", {}).get("distilled") == "reflow" else "diffusion"
        else:
            kind = "cvae"
    kind, steps = validate_model(kind), validate_steps(steps)
    validate_model_options(kind, guidance)

    from .judges import load_judge
    from .metrics import judge_logits
    encoder_label = "MiniLM (given)" if encoder is not None else "float32 MiniLM"
    if encoder is None:
        from .pretrained import PretrainedTextEncoder
        encoder = _cached(("encoder", None), PretrainedTextEncoder)
        if kind == "fast" and model is None:
            # the fastest configuration that keeps chapter 7's quality, as chapter 8 measured it: the student
            # with the int8 language model (or float32 where this torch cannot quantise)
            from .faster import fastest_encoder
            encoder, encoder_label = _cached(("encoder", "fast"), lambda: fastest_encoder(encoder))
    judge = judge if judge is not None else _cached(("judge", dataset), lambda: load_judge(dataset))
    names = class_names(dataset)
    extra = {}
    if kind == "fast":
        from .reflow import STUDENT_STEP_CHOICES, load_student
        model = model if model is not None else _cached(
            ("fast", dataset, id(encoder)), lambda: load_student(dataset, encoder=encoder))
        steps = steps or int(model.metadata.get("recommended_steps", max(STUDENT_STEP_CHOICES)))
        result = model.generate(prompt, n, steps, 1.0, sampler="euler", seed=seed)
    elif kind == "diffusion":
        from . import diffusion, text_to_image
        model = model if model is not None else _cached(
            ("diffusion", dataset, id(encoder)), lambda: text_to_image.load_model(dataset, encoder=encoder))
        steps = steps or diffusion.RECIPE["sample_steps"]
        result = model.generate(prompt, n, steps, diffusion.RECIPE["guidance"] if guidance is None else guidance,
                                seed=seed)
    if kind in ("fast", "diffusion"):
        images, seconds = result.images, result.seconds
        extra = {"known": result.known, "familiarity": result.familiarity,
                 "nearest": [names[c] for c in result.nearest]}
    else:
        from .conditional import guidance_or_default, sample
        from .generator_io import load_generator
        model = model if model is not None else _cached(("cvae", dataset), lambda: load_generator(dataset))
        start = time.perf_counter()
        images = sample(model, encoder.encode([prompt]), n, torch.Generator().manual_seed(seed),
                        guidance_or_default(guidance))
        seconds = time.perf_counter() - start
    probs = torch.softmax(judge_logits(judge, images), dim=1)
    conf, classes = probs.max(dim=1)
    readings = [names[int(c)] for c in classes]
    return {"images": images, "readings": readings, "confidence": conf.tolist(), "counts": Counter(readings),
            "seconds": seconds, "kind": kind, "steps": steps, "encoder": encoder_label, **extra}


def reading_text(counts: Counter, n: int, readings=None, confidence=None) -> str:
    """"Trouser 15/16, Dress 1/16"; with readings and confidence, each class's mean probability too.

    Lesson: 06_text_to_image.ipynb, "7. A prompt box"."""
    def mean_conf(name):
        values = [c for r, c in zip(readings, confidence) if r == name]
        return f" (judge sure at {sum(values) / len(values):.0%})"
    return ", ".join(f"{name} {k}/{n}" + (mean_conf(name) if confidence is not None else "")
                     for name, k in counts.most_common())


def unknown_warning(result: dict) -> str | None:
    """The warning for a prompt far from everything the model was trained on (None when it is known)."""
    if result.get("known", True):
        return None
    return (f"warning: this prompt is far from everything the model was trained on (similarity "
            f"{result['familiarity']:.2f} to the nearest training caption); the images below are not a drawing of "
            f"it. The nearest known classes are: {', '.join(result['nearest'])}. The model knows only its "
            "dataset's classes, in English.")


def _run(args) -> int:
    import sys
    try:
        # every argument first: nothing heavy is imported until they all make sense
        prompt, dataset = validate_prompt(args.prompt), validate_dataset(args.dataset)
        validate_count(args.n), validate_guidance(args.guidance)
        validate_model(args.model), validate_steps(args.steps)
        validate_model_options(args.model, args.guidance)
        out = validate_out(args.out, args.force)
        if args.scale < 1 or args.scale > 16:
            raise GenerateError(f"--scale must be between 1 and 16, got {args.scale}.")
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            result = generate(prompt, args.n, dataset, args.seed, guidance=args.guidance, kind=args.model,
                              steps=args.steps)
    except GenerateError as e:
        print(f"textimg-lessons generate: error: {e}", file=sys.stderr)
        return 2
    for w in caught:   # the encoder's note on a long prompt is for the user: one plain line, not a traceback
        if w.category.__name__ == "PromptTruncatedWarning":
            print(str(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    save_grid(result["images"], out, args.scale)
    w, h = grid_size(args.n, args.scale)
    warning = unknown_warning(result)
    if warning:
        print(warning)
    steps = "" if args.model == "cvae" else f", {result['steps']} step{'s' * (result['steps'] != 1)}"
    steps += f", {result['encoder']}"
    print(f"wrote {out} ({w}x{h} px, {args.n} images, {dataset}, {args.model} model{steps}, seed {args.seed}) "
          f"in {result['seconds']:.2f} s (model loading not counted)")
    print(f"the judge reads: {reading_text(result['counts'], args.n, result['readings'], result['confidence'])}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="prompt -> PNG grid from a shipped text-to-image model (chapter 8; 7; 6)")
    p.add_argument("prompt", help='what to draw, e.g. "a pair of jeans" or "a thick seven"')
    p.add_argument("--n", type=int, default=16, help="number of images (default 16)")
    p.add_argument("--out", default="grid.png", help="PNG file to write (default grid.png)")
    p.add_argument("--dataset", default="fashion_mnist", help="fashion_mnist (default) or mnist")
    p.add_argument("--seed", type=int, default=0, help="random seed for the latent samples")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (default: the chapter's, 2.0; 1 = none)")
    p.add_argument("--model", default="fast", help="; ".join(f"{k}: {v}" for k, v in MODEL_HELP.items()))
    p.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: the fast model's chosen number of Euler steps; 16 Heun steps "
                        "for --model diffusion)")
    p.add_argument("--scale", type=int, default=4, help="enlarge each 28x28 image this many times (default 4)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=_run)

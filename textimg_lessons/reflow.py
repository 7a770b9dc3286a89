"""A distilled few-step student of chapter 7's generator (chapter 8, section 7): rectified-flow reflow with the
guidance baked in, and the shipped student that `textimg-lessons generate` draws with by default.

  REFLOW, make_reflow_pairs, reflow_loss,   the teacher's (noise, latent) pairs and the student trained on
  train_reflow_student                      the straight lines between them
  choose_student_steps, load_student,       the fewest Euler steps that keep chapter 7's quality, and the
  train_shipped_student, student_path       weight file made by `textimg-lessons train reflow`
"""
from __future__ import annotations

import copy
import json
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import diffusion, text_to_image
from .config import FullFast, Recipe, seed_everything
from .datasets import require_dataset
from .faster import MEASURE, fastest_encoder, with_parts
from .histories import ReflowHistory, ShippedFile
from .train import run_loop, step_rounds

# Reflow with the guidance baked in. Full mode is sized to stay under 10 minutes on a 2-core CPU: measured on one
# core, a teacher pair (31 guided passes) costs about 25 ms and a training step of 256 about 0.35 s, 7 min in all.
REFLOW = Recipe(
    teacher_steps=16,                  # Heun, as chapter 7 samples by default
    teacher_sampler="heun",
    guidance=2.0,                      # the teacher's guidance; the student needs none
    num_pairs=FullFast(6000, 64),
    num_steps=FullFast(800, 20),
    batch_size=FullFast(256, 32),
    lr=3e-4,
)


@torch.no_grad()
def make_reflow_pairs(t2i, table, n_pairs: int, steps: int = REFLOW["teacher_steps"], guidance: float = REFLOW["guidance"],
                      sampler: str = REFLOW["teacher_sampler"], batch_size: int = 500, seed: int = 0,
                      progress: bool = True) -> dict:
    """Run the teacher from noise to a latent for n_pairs training captions (section 7).

    Captions are drawn like chapter 7's training (a random image, one of its captions), so the student sees
    the same prompts. Returns {"noise": (P, latent_dim), "z0": (P, latent_dim), "rows": (P,) rows of
    `table`, "seconds"}: the teacher maps noise[i] to z0[i] under caption table.texts[rows[i]].

    Lesson: 08_faster_generation.ipynb, "7. A distilled few-step student".
    """
    if not isinstance(n_pairs, int) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive int, got {n_pairs!r}.")
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    K, N = table.index.shape
    rows = table.index[torch.randint(K, (n_pairs,), generator=g), torch.randint(N, (n_pairs,), generator=g)]
    noise, z0 = [], []
    for i in tqdm(range(0, n_pairs, batch_size), desc="teacher pairs", disable=not progress):
        r = rows[i:i + batch_size]
        # sample_latents draws its starting noise first, from the generator it is given: a copy of that
        # generator's state reproduces the same noise, so each pair is exactly (start, end) of one path
        state = g.get_state()
        noise.append(torch.randn(len(r), t2i.model.latent_dim, generator=torch.Generator().set_state(state)))
        z0.append(diffusion.sample_latents(t2i.model, table.states[r].float(), table.mask[r], 1, steps, guidance,
                                           sampler, g))
    return {"noise": torch.cat(noise), "z0": torch.cat(z0), "rows": rows, "seconds": time.perf_counter() - start}


def reflow_loss(student, noise: torch.Tensor, z0: torch.Tensor, states: torch.Tensor, mask: torch.Tensor,
                t: torch.Tensor) -> torch.Tensor:
    """Flow matching on the teacher's pairs: at x_t = (1 - t) z0 + t noise the student's velocity should be
    the straight line's, noise - z0 (section 7). The same regression as chapter 7's loss, except that noise
    and z0 are *coupled* by the teacher instead of drawn independently, so the paths do not cross and a
    few Euler steps (even one) follow them. The prompt is always given: guidance is in the teacher's z0.

    Lesson: 08_faster_generation.ipynb, "7. A distilled few-step student".
    """
    v = student(diffusion.interpolate(z0, noise, t), t, states, mask)
    return F.mse_loss(v, diffusion.velocity_target(z0, noise))


def train_reflow_student(t2i, table, num_pairs: int | None = None, num_steps: int | None = None,
                         pairs: dict | None = None, batch_size: int | None = None, lr: float = REFLOW["lr"],
                         guidance: float = REFLOW["guidance"], seed: int = 0, progress: bool = True):
    """A few-step student of chapter 7's model: a copy of the teacher's denoiser fine-tuned by `reflow_loss`
    on the teacher's (noise, z0) pairs (section 7). Returns (student TextToImage, history).

    The student shares the teacher's codec, encoder and known captions; its `.metadata` marks it
    {"distilled": "reflow", "guidance_baked": ...}: sample it with guidance=1 and sampler="euler".
    history: "pairs_seconds", "seconds" (training), "cpu_seconds", "loss" (mean per 50 steps).
    Defaults from REFLOW (full mode 6,000 pairs and 800 steps of 256; fast mode 64 pairs, 20 steps of 32).

    Lesson: 08_faster_generation.ipynb, "7. A distilled few-step student".
    """
    num_pairs = num_pairs or REFLOW["num_pairs"]
    num_steps = num_steps or REFLOW["num_steps"]
    batch_size = batch_size or REFLOW["batch_size"]
    if pairs is None:
        pairs = make_reflow_pairs(t2i, table, num_pairs, guidance=guidance, seed=seed, progress=progress)
    g = seed_everything(seed)
    device = next(t2i.model.parameters()).device
    student = copy.deepcopy(t2i.model).train()
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, num_steps)

    def batch_loss(step):
        idx = torch.randint(len(pairs["z0"]), (batch_size,), generator=g)
        rows = pairs["rows"][idx]
        t = torch.rand(batch_size, generator=g)
        return reflow_loss(student, pairs["noise"][idx].to(device), pairs["z0"][idx].to(device),
                           table.states[rows].float().to(device), table.mask[rows].to(device), t.to(device)), batch_size

    result = run_loop(student, opt, step_rounds(num_steps, 50), batch_loss, scheduler=sched,
                      desc="reflow student", progress=progress)
    history = ReflowHistory(loss=result.losses, pairs_seconds=pairs.get("seconds", 0.0), pairs=len(pairs["z0"]),
                            seconds=result.seconds, cpu_seconds=result.cpu_seconds, steps=num_steps)
    out = with_parts(t2i, model=student.eval())
    out.metadata = {"distilled": "reflow", "guidance_baked": str(guidance), "teacher_steps": str(REFLOW["teacher_steps"]),
                    "pairs": str(history["pairs"]), "steps": str(num_steps)}
    return out, history


STUDENT_FORMAT_KEY = "distilled"      # metadata key that marks a saved TextToImage as a reflow student
STUDENT_COMMAND = "textimg-lessons train reflow"
STUDENT_STEP_CHOICES = (1, 2, 4, 8)   # Euler steps tried when choosing the shipped student's default


def student_path(dataset: str):
    """Where the shipped reflow student of `dataset` lives (`textimg-lessons generate`'s default model).

    Lesson: 08_faster_generation.ipynb, "The targets, and what".
    """
    from .config import shipped_data_dir
    return shipped_data_dir() / f"reflow_{require_dataset(dataset)}.safetensors"


def load_student(dataset: str, path=None, encoder=None, device=None):
    """The shipped (or a saved) reflow student: a chapter-7 TextToImage whose `.metadata` says it is distilled,
    with the guidance it has baked in and the Euler steps chosen for it ("recommended_steps").

    Lesson: 08_faster_generation.ipynb, "The targets, and what".
    """
    from .weights import require_weights_file
    dataset = require_dataset(dataset)
    path = require_weights_file(path if path is not None else student_path(dataset), "reflow student", STUDENT_COMMAND)
    student = text_to_image.load_model(dataset, path=path, encoder=encoder, device=device)
    if student.metadata.get(STUDENT_FORMAT_KEY) != "reflow":
        raise ValueError(f"{path.name} is a chapter-7 model, not a reflow student (no {STUDENT_FORMAT_KEY!r} in "
                         f"its metadata); load it with text_to_image.load_model.")
    return student


def choose_student_steps(student, teacher, judge, n_per_prompt: int | None = None, max_drop: float = 0.05,
                         choices=STUDENT_STEP_CHOICES) -> tuple:
    """The fewest Euler steps at which the student's adherence on the held-out phrasings is within max_drop
    of the teacher's at its default (16 Heun steps, guidance 2): chapter 8's quality bar (section 8). The
    student is measured with its own text encoder (`generate` gives it the int8 one).

    Returns (steps or None if no choice meets the bar, {"teacher": adherence, steps: adherence, ...}).

    Lesson: 08_faster_generation.ipynb, "The targets, and what".
    """
    from . import generation_metrics as gm
    n = n_per_prompt or MEASURE["n_per_prompt"]
    fam = ("heldout_phrasing",)

    def adherence(t2i, steps, guidance, sampler):
        s = gm.diffusion_sampler(t2i, steps, guidance, sampler)
        return gm.adherence_by_family(s, judge, teacher.dataset, n, fam)["heldout_phrasing"]["adherence"]

    scores = {"teacher": adherence(teacher, diffusion.RECIPE["sample_steps"], diffusion.RECIPE["guidance"], "heun")}
    for steps in choices:
        scores[steps] = adherence(student, steps, 1.0, "euler")
    ok = [s for s in choices if scores[s] >= scores["teacher"] - max_drop]
    return (min(ok) if ok else None), scores


def train_shipped_student(datasets=None, out_dir=None, seed: int = 0) -> list:
    """Distil the shipped chapter-7 model of each dataset into a reflow student on REFLOW's full budget, choose
    its default Euler steps (`choose_student_steps`) and save it next to the teacher (`textimg-lessons train
    reflow`; section 7). The training cost and the measured adherences are recorded in the file.

    Lesson: 08_faster_generation.ipynb, "The targets, and what".
    """
    from pathlib import Path

    from .data import load_dataset
    from .datasets import NAMES
    from .judges import load_judge
    from .pretrained import PretrainedTextEncoder
    encoder = PretrainedTextEncoder()
    report = []
    for ds in datasets or NAMES:
        start = time.perf_counter()
        teacher = text_to_image.load_model(ds, encoder=encoder)
        data = load_dataset(ds)
        table = diffusion.TokenTable(data, encoder, seed=seed)
        student, h = train_reflow_student(teacher, table, seed=seed)
        # the steps are chosen for the student as `generate` runs it: with the int8 language model
        fast_encoder, encoder_label = fastest_encoder(encoder)
        steps, scores = choose_student_steps(with_parts(student, encoder=fast_encoder), teacher, load_judge(ds))
        if steps is None:
            print(f"{ds}: no Euler step count of {STUDENT_STEP_CHOICES} keeps the student within 5 points of the "
                  f"teacher ({scores}); saving it with {max(STUDENT_STEP_CHOICES)} steps as its default.", flush=True)
        path = student_path(ds) if out_dir is None else Path(out_dir) / student_path(ds).name
        meta = {**student.metadata, "command": STUDENT_COMMAND, "seed": seed,
                "recommended_steps": steps or max(STUDENT_STEP_CHOICES), "chosen_with": encoder_label,
                "pairs_seconds": round(h["pairs_seconds"], 1), "train_seconds": round(h["seconds"], 1),
                "train_cpu_seconds": round(h["cpu_seconds"], 1), "threads": torch.get_num_threads(),
                "adherence_heldout_phrasing": json.dumps({str(k): round(v, 4) for k, v in scores.items()})}
        text_to_image.save_model(student, path, meta)
        report.append(ShippedFile(ds, path.name, round(time.perf_counter() - start, 1),
                                  {"recommended_steps": meta["recommended_steps"], "adherence": scores}))
        print(report[-1].line(), flush=True)
    return report

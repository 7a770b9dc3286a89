"""Chapter 7's benchmark: the shipped diffusion generators against chapter 6's cVAE on the same evaluation,
pooled vector vs cross-attention on the same training budget, the guidance and sampler sweeps, the
unknown-prompt check, and the sampling cost."""
from __future__ import annotations

import statistics
import time

from .report import BenchRow

GUIDANCE_SWEEP = (1.0, 1.5, 2.0, 3.0)
STEP_SWEEP = (("euler", 4), ("euler", 8), ("euler", 32), ("heun", 2), ("heun", 4), ("heun", 8), ("heun", 16))


def _ms_per_image(t2i, prompt: str, n: int = 16, repeats: int = 5) -> float:
    """Median wall time per image of t2i.generate (after one warm-up call), in milliseconds."""
    t2i.generate(prompt, n=n)
    times = [t2i.generate(prompt, n=n, seed=i).seconds for i in range(repeats)]
    return 1000 * statistics.median(times) / n


def bench() -> list:
    import torch

    from .. import diffusion, generation_metrics as gm, text_to_image
    from ..judges import load_judge
    from ..config import fast_mode, pick
    from ..data import load_dataset
    from ..generator_io import load_generator
    from ..pretrained import PretrainedTextEncoder
    rows = []
    encoder = PretrainedTextEncoder()
    n_per_prompt, n_images = pick(20, 2), pick(2000, 200)
    for ds in ("fashion_mnist", "mnist"):
        start = time.perf_counter()
        name = ds + (" [fast subset]" if fast_mode() else "")
        data = load_dataset(ds, verbose=False)
        judge = load_judge(ds)
        t2i = text_to_image.load_model(ds, encoder=encoder)
        cvae = load_generator(ds)
        results = {}
        for label, sampler in (("diffusion", gm.diffusion_sampler(t2i)), ("chapter 6 cVAE", gm.cvae_sampler(cvae, encoder))):
            adh = gm.adherence_by_family(sampler, judge, ds, n_per_prompt)
            q = gm.quality(sampler, judge, data, n_images)
            results[label] = (adh, q)
        adh, q = results["diffusion"]
        adh6, q6 = results["chapter 6 cVAE"]
        phr_target = 0.95 if ds == "fashion_mnist" else 0.98
        for fam in ("train", "heldout_phrasing", "heldout_synonym"):
            target = met = None
            if fam == "heldout_phrasing":
                target, met = f">= {phr_target}", adh[fam]["adherence"] >= phr_target
            if fam == "heldout_synonym" and ds == "fashion_mnist":
                target, met = ">= 0.55", adh[fam]["adherence"] >= 0.55
            rows.append(BenchRow(f"diffusion: prompt adherence, {fam}", adh[fam]["adherence"], name, target, met))
            rows.append(BenchRow(f"diffusion: confident adherence (judge p >= 0.5), {fam}", adh[fam]["confident"], name))
            rows.append(BenchRow(f"chapter 6 cVAE: prompt adherence, {fam}", adh6[fam]["adherence"], name))
            rows.append(BenchRow(f"chapter 6 cVAE: confident adherence (judge p >= 0.5), {fam}",
                                 adh6[fam]["confident"], name))
        rows.append(BenchRow(f"diffusion: diversity within a prompt (real: {q['real_diversity']:.2f})",
                             q["diversity"], name, ">= 6.0", q["diversity"] >= 6.0))
        rows.append(BenchRow("chapter 6 cVAE: diversity within a prompt", q6["diversity"], name))
        fd_target = q6["frechet"] / 2
        rows.append(BenchRow("diffusion: Frechet distance on judge features", q["frechet"], name,
                             f"<= {fd_target:.1f} (half of chapter 6's)" if ds == "fashion_mnist" else None,
                             q["frechet"] <= fd_target if ds == "fashion_mnist" else None))
        rows.append(BenchRow("chapter 6 cVAE: Frechet distance on judge features", q6["frechet"], name))
        # prompts the model cannot serve: familiarity of held-out in-domain prompts vs the documented list
        texts = gm.prompt_set(ds, "heldout_phrasing")[0] + gm.prompt_set(ds, "heldout_synonym")[0]
        fam_in = t2i.check_prompt(*diffusion.token_states(encoder, texts))[0]
        fam_out = t2i.check_prompt(*diffusion.token_states(encoder, text_to_image.OUT_OF_DOMAIN_PROMPTS))[0]
        rows.append(BenchRow("unknown-prompt check: AUROC, held-out in-domain vs out-of-domain prompts",
                             text_to_image.auroc(fam_in, fam_out), name))
        rows.append(BenchRow("unknown-prompt check: share of held-out in-domain prompts called unknown",
                             float((fam_in < t2i.threshold).float().mean()), name))
        rows.append(BenchRow("unknown-prompt check: share of out-of-domain prompts called unknown",
                             float((fam_out < t2i.threshold).float().mean()), name))
        rows.append(BenchRow(f"diffusion: ms per image, 16 images, default {diffusion.RECIPE['sample_steps']} Heun steps "
                             f"({diffusion.network_evaluations(diffusion.RECIPE['sample_steps'])} evaluations)",
                             _ms_per_image(t2i, texts[0]), name))
        rows.append(BenchRow("diffusion: shipped weights' training seconds (denoiser, recorded in the file)",
                             float(t2i.metadata.get("train_seconds", "nan")), name))
        if ds == "fashion_mnist":
            rows += _sweeps(t2i, judge, data, encoder, name, n_per_prompt, pick(1000, 100))
        wall = time.perf_counter() - start
        rows.append(BenchRow("total wall time for the dataset (s)", wall, name, wall_seconds=wall))
    return rows


def _sweeps(t2i, judge, data, encoder, name, n_per_prompt, n_images) -> list:
    """Guidance and sampler sweeps on the shipped model; pooled vs cross-attention on the same budget."""
    from .. import diffusion, generation_metrics as gm, text_to_image
    from ..config import pick
    rows = []
    for s in GUIDANCE_SWEEP:
        sampler = gm.diffusion_sampler(t2i, guidance=s)
        adh = gm.adherence_by_family(sampler, judge, "fashion_mnist", n_per_prompt, ("heldout_phrasing",))
        q = gm.quality(sampler, judge, data, n_images)
        rows.append(BenchRow(f"guidance s={s:g}: adherence, heldout_phrasing", adh["heldout_phrasing"]["adherence"], name))
        rows.append(BenchRow(f"guidance s={s:g}: diversity within a prompt", q["diversity"], name))
    for kind, steps in STEP_SWEEP:
        sampler = gm.diffusion_sampler(t2i, steps=steps, sampler=kind)
        adh = gm.adherence_by_family(sampler, judge, "fashion_mnist", n_per_prompt, ("heldout_phrasing",))
        q = gm.quality(sampler, judge, data, n_images)
        evals = diffusion.network_evaluations(steps, kind)
        rows.append(BenchRow(f"{kind} {steps} steps ({evals} evaluations): adherence, heldout_phrasing",
                             adh["heldout_phrasing"]["adherence"], name))
        rows.append(BenchRow(f"{kind} {steps} steps ({evals} evaluations): Frechet distance", q["frechet"], name))
    # the same codec, captions and number of steps for both; only what the text offers differs
    table = diffusion.TokenTable(data, encoder)
    budget = pick(1500, 30)
    for conditioning in ("pooled", "cross"):
        model, h = diffusion.train_diffusion(data, t2i.codec, table, budget, conditioning, progress=False)
        cand = text_to_image.TextToImage(t2i.codec, model, encoder, table.pooled, table.labels, "fashion_mnist")
        adh = gm.adherence_by_family(gm.diffusion_sampler(cand), judge, "fashion_mnist", n_per_prompt)
        for fam in ("heldout_phrasing", "heldout_synonym"):
            rows.append(BenchRow(f"{conditioning}, {budget} steps: adherence, {fam}", adh[fam]["adherence"], name,
                                 wall_seconds=h["seconds"]))
    return rows

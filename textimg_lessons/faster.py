"""Faster generation (chapter 8): measure where the time of prompt -> image goes, then make it faster and say
what each speed-up costs in quality.

Contents, in the order the chapter uses them (notebook 08_faster_generation.ipynb):

  Timing, time_call, with_threads       section 1, "Measuring properly": warm-up, median and spread, wall
                                        and CPU time, threads
  profile_generation, profile_cvae      section 2, "Where the time goes": text encoder, generator passes,
                                        decoder, each timed on its own
  CachedTokenStates                     section 3, "Caching prompts": token states kept per prompt (LRU)
  quantize_encoder, embedding_cosine    section 4, "int8 language model": dynamic quantisation of MiniLM's
                                        linear layers and its effect on the embeddings
  maybe_compile                         section 5, "torch.compile": compile time, or why it was skipped
  diffusion_config, quality_of,         section 6, "Fewer sampling steps": one table of configurations,
  MEASURE                               each measured the same way
  with_parts, speed_of, pareto_front,   section 8, "Every configuration": speed, the Pareto front, the
  fastest_meeting_bar                   chapter's quality bar

Chapter 7's samplers with fewer steps need no code here: `sample_latents(steps=..., sampler=...)`. The
distilled student of section 7 has its own module, `reflow`.
"""
from __future__ import annotations

import contextlib
import copy
import statistics
import time
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import diffusion, text_to_image
from .config import FullFast, Recipe


# ---------------------------------------------------------------- 1. measuring properly

@dataclass
class Timing:
    """What `time_call` measured: median and interquartile range of wall time, median CPU time (all in ms).

    cpu_ms_median > median_ms means more than one core worked; cpu well below wall means the call waited
    (sleep, disk, another process on the same cores).

    Lesson: 08_faster_generation.ipynb, "1. Measuring properly".
    """

    median_ms: float
    iqr_ms: float
    cpu_ms_median: float
    threads: int
    repeats: int

    def __str__(self) -> str:
        return (f"{self.median_ms:.2f} ms (IQR {self.iqr_ms:.2f}, CPU {self.cpu_ms_median:.2f} ms, "
                f"{self.threads} thread{'s' * (self.threads != 1)}, {self.repeats} runs)")


@contextmanager
def with_threads(n: int | None):
    """Run a block with torch using n CPU threads, then restore the previous setting (n=None: unchanged).

    Lesson: 08_faster_generation.ipynb, "1. Measuring properly".
    """
    if n is None:
        yield torch.get_num_threads()
        return
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive int or None, got {n!r}.")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)


def _sync() -> None:
    """GPU work is asynchronous: wait for it, or the clock stops before the work is done."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_call(fn, *, warmup: int = 2, repeats: int = 7, threads: int | None = None) -> Timing:
    """Call fn() `warmup` times unmeasured, then `repeats` times, each timed on its own (section 1).

    Why by hand and not `torch.utils.benchmark.Timer`: its `timeit(number)` warms up again at every call
    and `blocked_autorange` picks its own number of runs, so neither gives a fixed number of repeats of a
    call that lasts seconds (a whole generation). What it does that matters here is done below: set the
    thread count for the measurement only (`with_threads`) and synchronise CUDA before reading the clock.
    `time.process_time` adds the CPU time of the process, which `torch.utils.benchmark` does not report.

    Lesson: 08_faster_generation.ipynb, "1. Measuring properly".
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable taking no arguments, got {type(fn).__name__}.")
    if not isinstance(warmup, int) or warmup < 0 or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1 (ints), got warmup={warmup!r}, repeats={repeats!r}.")
    walls, cpus = [], []
    with with_threads(threads) as n:
        for _ in range(warmup):  # first calls pay for memory allocation, caches, lazy initialisation
            fn()
        _sync()
        for _ in range(repeats):
            w, c = time.perf_counter(), time.process_time()
            fn()
            _sync()
            walls.append(1000 * (time.perf_counter() - w))
            cpus.append(1000 * (time.process_time() - c))
    q = statistics.quantiles(walls, n=4, method="inclusive") if repeats > 1 else [walls[0]] * 3
    return Timing(statistics.median(walls), q[2] - q[0], statistics.median(cpus), n, repeats)


# ---------------------------------------------------------------- 2. where the time goes

def _stage(timings: dict, name: str, fn):
    """Run fn(), add its wall seconds to timings[name] (synchronised), return its result."""
    _sync()
    start = time.perf_counter()
    out = fn()
    _sync()
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
    return out


@torch.no_grad()
def profile_generation(t2i, prompt: str, n: int = 16, steps: int = diffusion.RECIPE["sample_steps"],
                       guidance: float = diffusion.RECIPE["guidance"], sampler: str = "heun", repeats: int = 3) -> dict:
    """Seconds per call spent in each stage of chapter 7's prompt -> n images (section 2), median of repeats.

    {"text encoder": MiniLM's token states, "denoiser": all the sampler's passes, "decoder": latent ->
    pixels, "passes": network evaluations per image}. One warm-up call first.

    Lesson: 08_faster_generation.ipynb, "2. Where the time goes".
    """
    def once():
        t = {}
        states, mask = _stage(t, "text encoder", lambda: diffusion.token_states(t2i.encoder, [prompt]))
        z = _stage(t, "denoiser", lambda: diffusion.sample_latents(t2i.model, states, mask, n, steps, guidance,
                                                                   sampler, torch.Generator().manual_seed(0)))
        _stage(t, "decoder", lambda: t2i.codec.decode(z.to(t2i.codec.mean.device)).cpu())
        return t
    once()
    runs = [once() for _ in range(repeats)]
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["passes"] = diffusion.network_evaluations(steps, sampler, guidance)
    return out


@torch.no_grad()
def profile_cvae(model, encoder, prompt: str, n: int = 16, guidance: float | None = None, repeats: int = 3) -> dict:
    """The same split for chapter 6's conditional VAE: pooled MiniLM vector, then one decoder pass (two with
    guidance). Its decoder *is* the generator, so "denoiser" is 0 and the passes are counted as decoder.

    Lesson: 08_faster_generation.ipynb, "2. Where the time goes".
    """
    from . import conditional
    w = conditional.RECIPE["guidance"] if guidance is None else guidance

    def once():
        t = {}
        e = _stage(t, "text encoder", lambda: encoder.encode([prompt], use_cache=False))
        _stage(t, "decoder", lambda: conditional.sample(model, e, n, torch.Generator().manual_seed(0), w))
        t["denoiser"] = 0.0
        return t
    once()
    runs = [once() for _ in range(repeats)]
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["passes"] = 2 if w != 1.0 else 1
    return out


# ---------------------------------------------------------------- 3. caching prompts

class CachedTokenStates:
    """prompt -> (token states (S, D), mask (S,)) kept for the `maxsize` most recently used prompts (section 3).

    Chapter 5's PretrainedTextEncoder already caches *pooled* vectors; chapter 7's cross-attention needs every
    token's state, so this caches those. Calling it with a list of prompts returns the same (N, S, D) states
    and (N, S) mask as `diffusion.token_states`, running MiniLM once, in one batch, on the prompts it has not
    seen (misses) and reading the others (hits). The least recently used prompt is dropped when full.

    Lesson: 08_faster_generation.ipynb, "3. Caching prompts".
    """

    def __init__(self, encoder, maxsize: int = 1024):
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive int, got {maxsize!r}.")
        self.encoder, self.maxsize = encoder, maxsize
        self._store: OrderedDict = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        """Forget every prompt (the hit and miss counts stay)."""
        self._store.clear()

    def __call__(self, texts: list):
        from .tokenisers import validate_texts
        texts = validate_texts(texts)
        if not texts:
            raise ValueError("give at least one prompt.")
        todo = list(dict.fromkeys(t for t in texts if t not in self._store))
        self.misses += len(todo)
        self.hits += len(texts) - sum(t in todo for t in texts)
        if todo:
            states, mask = diffusion.token_states(self.encoder, todo)
            for t, s, m in zip(todo, states, mask):
                length = int(m.sum())  # keep only the real tokens; padding depends on the batch
                self._store[t] = (s[:length].clone(), m[:length].clone())
        for t in texts:
            self._store.move_to_end(t)
        found = [self._store[t] for t in texts]
        while len(self._store) > self.maxsize:
            self._store.popitem(last=False)
        S = max(len(m) for _, m in found)
        states = torch.stack([F.pad(s, (0, 0, 0, S - len(s))) for s, _ in found])
        mask = torch.stack([F.pad(m, (0, S - len(m))) for _, m in found])
        return states, mask


@torch.no_grad()
def generate_cached(t2i, cache: CachedTokenStates, prompt: str, n: int = 16,
                    steps: int = diffusion.RECIPE["sample_steps"], guidance: float = diffusion.RECIPE["guidance"],
                    sampler: str = "heun", seed: int = 0) -> torch.Tensor:
    """t2i's images for one prompt with its token states read from `cache` (computed on a miss).

    Lesson: 08_faster_generation.ipynb, "3. Caching prompts".
    """
    states, mask = cache([prompt])
    return t2i.images_for(states, mask, n, steps, guidance, sampler, torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- 4. an int8 language model

QUANTIZATION_API = "torch.ao.quantization.quantize_dynamic"


def quantize_encoder(encoder):
    """A copy of a PretrainedTextEncoder whose linear layers run in int8 (dynamic quantisation, section 4).

    Weights are stored as int8 with one scale per output channel (one scale per matrix, the default, gave
    embeddings with cosine down to 0.88 to the float32 ones on the course's prompts; per channel, 0.95);
    activations are quantised on the fly at each call. The API used,
    `torch.ao.quantization.quantize_dynamic`, is in both the installed torch and Colab's; torch marks it as
    deprecated in favour of the separate `torchao` package (not a dependency of this course), so its
    deprecation warning is silenced here and the chapter measures the result instead. The copy runs on the
    CPU (quantised kernels are CPU kernels), has its own empty embedding cache and never reads or writes the
    disk cache of the float32 model, which would hand back float32 embeddings.
    Raises RuntimeError with the reason when this torch build cannot quantise.

    Lesson: 08_faster_generation.ipynb, "4. An int8 language model".
    """
    from torch import nn
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as e:
        raise RuntimeError(f"this torch has no {QUANTIZATION_API} ({e}); install torchao for int8 layers.") from None
    q = copy.copy(encoder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            q.model = quantize_dynamic(copy.deepcopy(encoder.model).cpu().eval(),
                                       {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
        except Exception as e:  # missing quantised engine on some builds
            raise RuntimeError(f"{QUANTIZATION_API} failed here ({type(e).__name__}: {e}).") from None
    q.device = torch.device("cpu")
    q._memory, q.stats = {}, {"computed": 0, "memory_hits": 0, "disk_hits": 0}
    q.disk_cache, q._disk_loaded = False, True
    q.identity = f"{encoder.identity}-int8"
    return q


def fastest_encoder(encoder) -> tuple:
    """(encoder, label): `encoder` with int8 linear layers when this torch can quantise them, else `encoder`
    itself with the reason in the label. What `textimg-lessons generate` runs its default model with.

    Lesson: 08_faster_generation.ipynb, "4. An int8 language model".
    """
    try:
        return quantize_encoder(encoder), "int8 MiniLM"
    except RuntimeError as e:
        return encoder, f"float32 MiniLM ({e})"


def embedding_cosine(encoder_a, encoder_b, texts: list) -> torch.Tensor:
    """Cosine between two encoders' pooled embeddings of each text (N,), computed fresh (no cache).

    Lesson: 08_faster_generation.ipynb, "4. An int8 language model".
    """
    a = encoder_a.encode(texts, use_cache=False)
    b = encoder_b.encode(texts, use_cache=False)
    return F.cosine_similarity(a, b, dim=-1)


def parameter_megabytes(module) -> float:
    """Size of a module's weights in MB as stored in memory (quantised layers keep theirs in packed params).

    Lesson: 08_faster_generation.ipynb, "4. An int8 language model".
    """
    import io
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getbuffer().nbytes / 1e6


# ---------------------------------------------------------------- 5. torch.compile

@contextmanager
def _empty_compile_cache():
    """Point inductor at a new, empty cache folder for the block (removed when the process exits): PyTorch
    keeps compiled kernels on disk between runs, so a second run would otherwise time a warm compile that a
    student's first run never sees. Its "no CUDA runtime" notice on CPU-only machines is silenced too."""
    import atexit
    import logging
    import os
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="textimg-compile-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)   # the compiled kernels are used until then
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
        if before is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


def maybe_compile(module, *example_args, backend: str | object = "inductor", cold: bool = True, **example_kwargs):
    """torch.compile(module) and one call on the example inputs, which is when compilation happens (section 5).

    Returns (compiled module, compile seconds, None), or (module unchanged, 0.0, reason) when no compiler
    works here (no C compiler, an unsupported platform, an error in the backend): the reason says which.
    cold=True compiles with an empty kernel cache, so the seconds are those of a first compile on a machine.
    A compiled module recompiles for each new input shape, so time it on the shapes it was compiled for.

    Lesson: 08_faster_generation.ipynb, "5. `torch.compile`".
    """
    if not hasattr(torch, "compile"):
        return module, 0.0, f"torch {torch.__version__} has no torch.compile"
    start = time.perf_counter()
    try:
        with (_empty_compile_cache() if cold else contextlib.nullcontext()):
            compiled = torch.compile(module, backend=backend)
            with torch.no_grad():
                compiled(*example_args, **example_kwargs)
    except Exception as e:
        root = getattr(e, "inner_exception", None) or e.__cause__ or e   # the backend's own error, if wrapped
        lines = [ln.strip() for ln in str(root).splitlines() if ln.strip()]
        first = f"{type(root).__name__}: {lines[0][:200] if lines else ''}"
        try:
            torch._dynamo.reset()  # forget the failed attempt so later calls do not retry it
        except Exception:
            pass
        return module, 0.0, f"torch.compile failed ({type(e).__name__}): {first}"
    return compiled, time.perf_counter() - start, None


# ---------------------------------------------------------------- 8. configurations, speed, quality

def with_parts(t2i, model=None, encoder=None):
    """A TextToImage that shares t2i's parts except the denoiser and/or the text encoder given.

    Lesson: 08_faster_generation.ipynb, "7. A distilled few-step student".
    """
    out = text_to_image.TextToImage(t2i.codec, model if model is not None else t2i.model,
                                encoder if encoder is not None else t2i.encoder, t2i.known_pooled,
                                t2i.known_labels, t2i.dataset, t2i.threshold)
    out.metadata = dict(getattr(t2i, "metadata", {}))
    return out


def speed_of(sample, prompts: list, threads_list=(1, 2), batch: int = 64, warmup: int = 1, repeats: int = 5) -> dict:
    """Latency and throughput of a prompt -> images function `sample(texts, n_per_prompt) -> images`.

    For each thread count n: "ms_batch1_{n}t" (one prompt, one image: what one user waits) and
    "img_s_batch_{n}t" (`batch` different prompts, one image each, in one call: what a server delivers).

    Lesson: 08_faster_generation.ipynb, "8. Every configuration".
    """
    prompts = list(prompts)
    if not prompts:
        raise ValueError("give at least one prompt.")
    prompts = (prompts * (batch // len(prompts) + 1))[:batch]
    out = {}
    for n in threads_list:
        one = time_call(lambda: sample(prompts[:1], 1), warmup=warmup, repeats=repeats, threads=n)
        many = time_call(lambda: sample(prompts, 1), warmup=warmup, repeats=max(2, repeats // 2), threads=n)
        out[f"ms_batch1_{n}t"] = one.median_ms
        out[f"img_s_batch_{n}t"] = batch / (many.median_ms / 1000)
    return out


def pareto_front(points) -> list:
    """Indices of the (ms per image, adherence) points that no other point beats on both: nothing is faster
    *and* at least as good, or at least as fast *and* better. Sorted from fastest to slowest (section 8).

    Lesson: 08_faster_generation.ipynb, "8. Every configuration".
    """
    pts = [(float(ms), float(q)) for ms, q in points]
    front = []
    for i, (ms, q) in enumerate(pts):
        dominated = any(m2 <= ms and q2 >= q and (m2 < ms or q2 > q) for j, (m2, q2) in enumerate(pts) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (pts[i][0], -pts[i][1]))


def diffusion_config(t2i, steps: int, guidance: float, sampler: str) -> dict:
    """One configuration of a chapter-7 generator for the comparison table (section 6 onwards):
    {"sampler": a generation_metrics Sampler, "evaluations": network evaluations per image, "generate": the
    keyword arguments of t2i.generate that reproduce it, with "gen" the generator itself}.

    Lesson: 08_faster_generation.ipynb, "6. Fewer sampling steps".
    """
    from . import generation_metrics as gm
    return {"sampler": gm.diffusion_sampler(t2i, steps, guidance, sampler),
            "evaluations": diffusion.network_evaluations(steps, sampler, guidance),
            "generate": dict(gen=t2i, steps=steps, guidance=guidance, sampler=sampler)}


# How every configuration's quality is measured, the same for all (chapter 7's evaluation sizes in full mode).
MEASURE = Recipe(
    n_per_prompt=FullFast(20, 1),     # images per held-out phrasing for adherence
    n_images=FullFast(2000, 32),      # images for the Frechet distance
    per_prompt=FullFast(16, 2),       # images per prompt for diversity (computed by generation_metrics.quality)
)


def quality_of(sampler, judge, data, n_per_prompt: int | None = None, n_images: int | None = None) -> dict:
    """{"adherence", "confident"} on the held-out phrasings and {"frechet"} of one configuration, with the
    same settings (MEASURE) for every configuration.

    Lesson: 08_faster_generation.ipynb, "6. Fewer sampling steps".
    """
    from . import generation_metrics as gm
    adh = gm.adherence_by_family(sampler, judge, data.name, n_per_prompt or MEASURE["n_per_prompt"],
                                 ("heldout_phrasing",))
    fd = gm.quality(sampler, judge, data, n_images or MEASURE["n_images"], per_prompt=MEASURE["per_prompt"])["frechet"]
    return {"adherence": adh["heldout_phrasing"]["adherence"], "confident": adh["heldout_phrasing"]["confident"],
            "frechet": fd}


def fastest_meeting_bar(results: dict, default: str, max_evaluations: int = 8, max_drop: float = 0.05,
                        min_speedup: float = 5.0, speed_key: str = "ms_batch1_1t"):
    """Name of the fastest configuration with <= max_evaluations per image, adherence within max_drop of the
    default's and at least min_speedup times faster than it (chapter 8's target); None if there is none.

    Lesson: 08_faster_generation.ipynb, "The targets, and what".
    """
    ref = results[default]
    ok = [n for n, r in results.items() if n != default and r.get("diffusion", True)
          and r["evaluations"] <= max_evaluations and r["adherence"] >= ref["adherence"] - max_drop
          and ref[speed_key] / r[speed_key] >= min_speedup]
    return min(ok, key=lambda n: results[n][speed_key]) if ok else None

"""Chapter 5's benchmark: tiny GPT quality and training time, encoder throughput, synonym retrieval."""
from __future__ import annotations

import math
import time

from .report import BenchRow


def bench() -> list:
    from .. import captions, config
    from ..pretrained import PretrainedTextEncoder
    from ..text import (TinyTextEncoder, cache_demo_prompts, default_corpus, entropy_floor, perplexity,
                        synonym_retrieval, train_tiny_gpt, validation_sets)
    t0 = time.perf_counter()
    corpus = default_corpus()
    model, tok, hist = train_tiny_gpt(corpus, progress=False)
    t_gpt = time.perf_counter() - t0
    floor = math.exp(entropy_floor(tok))
    target = config.pick(1.05, 1.5)  # within 5% of the floor in full mode
    rows = [
        BenchRow("tiny GPT val loss (nats/token)", hist["val_loss"][-1], "captions", wall_seconds=t_gpt),
        BenchRow("best possible perplexity (generator entropy)", floor, "captions", wall_seconds=0.0),
        BenchRow("tiny GPT val perplexity", hist["val_perplexity"], "captions", f"<= {target} x floor",
                 hist["val_perplexity"] <= target * floor, t_gpt),
        BenchRow("tiny GPT train seconds", hist["train_seconds"], "captions", wall_seconds=t_gpt),
    ]
    # the validation captions above also occur in the training captions; new templates of the same words do not
    t0 = time.perf_counter()
    unseen = perplexity(model, tok, validation_sets(corpus)["unseen templates"])
    rows.append(BenchRow("tiny GPT perplexity on unseen templates", unseen, "captions",
                         "> val perplexity (memorising shows as a gap)", unseen > hist["val_perplexity"],
                         time.perf_counter() - t0))
    t0 = time.perf_counter()
    enc = PretrainedTextEncoder(disk_cache=False)  # time the network and the memory cache, not disk writes
    t_load = time.perf_counter() - t0
    prompts = cache_demo_prompts()
    where = f"{len(prompts)} unique captions"
    t0 = time.perf_counter()
    enc.encode(prompts, use_cache=False)
    t_nocache = time.perf_counter() - t0
    rows.append(BenchRow("pretrained encoder prompts/s (no cache)", len(prompts) / t_nocache, where,
                         wall_seconds=t_nocache + t_load))
    enc.encode(prompts)
    t0 = time.perf_counter()
    enc.encode(prompts)
    t_cache = time.perf_counter() - t0
    rows.append(BenchRow("pretrained encoder prompts/s (cached)", len(prompts) / max(t_cache, 1e-9), where,
                         wall_seconds=t_cache))
    tiny = TinyTextEncoder(model, tok)
    for ds in captions.DATASETS:
        for label, e in (("pretrained", enc), ("tiny GPT", tiny)):
            t0 = time.perf_counter()
            score = synonym_retrieval(e, ds)
            target = ">= 0.3" if label == "pretrained" else None  # 3x chance
            rows.append(BenchRow(f"synonym retrieval, {label} encoder", score, ds, target,
                                 (score >= 0.3) if target else None, time.perf_counter() - t0))
    return rows

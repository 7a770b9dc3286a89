"""`textimg-lessons bench CHAPTER`: measure a chapter's headline numbers with the notebook's recipe.

Each chapter module has a `bench()` that trains/evaluates as its notebook does and returns a list of
rows {"metric", "value", "dataset", "target" (text or None), "met" (bool or None)}. This module adds
wall time, device, mode and versions, and writes JSON. Speed and quality are measured here, not in tests.
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import time
from pathlib import Path

import torch

CHAPTERS = {
    "01_backprop": "textimg_lessons.backprop",
    "02_cnn": "textimg_lessons.cnn",
    "03_gan": "textimg_lessons.gan",
    "04_vae": "textimg_lessons.vae",
    "05_language_models": "textimg_lessons.text",
    "06_text_to_image": "textimg_lessons.conditional",
}


def available() -> list:
    return [c for c, m in CHAPTERS.items() if importlib.util.find_spec(m) is not None
            and hasattr(importlib.import_module(m), "bench")]


def run(chapter: str, fast: bool = False, json_path: str | None = None) -> dict:
    if chapter not in CHAPTERS:
        raise SystemExit(f"Unknown chapter {chapter!r}. Choose one of: {', '.join(CHAPTERS)}.")
    if fast:
        os.environ["TEXTIMG_FAST"] = "1"
    module = importlib.import_module(CHAPTERS[chapter])
    if not hasattr(module, "bench"):
        raise SystemExit(f"Chapter {chapter} has no benchmark yet; available: {', '.join(available())}.")
    from .config import get_device, fast_mode
    device = get_device()
    start = time.perf_counter()
    rows = module.bench()
    wall = time.perf_counter() - start
    mode = "fast" if fast_mode() else "full"
    report = {
        "chapter": chapter, "mode": mode, "device": str(device), "wall_seconds": round(wall, 2),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
        "machine": platform.machine(), "results": [],
    }
    for row in rows:
        report["results"].append({**row, "wall_seconds": round(row.get("wall_seconds", wall), 2),
                                  "device": str(device), "mode": mode})
    text = json.dumps(report, indent=2)
    if json_path:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return report


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure a chapter's headline metrics and wall time; write JSON")
    p.add_argument("chapter", choices=list(CHAPTERS), help="which chapter's recipe to run")
    p.add_argument("--fast", action="store_true", help="fast mode (tiny data and epochs), as in the tests")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the report to PATH")
    p.set_defaults(func=lambda a: _print(run(a.chapter, a.fast, a.json_path)))


def _print(report: dict) -> int:
    print(f"{report['chapter']} ({report['mode']} mode, {report['device']}, {report['threads']} threads): "
          f"{report['wall_seconds']:.1f} s")
    for r in report["results"]:
        status = "" if r.get("met") is None else ("  [met]" if r["met"] else "  [NOT met]")
        target = f" (target {r['target']})" if r.get("target") else ""
        print(f"  {r['metric']} on {r['dataset']}: {r['value']:.4g}{target}{status}")
    return 0

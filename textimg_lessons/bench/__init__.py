"""`textimg-lessons bench CHAPTER`: measure a chapter's headline numbers with the notebook's recipe.

One file per chapter (`chNN_topic.py`) holds a `bench()` that trains and evaluates as its notebook does and
returns a list of `BenchRow`; `report.py` adds wall time, device, mode and versions and writes the JSON.
Speed and quality are measured here, not in the tests.

Adding a chapter is one line in CHAPTERS below (the file is imported only when its chapter runs).
"""
from __future__ import annotations

from .report import BenchReport, BenchRow, measure, run  # noqa: F401

CHAPTERS = {
    "01_backprop": f"{__name__}.ch01_backprop",
    "02_cnn": f"{__name__}.ch02_cnn",
    "03_gan": f"{__name__}.ch03_gan",
    "04_vae": f"{__name__}.ch04_vae",
    "05_language_models": f"{__name__}.ch05_language_models",
    "06_text_to_image": f"{__name__}.ch06_text_to_image",
    "06_seeds": f"{__name__}.ch06_seeds",
    "07_diffusion": f"{__name__}.ch07_diffusion",
    "08_faster_generation": f"{__name__}.ch08_faster_generation",
}

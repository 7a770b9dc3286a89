"""The benchmark's result types and runner: one `BenchRow` per measured claim, one `BenchReport` per run.

The JSON written by `textimg-lessons bench CHAPTER --json PATH` is `BenchReport.to_dict()`: the run's
chapter, mode, device, wall time and versions, and "results", one object per row with the BenchRow fields.
Nothing here imports torch until a chapter actually runs.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class BenchRow:
    """One measured number: what (metric), how much (value), against which target and whether it was met.

    wall_seconds is the time the measurement took (None: the runner fills in the whole run's wall time);
    device and mode are filled in by the runner.
    """
    metric: str
    value: float
    dataset: str
    target: str | None = None
    met: bool | None = None
    wall_seconds: float | None = None
    device: str = ""
    mode: str = ""

    def __post_init__(self):
        self.value = float("nan") if self.value is None else float(self.value)
        self.met = None if self.met is None else bool(self.met)

    @classmethod
    def from_dict(cls, row: dict) -> "BenchRow":
        """A row from a dict with (at least) metric, value and dataset; keys that are not fields are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(row) - names
        if unknown:
            raise ValueError(f"benchmark row {row.get('metric')!r} has unknown fields {sorted(unknown)}; "
                             f"a row has only {sorted(names)}.")
        return cls(**row)

    def status(self) -> str:
        return "" if self.met is None else ("  [met]" if self.met else "  [NOT met]")


@dataclass
class BenchReport:
    """A chapter's benchmark run: where and how it ran, and its rows."""
    chapter: str
    mode: str
    device: str
    wall_seconds: float
    torch: str
    threads: int
    python: str
    machine: str
    results: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "results"},
                "results": [asdict(r) for r in self.results]}

    def summary(self) -> str:
        lines = [f"{self.chapter} ({self.mode} mode, {self.device}, {self.threads} threads): "
                 f"{self.wall_seconds:.1f} s"]
        for r in self.results:
            target = f" (target {r.target})" if r.target else ""
            value = "nan" if math.isnan(r.value) else f"{r.value:.4g}"
            lines.append(f"  {r.metric} on {r.dataset}: {value}{target}{r.status()}")
        return "\n".join(lines)


def chapter_module(chapter: str):
    """The module that benchmarks `chapter` (imported now: this is where torch is loaded)."""
    from . import CHAPTERS
    if chapter not in CHAPTERS:
        raise SystemExit(f"Unknown chapter {chapter!r}. Choose one of: {', '.join(CHAPTERS)}.")
    return importlib.import_module(CHAPTERS[chapter])


def measure(chapter: str, fast: bool = False) -> BenchReport:
    """Run a chapter's bench() and wrap its rows with wall time, device and mode."""
    if fast:
        os.environ["TEXTIMG_FAST"] = "1"
    module = chapter_module(chapter)
    import torch

    from ..config import fast_mode, get_device
    device = str(get_device())
    start = time.perf_counter()
    rows = module.bench()
    wall = time.perf_counter() - start
    mode = "fast" if fast_mode() else "full"
    report = BenchReport(chapter, mode, device, round(wall, 2), torch.__version__, torch.get_num_threads(),
                         platform.python_version(), platform.machine())
    for row in rows:
        row = row if isinstance(row, BenchRow) else BenchRow.from_dict(row)
        row.wall_seconds = round(wall if row.wall_seconds is None else row.wall_seconds, 2)
        row.device, row.mode = device, mode
        report.results.append(row)
    return report


def write_json(report: BenchReport, json_path) -> Path:
    path = Path(json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return path


def run(chapter: str, fast: bool = False, json_path: str | None = None) -> dict:
    """measure() and, with json_path, write the report there; returns the report as its JSON dict."""
    report = measure(chapter, fast)
    if json_path:
        write_json(report, json_path)
    return report.to_dict()

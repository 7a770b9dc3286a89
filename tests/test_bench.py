"""The benchmark package: registry, typed rows, the JSON report (chapter runs are measured, not tested)."""
import importlib
import json
import math
import sys
import types

import pytest

from textimg_lessons import bench
from textimg_lessons.bench.report import BenchReport, BenchRow


def test_every_registered_chapter_has_a_bench_function():
    for chapter, module in bench.CHAPTERS.items():
        assert module.startswith("textimg_lessons.bench.ch" + chapter[:2]), module
        assert callable(importlib.import_module(module).bench)


def test_no_teaching_module_keeps_a_bench_function():
    for name in ("backprop", "cnn", "gan", "vae", "text", "conditional"):
        assert not hasattr(importlib.import_module(f"textimg_lessons.{name}"), "bench"), name


def test_rows_are_typed_and_unknown_fields_are_an_error():
    row = BenchRow("accuracy", 0.9, "mnist", ">= 0.8", True, 1.5)
    assert row.value == 0.9 and row.met is True
    assert math.isnan(BenchRow("not reached", None, "mnist").value)
    with pytest.raises(ValueError, match="unknown fields"):
        BenchRow.from_dict({"metric": "m", "value": 1, "dataset": "d", "retrained": False})


def test_adding_a_chapter_is_one_registry_line(tmp_path, monkeypatch):
    mod = types.ModuleType("fake_ch07")
    mod.bench = lambda: [BenchRow("steps to 80%", float("nan"), "mnist"),
                         BenchRow("adherence", 0.85, "mnist", ">= 0.8", True, 2.0)]
    monkeypatch.setitem(sys.modules, "fake_ch07", mod)
    monkeypatch.setitem(bench.CHAPTERS, "07_diffusion", "fake_ch07")
    out = tmp_path / "r.json"
    report = bench.run("07_diffusion", fast=True, json_path=str(out))
    saved = json.loads(out.read_text())
    assert saved["results"][1] == {"metric": "adherence", "value": 0.85, "dataset": "mnist", "target": ">= 0.8",
                                   "met": True, "wall_seconds": 2.0, "device": "cpu", "mode": "fast"}
    assert saved["results"][0]["wall_seconds"] == saved["wall_seconds"]  # no time of its own: the run's
    assert set(saved) == {"chapter", "mode", "device", "wall_seconds", "torch", "threads", "python", "machine",
                          "results"}
    assert report["chapter"] == "07_diffusion"


def test_report_summary_marks_targets():
    report = BenchReport("01_backprop", "fast", "cpu", 1.0, "2", 1, "3.11", "x86_64",
                         [BenchRow("acc", 0.5, "mnist", ">= 0.9", False, 1.0)])
    assert "[NOT met]" in report.summary() and "(target >= 0.9)" in report.summary()


def test_chapter_1_bench_in_fast_mode_returns_its_documented_rows():
    from textimg_lessons.bench import ch01_backprop
    rows = ch01_backprop.bench()
    assert [r.metric for r in rows] == ["test_accuracy", "train_seconds"]
    assert all(isinstance(r, BenchRow) for r in rows)
    assert rows[0].target == ">= 0.75" and rows[0].met is True and rows[0].value > 0.75

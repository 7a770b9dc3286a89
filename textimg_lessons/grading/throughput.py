"""`grading-throughput`: how many submissions per minute `autograde` grades, for planning a large class.

Releases one chapter into a scratch course, makes N submissions from its master notebook (the demo
variants in turn: correct, partial, wrong, broken), and grades them all once per --jobs value, writing the
timings as JSON. It uses every CPU it is given: run it on an otherwise idle machine.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

from .layout import default_notebooks_dir


def measure(chapter="01_backprop", n=50, jobs_list=(1, 2), timeout=300, notebooks_dir=None, log=print,
            on_run=None) -> dict:
    """Timings of `autograde` on n generated submissions, once per jobs value; `on_run(result so far)` is
    called after each (so a long measurement leaves its first numbers even if stopped)."""
    import nbformat
    from .autograding import autograde
    from .collecting import collect
    from .demo import DEMO_VARIANTS, demo_submission
    from .releasing import release
    from .reports import gradebook_rows
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    runs, tables = [], []
    with tempfile.TemporaryDirectory(prefix="textimg-throughput-") as tmp:
        course, drop = Path(tmp) / "course", Path(tmp) / "drop"
        release(course, [chapter], notebooks_dir, log=lambda *a: None)
        master = nbformat.read(str(notebooks_dir / f"{chapter}.ipynb"), as_version=4)
        variants = list(DEMO_VARIANTS)
        for i in range(n):
            path = drop / f"student{i:03d}_{chapter}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(demo_submission(master, variants[i % len(variants)]), str(path))
        collect(drop, course, log=lambda *a: None)
        for jobs in jobs_list:
            start = time.perf_counter()
            results = autograde(course, timeout=timeout, jobs=jobs, log=lambda *a: None)
            seconds = time.perf_counter() - start
            graded = sum(r["status"] == "graded" for r in results.values())
            tables.append(gradebook_rows(course))
            runs.append({"jobs": jobs, "seconds": round(seconds, 1), "graded": graded,
                         "submissions_per_minute": round(60 * len(results) / seconds, 2)})
            log(f"{jobs} job(s): {len(results)} submissions in {seconds:.0f} s = "
                f"{runs[-1]['submissions_per_minute']} per minute ({graded} graded)")
            if on_run is not None:
                on_run(_summary(chapter, n, timeout, runs, tables))
    return _summary(chapter, n, timeout, runs, tables)


def _summary(chapter, n, timeout, runs, tables) -> dict:
    from . import sandbox
    return {"chapter": chapter, "submissions": n, "cell_timeout_s": timeout, "runs": runs,
            "same_grades_for_every_jobs_value": all(t == tables[0] for t in tables),
            "cpu_count": os.cpu_count(), "sandboxed": sandbox.sandbox_problem() is None,
            "kernel_env": {"TEXTIMG_FAST": "1", "TEXTIMG_OFFLINE": "1"}, "python": platform.python_version()}


def main(args) -> int:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(result):
        out.write_text(json.dumps(result, indent=1) + "\n")
    write(measure(args.chapter, args.submissions, args.jobs or [1, 2], args.timeout, on_run=write))
    print(f"wrote {out}")
    return 0

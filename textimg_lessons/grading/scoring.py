"""Scores from what the grader saw: each test's outcome read from the executed notebook, outside the kernel.

A test scores its points only when its visible and graded cells ran without an error and printed this
run's proof lines, its probe ran and found nothing, and (for exercises that may not call some course
functions) no such call was recorded. Everything else scores 0 with a flag saying why.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .instrument import inserted_kind
from .notebook import HIDDEN_BEGIN, grade_id, is_test_cell


@dataclass
class TestOutcome:
    """What one graded test did, as the grader recorded it."""
    gid: str
    passed: bool = False
    visible_error: dict | None = None    # the visible part's error output (shown in feedback)
    graded_error: dict | None = None     # the graded cell's error (never shown: it may be a hidden test's)
    visible_text: str = ""               # what the visible part printed (proof lines removed)
    split: bool = False                  # the test had a separate visible cell
    hidden: bool = False                 # the test has hidden parts
    flags: list = field(default_factory=list)


def _gid_of(cell, kind):
    return grade_id(cell) if kind is None else cell.get("id", "").split("-", 2)[-1]


def _stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _first_error(cell):
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    timeouts = [o for o in errors if o.get("ename") == "CellTimeoutError"]
    return (timeouts or errors or [None])[0]


def _proof_lines(text: str, token: str) -> list:
    """[(kind, gid, payload)] for the grader's lines in `text`."""
    found = []
    for line in text.splitlines():
        if line.startswith(token + "|"):
            parts = line.split("|", 3)
            found.append((parts[1], parts[2] if len(parts) > 2 else "", parts[3] if len(parts) > 3 else ""))
    return found


def without_proof(text: str, token: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(token + "|"))


def read_outcomes(nb, token: str) -> dict:
    """grade_id -> TestOutcome for every graded test cell of an executed, instrumented notebook."""
    outcomes, probes, reports, visible_ok = {}, {}, {}, {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kind = inserted_kind(cell)
        if kind is None and not is_test_cell(cell):
            continue
        gid = _gid_of(cell, kind)
        text = _stream_text(cell)
        lines = _proof_lines(text, token)
        outcome = outcomes.setdefault(gid, TestOutcome(gid))
        if kind == "probe":
            found = [json.loads(p) for k, g, p in lines if k == "probe" and g == gid]
            probes[gid] = found[0] if found else None
        elif kind == "report":
            found = [json.loads(p) for k, g, p in lines if k == "report" and g == gid]
            reports[gid] = found[0] if found else None
        elif kind == "visible":
            outcome.split = True
            outcome.visible_error = _first_error(cell)
            outcome.visible_text = without_proof(text, token)
            visible_ok[gid] = outcome.visible_error is None and ("visible", gid, "") in lines
        else:
            outcome.graded_error = _first_error(cell)
            outcome.hidden = outcome.split or HIDDEN_BEGIN in cell.source
            if not outcome.split:
                outcome.visible_error = outcome.graded_error
                outcome.visible_text = without_proof(text, token)
            outcome.passed = outcome.graded_error is None and ("passed", gid, "") in lines
    for gid, outcome in outcomes.items():
        _judge(outcome, probes.get(gid, None), gid in probes, reports.get(gid), gid in reports,
               visible_ok.get(gid, True))
    return outcomes


def _judge(outcome: TestOutcome, probe, probed: bool, report, recorded: bool, visible_ok: bool) -> None:
    gid = outcome.gid
    ran_clean = outcome.graded_error is None and (not outcome.split or outcome.visible_error is None)
    if ran_clean and not (outcome.passed and visible_ok):
        outcome.flags.append(f"no-proof:{gid}")  # no error, yet the test did not run as written
    outcome.passed = outcome.passed and visible_ok
    if probed and probe is None:
        outcome.flags.append(f"integrity-probe-missing:{gid}")
    for finding in probe or []:
        outcome.flags.append(finding)
    if recorded:
        if report is None or not report.get("intact", False):
            outcome.flags.append(f"forbidden-call:{gid}:recording stopped")
        for target in (report or {}).get("calls", []):
            outcome.flags.append(f"forbidden-call:{gid}:{target}")
    if (probed and probe != []) or any(f.startswith("forbidden-call:") for f in outcome.flags):
        outcome.passed = False


def scores_and_flags(outcomes: dict, maxima: dict) -> tuple:
    """({grade_id: points}, sorted flags) from the outcomes and each test's maximum."""
    scores = {gid: (maxima[gid] if outcomes.get(gid) and outcomes[gid].passed else 0.0) for gid in maxima}
    flags = sorted({f for o in outcomes.values() for f in o.flags})
    return scores, flags

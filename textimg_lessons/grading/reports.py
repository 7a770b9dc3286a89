"""`export` and `feedback`: the gradebook as a CSV for the instructor, and one HTML page per student.

Feedback shows the visible tests and their messages only: hidden-test source is cut out, and what hidden
tests print or raise is never shown.
"""
from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path

from . import gradebook
from .layout import course_folder, gradebook_url, load_flags, read_release, submissions
from .notebook import grade_id, graded_ids, is_test_cell, strip_hidden

CSV_COLUMNS = ["student", "chapter", "exercise", "points", "max_points", "flags"]


def fmt_points(x) -> str:
    return f"{float(x):g}"


def _scores(gb, chapter, student) -> tuple:
    """({grade_id: the grader's score}, flags for manual scores set since): export and feedback use only the
    scores autograde computed; a manual score (nbgrader's formgrader, or anything else that wrote one) is
    reported, never silently added."""
    from nbgrader.api import MissingEntry
    try:
        sub = gb.find_submission_notebook(chapter, chapter, student)
    except MissingEntry:
        return None, ["not-graded"]
    scores = {g.name: g.auto_score for g in sub.grades}
    manual = [f"manual-score-ignored:{g.name}={g.manual_score:g}" for g in sub.grades if g.manual_score is not None]
    return scores, manual


def _open_gradebook(course: Path):
    from nbgrader.api import Gradebook
    gradebook.require(course)
    return Gradebook(gradebook_url(course))


def gradebook_rows(course) -> list:
    """Rows (dicts with CSV_COLUMNS) for every submission in submitted/, one per graded test cell."""
    course = course_folder(course)
    flags = load_flags(course)
    rows = []
    with _open_gradebook(course) as gb:
        for student, chapter in submissions(course):
            gradebook.require_chapter(gb, course, chapter)
            rel = read_release(course, chapter)
            maxima = {g.name: g.max_score for g in gb.find_notebook(chapter, chapter).grade_cells}
            info = flags.get(f"{student}/{chapter}")
            if info is None:
                status, sflags = "not-graded", ["not-graded"]
            else:
                status, sflags = info["status"], list(info["flags"])
            scores = {}
            if status == "graded":
                scores, extra = _scores(gb, chapter, student)
                scores, sflags = scores or {}, sflags + extra
            for gid in graded_ids(rel):
                rows.append({"student": student, "chapter": chapter, "exercise": gid,
                             "points": fmt_points(scores.get(gid) or 0),
                             "max_points": fmt_points(maxima.get(gid, 0)),
                             "flags": "; ".join(sflags)})
    return rows


def export(course, csv_path, force=False, log=print) -> int:
    rows = gradebook_rows(course)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(csv_path)
    if path.exists():
        if path.read_text() == buf.getvalue():
            log(f"{path} is already up to date ({len(rows)} rows)")
            return 0
        if not force:
            log(f"{path} exists with different content; not overwriting it. Use --force or another path.")
            return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue())
    log(f"wrote {path} ({len(rows)} rows)")
    return 0


ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _result(outcome, score, max_score) -> tuple:
    """(result text, visible printed text) of one test for the feedback page. Only the visible part's output
    and error are ever shown; what the graded cell printed or raised may come from a hidden test."""
    if outcome is None:
        return "not run: see the notes above", ""
    hidden = outcome.hidden
    shown = outcome.split or not hidden
    error = outcome.visible_error if shown else None
    text = outcome.visible_text if shown else ""
    if error is not None and error.get("ename") == "CellTimeoutError":
        result = "timed out: the test did not finish within the time limit"
    elif error is not None:
        msg = ANSI_RE.sub("", f"{error.get('ename')}: {error.get('evalue')}")
        result = "failed: " + (msg if len(msg) <= 2000 else msg[:2000] + " ...")
    elif outcome.graded_error is not None and outcome.graded_error.get("ename") == "CellTimeoutError":
        result = "timed out: the test did not finish within the time limit"
    elif outcome.graded_error is not None:
        result = "a hidden test failed" if hidden else "failed"
    elif not outcome.passed or (score is not None and max_score and score < max_score):
        result = "not counted: " + ("; ".join(outcome.flags) or "the grader could not confirm that this test ran")
    else:
        result = "passed"
    text = ANSI_RE.sub("", text)
    if len(text) > 4000:
        text = text[:4000] + "\n... (output shortened)"
    return result, text


FEEDBACK_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
pre{background:#f6f6f6;padding:.6rem;overflow-x:auto}.passed{color:#17702a}.failed{color:#a11}"""


def feedback_html(student, chapter, release_nb, scores, maxima, flags, outcomes=None) -> str:
    """One student's feedback page: score per exercise, visible tests and their messages only.
    Without outcomes (the submission could not be graded) every test shows as not graded."""
    e = html.escape
    total, total_max = sum(scores.get(g) or 0 for g in maxima), sum(maxima.values())
    rows, details = [], []
    for cell in release_nb.cells:
        gid = grade_id(cell)
        if not (is_test_cell(cell) and gid in maxima):
            continue
        result, stdout = _result(outcomes.get(gid), scores.get(gid), maxima[gid]) if outcomes is not None \
            else ("not graded: see the notes above", "")
        cls = "passed" if result == "passed" else "failed"
        rows.append(f"<tr><td>{e(gid)}</td><td>{fmt_points(scores.get(gid) or 0)}</td>"
                    f"<td>{fmt_points(maxima[gid])}</td><td class={cls}>{e(result)}</td></tr>")
        visible = strip_hidden(cell.source, note="# (hidden tests run here; they are not shown)")
        details.append(f"<h3>{e(gid)}: <span class={cls}>{e(result)}</span></h3>"
                       f"<p>Visible test:</p><pre>{e(visible)}</pre>"
                       + (f"<p>Output:</p><pre>{e(stdout)}</pre>" if stdout.strip() else ""))
    notes = "".join(f"<li>{e(f)}</li>" for f in flags)
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{e(chapter)} feedback for {e(student)}</title>"
            f"<style>{FEEDBACK_CSS}</style></head><body><h1>{e(chapter)}: feedback for {e(student)}</h1>"
            f"<p><b>Score: {fmt_points(total)} / {fmt_points(total_max)}</b></p>"
            + (f"<p>Notes from the grader:</p><ul>{notes}</ul>" if notes else "")
            + "<table><tr><th>exercise</th><th>points</th><th>max</th><th>result</th></tr>"
            + "".join(rows) + "</table>" + "".join(details) + "</body></html>\n")


def feedback(course, out_dir=None, log=print) -> list:
    """Write feedback/<student>/<chapter>/<chapter>.html for every graded submission; return the paths."""
    import nbformat
    from .scoring import read_outcomes
    course = course_folder(course)
    out_dir = Path(out_dir) if out_dir else course / "feedback"
    flags = load_flags(course)
    written = []
    with _open_gradebook(course) as gb:
        for student, chapter in submissions(course):
            gradebook.require_chapter(gb, course, chapter)
            info = flags.get(f"{student}/{chapter}", {"status": "not-graded", "flags": ["not-graded"]})
            maxima = {g.name: g.max_score for g in gb.find_notebook(chapter, chapter).grade_cells}
            rel = read_release(course, chapter)
            graded = course / "autograded" / student / chapter / f"{chapter}.ipynb"
            scores, outcomes, notes = {}, None, list(info["flags"])
            if info["status"] == "graded" and graded.exists() and info.get("token"):
                scores, extra = _scores(gb, chapter, student)
                scores, notes = scores or {}, notes + extra
                outcomes = read_outcomes(nbformat.read(str(graded), as_version=4), info["token"])
            page = feedback_html(student, chapter, rel, scores, maxima, notes, outcomes)
            path = out_dir / student / chapter / f"{chapter}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(page)
            written.append(path)
    log(f"wrote {len(written)} feedback files under {out_dir}")
    return written

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

from .layout import course_folder, gradebook_url, load_flags, read_release, submissions
from .notebook import grade_id, graded_ids, nbgrader_meta, strip_hidden
from .preprocessors import HIDDEN_MARK

CSV_COLUMNS = ["student", "chapter", "exercise", "points", "max_points", "flags"]


def fmt_points(x) -> str:
    return f"{float(x):g}"


def gradebook_rows(course) -> list:
    """Rows (dicts with CSV_COLUMNS) for every submission in submitted/, one per graded test cell."""
    from nbgrader.api import Gradebook, MissingEntry
    course = course_folder(course)
    flags = load_flags(course)
    rows = []
    with Gradebook(gradebook_url(course)) as gb:
        for student, chapter in submissions(course):
            rel = read_release(course, chapter)
            maxima = {g.name: g.max_score for g in gb.find_notebook(chapter, chapter).grade_cells}
            info = flags.get(f"{student}/{chapter}")
            if info is None:
                status, sflags = "not-graded", ["not-graded"]
            else:
                status, sflags = info["status"], info["flags"]
            scores = {}
            if status == "graded":
                try:
                    sub = gb.find_submission_notebook(chapter, chapter, student)
                    scores = {g.name: g.score for g in sub.grades}
                except MissingEntry:
                    sflags = sflags + ["not-graded"]
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


def _visible_outcome(cell, score, max_score):
    """(result text, visible stdout) for a graded test cell, never showing hidden-test details."""
    stdout, hidden_started, error = [], False, None
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream" and not hidden_started:
            text = out.get("text", "")
            if HIDDEN_MARK in text:
                text = text.split(HIDDEN_MARK)[0]
                hidden_started = True
            stdout.append(text)
        elif kind == "stream" and HIDDEN_MARK in out.get("text", ""):
            hidden_started = True
        elif kind == "error" and (error is None or out.get("ename") == "CellTimeoutError"):
            error = out  # a timeout shows up as KeyboardInterrupt (the interrupt) and then CellTimeoutError
    if error is not None:
        if error.get("ename") == "CellTimeoutError":
            result = "timed out: the test did not finish within the time limit"
        elif hidden_started:
            result = "a hidden test failed"
        else:
            msg = ANSI_RE.sub("", f"{error.get('ename')}: {error.get('evalue')}")
            result = "failed: " + (msg if len(msg) <= 2000 else msg[:2000] + " ...")
    elif score is not None and max_score and score < max_score:
        result = "partial credit"
    else:
        result = "passed"
    text = ANSI_RE.sub("", "".join(stdout))
    if len(text) > 4000:
        text = text[:4000] + "\n... (output shortened)"
    return result, text


FEEDBACK_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
pre{background:#f6f6f6;padding:.6rem;overflow-x:auto}.passed{color:#17702a}.failed{color:#a11}"""


def feedback_html(student, chapter, graded_nb, scores, maxima, flags, graded=True) -> str:
    """One student's feedback page: score per exercise, visible tests and their messages only.
    With graded=False (the submission could not be graded) every test shows as not graded."""
    e = html.escape
    total, total_max = sum(scores.get(g) or 0 for g in maxima), sum(maxima.values())
    rows, details = [], []
    for cell in graded_nb.cells:
        gid = grade_id(cell)
        if not (nbgrader_meta(cell).get("grade") and cell.cell_type == "code" and gid in maxima):
            continue
        result, stdout = _visible_outcome(cell, scores.get(gid), maxima[gid]) if graded else \
            ("not graded: see the notes above", "")
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
    from nbgrader.api import Gradebook
    course = course_folder(course)
    out_dir = Path(out_dir) if out_dir else course / "feedback"
    flags = load_flags(course)
    written = []
    with Gradebook(gradebook_url(course)) as gb:
        for student, chapter in submissions(course):
            info = flags.get(f"{student}/{chapter}", {"status": "not-graded", "flags": ["not-graded"]})
            maxima = {g.name: g.max_score for g in gb.find_notebook(chapter, chapter).grade_cells}
            rel = read_release(course, chapter)
            graded = course / "autograded" / student / chapter / f"{chapter}.ipynb"
            if info["status"] == "graded" and graded.exists():
                nb = nbformat.read(str(graded), as_version=4)
                sub = gb.find_submission_notebook(chapter, chapter, student)
                scores = {g.name: g.score for g in sub.grades}
            else:  # not gradable: show the release's visible tests with zero points
                nb, scores = rel, {}
            page = feedback_html(student, chapter, nb, scores, maxima, info["flags"], graded=nb is not rel)
            path = out_dir / student / chapter / f"{chapter}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(page)
            written.append(path)
    log(f"wrote {len(written)} feedback files under {out_dir}")
    return written


"""Reading nbgrader cells: metadata, grade ids, hidden-test regions and solution regions.

Every other grading module asks these questions of a notebook through here, so the markers nbgrader uses
(`### BEGIN SOLUTION`, `### BEGIN HIDDEN TESTS`) are spelled in one place.
"""
from __future__ import annotations

HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
HIDDEN_END = "END HIDDEN TESTS"
SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"


def nbgrader_meta(cell) -> dict:
    """The cell's nbgrader metadata ({} when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell):
    return nbgrader_meta(cell).get("grade_id")


def is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and bool(nbgrader_meta(cell).get("grade")) and bool(grade_id(cell))


def is_locked(cell) -> bool:
    """A cell the student may not change (tests and locked cells, but never a solution cell)."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("locked") or meta.get("grade")) and not meta.get("solution")


def graded_ids(nb) -> list:
    """grade_ids of the test (grade) cells of a notebook, in order."""
    return [grade_id(c) for c in nb.cells if nbgrader_meta(c).get("grade") and grade_id(c)]


def normalise_source(source: str) -> str:
    """Source with line endings, trailing spaces and surrounding blank lines made uniform (for comparing)."""
    return "\n".join(line.rstrip() for line in source.replace("\r\n", "\n").strip().split("\n"))


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def strip_hidden(source: str, note: str | None = None) -> str:
    """Source without its hidden-test regions (delimiter lines included)."""
    out, hidden = [], False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            hidden = True
            if note:
                out.append(indent_of(line) + note)
            continue
        if HIDDEN_END in line:
            hidden = False
            continue
        if not hidden:
            out.append(line)
    return "\n".join(out)


def solution_regions(source: str, replace) -> str:
    """Rewrite each solution region with replace(indent, body_lines) -> list of lines (delimiters dropped)."""
    out, body, indent, inside = [], [], "", False
    for line in source.split("\n"):
        if SOLUTION_BEGIN in line:
            inside, body = True, []
            indent = indent_of(line)
            continue
        if SOLUTION_END in line and inside:
            inside = False
            out.extend(replace(indent, body))
            continue
        (body if inside else out).append(line)
    return "\n".join(out)

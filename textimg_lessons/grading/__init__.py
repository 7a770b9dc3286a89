"""Instructor workflow on nbgrader (command line only, no server): release, collect, autograde, export,
feedback, and a student-side `check`. The instructor guide (docs/INSTRUCTOR.md) walks through it.

    textimg-lessons release [CHAPTER ...] --course DIR     student versions + SQLite gradebook
    textimg-lessons collect ZIP_OR_DIR --course DIR        LMS downloads -> submitted/<student>/<chapter>/
    textimg-lessons autograde --course DIR [--timeout S]   every submission, each sealed off on its own
    textimg-lessons export --course DIR --csv PATH         student, chapter, exercise, points, max_points, flags
    textimg-lessons feedback --course DIR                  one HTML per student and chapter, no hidden tests
    textimg-lessons check NOTEBOOK                         student: does it run, which visible tests fail
    textimg-lessons demo-submissions --out DIR             correct/partial/wrong/broken demo submissions

One file per command or concern, in the spirit of nbgrader's own layout:
    layout           the course folder: paths, submissions, the flags file
    nbgrader_setup   the nbgrader_config.py that `release` writes; loading it; the kernel environment
    preprocessors    the course's nbgrader preprocessors (output cap, stderr, results are not scores, ...)
    nbgrader_private the one place that calls nbgrader's private API (for `check`)
    notebook         reading nbgrader cells: grade ids, hidden-test and solution regions
    pysource         cells as Python syntax trees, for the static scans
    releasing, collecting, autograding, reports (export, feedback), check, demo: one command each
    structure        pre-grading repair: stripped metadata, deleted/edited/duplicated cells
    monkeypatch      replaced functions: static scan, and what the runtime probe compares against
    forbidden        what each exercise may not call (the course's own implementation), static scan
    sandbox          bubblewrap around each grading kernel: what it can read, write and reach
    instrument       the grader's cells: probes, call recorders, visible/hidden split, proof lines
    scoring          test outcomes read outside the kernel -> scores and flags
    gradebook        backups, checks, and the only writes of scores
    throughput       `grading-throughput`: submissions per minute for planning a class
    cli              the subcommands (imports neither nbgrader nor torch)

nbgrader does the grading. This package adds what a course needs around it, and every finding becomes a
flag in the gradebook CSV instead of a silent zero. Names used across the package are importable from here
(lazily: importing `textimg_lessons.grading` does not import nbgrader).
"""
from __future__ import annotations

import importlib

from .cli import register  # noqa: F401  (the top-level command line calls grading.register)

# name -> submodule, for `from textimg_lessons import grading as G; G.autograde(...)`
_EXPORTS = {
    "layout": ["ROOT", "FLAGS_FILE", "STAGED", "course_folder", "released_chapters", "read_release",
               "submissions", "load_flags", "default_notebooks_dir"],
    "nbgrader_setup": ["NBGRADER_CONFIG", "DEFAULT_KERNEL_ENV", "parse_env", "nbgrader_api"],
    "notebook": ["HIDDEN_BEGIN", "HIDDEN_END", "nbgrader_meta", "grade_id", "graded_ids", "strip_hidden",
                 "is_locked"],
    "preprocessors": ["CappedExecute", "WarningsAreNotErrors", "ResultsAreNotScores", "MarkHiddenTests",
                      "InstrumentTests",
                      "TRUNCATION_NOTE", "HIDDEN_MARK"],
    "releasing": ["release", "chapters_with_exercises", "write_student_version"],
    "collecting": ["collect", "match_submission", "student_slug"],
    "structure": ["restore_structure"],
    "monkeypatch": ["scan_monkeypatching", "protected_names", "expected_package_functions", "expected_names",
                    "PROTECTED", "WATCHED_ROOTS"],
    "autograding": ["autograde"],
    "sandbox": ["sandbox_problem", "Limits"],
    "forbidden": ["FORBIDDEN"],
    "reports": ["export", "feedback", "feedback_html", "gradebook_rows", "CSV_COLUMNS"],
    "check": ["check_notebook"],
    "demo": ["demo_submission", "demo_submissions", "DEMO_VARIANTS", "DEMO_FILES"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name):
    # Course folders released before the package split name the preprocessors as textimg_lessons.grading.X in
    # their nbgrader_config.py; nbgrader resolves them through here.
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))

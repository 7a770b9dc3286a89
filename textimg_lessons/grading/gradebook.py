"""The gradebook: never lost, never written from inside a kernel.

`autograde` copies gradebook.db to backups/ before it writes, writes the scores the grader computed itself
(scoring.py) through nbgrader's Gradebook API, and checks the file afterwards. A missing or damaged
gradebook stops every command with the name of the newest backup to restore, instead of a traceback or a
silently empty new gradebook.
"""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from .layout import GRADEBOOK, gradebook_url, utc_stamp


class GradebookProblem(SystemExit):
    """The gradebook is missing or damaged; the message says how to restore it."""


def backups(course: Path) -> list:
    """Gradebook backups, oldest first."""
    return sorted((course / "backups").glob("gradebook-*.db"))


def restore_hint(course: Path) -> str:
    found = backups(course)
    if found:
        return (f"restore the newest backup with `cp {found[-1]} {course / GRADEBOOK}` (backups are in "
                f"{course / 'backups'}), then run the command again")
    return (f"no backup exists in {course / 'backups'}; `textimg-lessons release --course {course}` creates an "
            f"empty gradebook, after which every submission must be graded again")


def _healthy(path: Path) -> str | None:
    """None when `path` is a readable SQLite gradebook, else what is wrong."""
    if not path.exists():
        return f"{path.name} is missing"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            ok = db.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as e:
        return f"{path.name} cannot be read ({e})"
    if ok != "ok":
        return f"{path.name} is damaged ({ok})"
    if not {"assignment", "grade"} <= tables:
        return f"{path.name} is not an nbgrader gradebook"
    return None


def require(course: Path) -> None:
    """Stop with what to do when the course's gradebook is missing or damaged."""
    problem = _healthy(course / GRADEBOOK)
    if problem is not None:
        raise GradebookProblem(f"{problem} in {course}: {restore_hint(course)}.")


def require_chapter(gb, course: Path, chapter: str) -> None:
    """Stop with what to do when the gradebook does not know a released chapter (e.g. an older backup)."""
    from nbgrader.api import MissingEntry
    try:
        gb.find_notebook(chapter, chapter)
    except MissingEntry:
        raise GradebookProblem(f"the gradebook in {course} does not know {chapter}, although it is released: it "
                               f"was replaced or reset. {restore_hint(course)[0].upper()}{restore_hint(course)[1:]}"
                               f", or release {chapter} again.") from None


def back_up(course: Path, reason: str) -> Path:
    """Copy the gradebook to backups/gradebook-<UTC time>-<reason>.db (SQLite's own backup: consistent)."""
    target = course / "backups" / f"gradebook-{utc_stamp()}-{reason}.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(course / GRADEBOOK) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def private_copy(course: Path, folder: Path) -> str:
    """A copy of the gradebook for one grading process (nbgrader needs one; the course's own is written only
    by the parent, one submission at a time). Returns its database URL."""
    path = folder / GRADEBOOK
    shutil.copy2(course / GRADEBOOK, path)
    return f"sqlite:///{path}"


def write_scores(course: Path, student: str, chapter: str, scores: dict) -> list:
    """Store the grader's scores for one submission; a manual score found there is discarded and reported.
    Returns flags."""
    import warnings
    from nbgrader.api import Gradebook
    flags = []
    with Gradebook(gradebook_url(course)) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy notices from inside nbgrader's own update_or_create
        gb.update_or_create_student(student)
        gb.update_or_create_submission(chapter, student)
        for gid, score in sorted(scores.items()):
            grade = gb.find_grade(gid, chapter, chapter, student)
            if grade.manual_score is not None:
                flags.append(f"manual-score-discarded:{gid}={grade.manual_score:g}")
            grade.auto_score = float(score)
            grade.manual_score = None
        gb.db.commit()
    return flags


def verify(course: Path, graded: dict) -> None:
    """After grading: the gradebook is healthy and holds the scores just written ({(student, chapter):
    scores}); otherwise stop and point to the backup taken before."""
    from nbgrader.api import Gradebook
    require(course)
    with Gradebook(gradebook_url(course)) as gb:
        for (student, chapter), scores in graded.items():
            for gid, score in scores.items():
                stored = gb.find_grade(gid, chapter, chapter, student).auto_score
                if stored is None or abs(stored - score) > 1e-9:
                    raise GradebookProblem(f"the gradebook did not keep {student}/{chapter} {gid} ({stored} instead "
                                           f"of {score}): {restore_hint(course)}.")

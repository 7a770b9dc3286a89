"""The course folder: where each kind of file lives, and the small questions asked about it.

Layout (the folder holding nbgrader_config.py; `release` writes a copy of this list into that file):
  source/<chapter>/<chapter>.ipynb      master notebooks (solutions, hidden tests)
  release/<chapter>/<chapter>.ipynb     student versions
  submitted/<student>/<chapter>/        submissions exactly as collected (never modified)
  staged/<student>/<chapter>/           what is graded: the submission after the pre-grading checks
  autograded/<student>/<chapter>/       executed, graded copies: instructor only (hidden tests inside)
  feedback/<student>/<chapter>/         HTML feedback for students
  gradebook.db                          nbgrader's SQLite gradebook
  grading_flags.json                    per submission: what the checks and the grader found
  backups/                              gradebooks and replaced submissions, timestamped
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

# The repository root when the package runs from a checkout (its notebooks/ holds the master notebooks).
ROOT = Path(__file__).resolve().parent.parent.parent
FLAGS_FILE = "grading_flags.json"
STAGED = "staged"
GRADEBOOK = "gradebook.db"


def utc_stamp() -> str:
    """A sortable UTC timestamp for backup names."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def default_notebooks_dir() -> Path:
    return ROOT / "notebooks" if (ROOT / "notebooks").exists() else Path.cwd() / "notebooks"


def course_folder(path) -> Path:
    """The course folder `path`, resolved; stops with what to do when it is not one."""
    course = Path(path).resolve()
    if not (course / "nbgrader_config.py").exists():
        raise SystemExit(f"{course} is not a course folder (no nbgrader_config.py): run "
                         f"`textimg-lessons release --course {path}` first.")
    return course


def released_chapters(course: Path) -> list:
    src = course / "source"
    return sorted(p.name for p in src.iterdir() if (p / f"{p.name}.ipynb").exists()) if src.exists() else []


def read_release(course: Path, chapter: str):
    import nbformat
    path = course / "release" / chapter / f"{chapter}.ipynb"
    if not path.exists():
        raise SystemExit(f"No released version of {chapter} in {course}: run `textimg-lessons release {chapter} "
                         f"--course {course}`.")
    return nbformat.read(str(path), as_version=4)


def gradebook_url(course: Path) -> str:
    return f"sqlite:///{course / GRADEBOOK}"


def submissions(course: Path, chapters=None, students=None) -> list:
    """(student, chapter) pairs present in submitted/, sorted."""
    out = []
    root = course / "submitted"
    if not root.exists():
        return out
    for sdir in sorted(p for p in root.iterdir() if p.is_dir()):
        for cdir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            if chapters and cdir.name not in chapters or students and sdir.name not in students:
                continue
            if (cdir / f"{cdir.name}.ipynb").exists():
                out.append((sdir.name, cdir.name))
    return out


def load_flags(course) -> dict:
    """grading_flags.json: {"<student>/<chapter>": {"status": ..., "flags": [...]}}."""
    path = Path(course) / FLAGS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def save_flags(course: Path, flags: dict) -> None:
    path = course / FLAGS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(flags, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)

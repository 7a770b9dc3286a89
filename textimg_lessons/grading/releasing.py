"""`release`: copy master notebooks into a course folder and let nbgrader generate the student versions."""
from __future__ import annotations

import shutil
from pathlib import Path

from .layout import GRADEBOOK, default_notebooks_dir, utc_stamp
from .nbgrader_setup import NBGRADER_CONFIG, nbgrader_api
from .notebook import graded_ids


def chapters_with_exercises(notebooks_dir) -> list:
    """Chapter ids (e.g. '01_backprop') of notebooks in `notebooks_dir` that have graded test cells."""
    import nbformat
    found = []
    for path in sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb")):
        if graded_ids(nbformat.read(str(path), as_version=4)):
            found.append(path.stem)
    return found


def release(course, chapters=None, notebooks_dir=None, student_dir=None, log=print) -> list:
    """Build/refresh the nbgrader course at `course` and generate student versions of `chapters`
    (default: every chapter notebook with graded cells). Existing gradebook and submissions are kept
    (the gradebook is also copied to backups/ first). Returns the chapter ids released."""
    import nbformat
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    course = Path(course).resolve()
    available = chapters_with_exercises(notebooks_dir)
    if chapters:
        missing = [c for c in chapters if not (notebooks_dir / f"{c}.ipynb").exists()]
        if missing:
            raise SystemExit(f"No notebook for {', '.join(missing)} in {notebooks_dir}; chapters with exercises: "
                             f"{', '.join(available) or 'none'}.")
        no_ex = [c for c in chapters if c not in available]
        if no_ex:
            raise SystemExit(f"{', '.join(no_ex)} has no graded test cells, so there is nothing to release.")
    else:
        chapters = available
        if not chapters:
            raise SystemExit(f"No chapter notebook in {notebooks_dir} has graded test cells.")
    course.mkdir(parents=True, exist_ok=True)
    config = course / "nbgrader_config.py"
    if not config.exists():
        config.write_text(NBGRADER_CONFIG)
        log(f"wrote {config.name} (explained inside)")
    db = course / GRADEBOOK
    if db.exists():
        backup = course / "backups" / f"gradebook-{utc_stamp()}.db"
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(db, backup)
        log(f"gradebook kept; a copy is in {backup.relative_to(course)}")
    api = nbgrader_api(course)
    for chapter in chapters:
        src_dir = course / "source" / chapter
        src_dir.mkdir(parents=True, exist_ok=True)
        master = nbformat.read(str(notebooks_dir / f"{chapter}.ipynb"), as_version=4)
        for cell in master.cells:  # the source copy is for generating only: outputs are not needed
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(master, str(src_dir / f"{chapter}.ipynb"))
        result = api.generate_assignment(chapter, force=True, create=True)
        if not result["success"]:
            raise SystemExit(f"nbgrader generate_assignment failed for {chapter}:\n{result.get('log', '')}\n"
                             f"{result.get('error', '')}")
        released = course / "release" / chapter / f"{chapter}.ipynb"
        log(f"released {chapter}: {released.relative_to(course)} "
            f"({len(graded_ids(nbformat.read(str(released), as_version=4)))} graded test cells)")
        if student_dir:
            write_student_version(released, Path(student_dir) / f"{chapter}.ipynb")
            log(f"student version {Path(student_dir) / (chapter + '.ipynb')}")
    return list(chapters)


def write_student_version(released, dest) -> None:
    """Copy a released notebook to `dest` (e.g. student/01_backprop.ipynb) with its own Colab badge."""
    from .. import colab
    import nbformat
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(str(released), as_version=4)
    for cell in nb.cells:  # run timestamps of the master's last execution are noise in an exercise version
        cell.metadata.pop("execution", None)
    nbformat.write(nb, str(dest))
    colab.apply(str(dest))


"""`demo-submissions`: an LMS-style download of correct, partial, wrong and broken submissions."""
from __future__ import annotations

import zipfile
from pathlib import Path

from .layout import default_notebooks_dir
from .notebook import SOLUTION_BEGIN, nbgrader_meta, solution_regions, strip_hidden
from .releasing import chapters_with_exercises


DEMO_VARIANTS = {
    "correct": "every exercise solved",
    "partial": "first exercise solved, the others still raise NotImplementedError",
    "wrong": "every solution returns None (or does nothing)",
    "broken": "solutions with a syntax error",
}
DEMO_FILES = {  # one name per pattern that `collect` understands
    "correct": "alice_{ch}.ipynb",
    "partial": "bob/{ch}.ipynb",
    "wrong": "carol_12345_67890_{ch}.ipynb",
    "broken": "Dave Smith_4242_assignsubmission_file_{ch}.ipynb",
}


def demo_submission(master, variant: str):
    """A submission made from a master notebook: see DEMO_VARIANTS."""
    import copy
    nb = copy.deepcopy(master)
    first = True
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        nbg = nbgrader_meta(cell)
        if nbg.get("grade"):
            cell.source = strip_hidden(cell.source)
        if not (nbg.get("solution") and SOLUTION_BEGIN in cell.source):
            continue
        if variant == "correct" or (variant == "partial" and first):
            cell.source = solution_regions(cell.source, lambda ind, body: body)
        elif variant == "partial":
            cell.source = solution_regions(cell.source, lambda ind, body: [ind + "raise NotImplementedError()"])
        elif variant == "wrong":
            cell.source = solution_regions(cell.source, lambda ind, body: [ind + ("return None" if ind else "pass")])
        elif variant == "broken":
            cell.source = solution_regions(cell.source, lambda ind, body: body + [ind + "this is not python ("])
        first = False
    return nb


def demo_submissions(out, notebooks_dir=None, chapters=None, zip_path=None, log=print) -> list:
    """Write a demo LMS download (one file per student and chapter, named as LMSs name them)."""
    import nbformat
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    chapters = chapters or chapters_with_exercises(notebooks_dir)
    if not chapters:
        raise SystemExit(f"No chapter notebook with graded cells in {notebooks_dir}.")
    out = Path(out)
    written = []
    for ch in chapters:
        master = nbformat.read(str(notebooks_dir / f"{ch}.ipynb"), as_version=4)
        for variant, pattern in DEMO_FILES.items():
            path = out / pattern.format(ch=ch)
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(demo_submission(master, variant), str(path))
            written.append(path)
    note = out / "README_from_lms.txt"
    note.write_text("Demo LMS download. " + "; ".join(f"{v}: {d}" for v, d in DEMO_VARIANTS.items()) + "\n")
    written.append(note)
    if zip_path:
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in written:
                zf.write(p, p.relative_to(out))
    log(f"wrote {len(written)} files under {out}" + (f" and {zip_path}" if zip_path else ""))
    for variant, pattern in DEMO_FILES.items():
        log(f"  {variant:8s} {pattern.format(ch='<chapter>')}: {DEMO_VARIANTS[variant]}")
    return written


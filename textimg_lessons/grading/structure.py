"""Pre-grading repair of a submission's structure, against the released version.

Editors and converters drop nbgrader metadata, students delete or edit test cells, and Jupyter's cell copy
duplicates a cell together with its nbgrader metadata. Each is repaired here and reported as a flag, so the
notebook is graded instead of failing as a whole.
"""
from __future__ import annotations

import copy
import difflib

from .notebook import grade_id, is_locked, nbgrader_meta, normalise_source, strip_hidden


def _visible(cell) -> str:
    return normalise_source(strip_hidden(cell.source))


def restore_structure(release_nb, sub_nb):
    """Match the release's nbgrader cells to the submission's (by grade_id, then cell id, then identical
    source for locked cells, then the most similar code cell between its neighbours for solution cells).
    Copies the release metadata onto matched cells that lost it, inserts release cells that are missing.
    Returns (notebook, flags)."""
    flags = []
    rel_cells = [c for c in release_nb.cells if grade_id(c)]
    cells = list(sub_nb.cells)
    by_gid = {}
    for c in cells:
        if grade_id(c) and grade_id(c) not in by_gid:
            by_gid[grade_id(c)] = c
    match = {}
    used = {id(c) for c in by_gid.values()}
    restored = 0
    for r in rel_cells:  # pass 1: grade_id, cell id, identical source of locked cells
        gid = grade_id(r)
        if gid in by_gid:
            match[gid] = by_gid[gid]
            continue
        cand = [c for c in cells if id(c) not in used and not grade_id(c) and c.cell_type == r.cell_type]
        hit = next((c for c in cand if r.get("id") and c.get("id") == r.get("id")), None)
        if hit is None and is_locked(r):
            hit = next((c for c in cand if _visible(c) == _visible(r)), None)
        if hit is not None:
            match[gid] = hit
            used.add(id(hit))
            restored += 1
    for k, r in enumerate(rel_cells):  # pass 2: solution cells between their matched neighbours
        gid = grade_id(r)
        if gid in match or is_locked(r):
            continue
        before = [match[grade_id(p)] for p in rel_cells[:k] if grade_id(p) in match]
        after = [match[grade_id(p)] for p in rel_cells[k + 1:] if grade_id(p) in match]
        lo = cells.index(before[-1]) + 1 if before else 0
        hi = cells.index(after[0]) if after else len(cells)
        cand = [c for c in cells[lo:hi] if id(c) not in used and not grade_id(c) and c.cell_type == r.cell_type]
        if cand:
            best = max(cand, key=lambda c: difflib.SequenceMatcher(None, c.source, r.source).ratio())
            match[gid] = best
            used.add(id(best))
            restored += 1
    for r in rel_cells:  # copy metadata onto matched cells that lost it
        c = match.get(grade_id(r))
        if c is not None and grade_id(c) != grade_id(r):
            c.metadata = copy.deepcopy(r.metadata)
    if restored:
        flags.append(f"metadata-restored:{restored}-cells")
    for k, r in enumerate(rel_cells):  # put back what is missing, after the previous matched cell
        gid = grade_id(r)
        if gid in match:
            continue
        meta = nbgrader_meta(r)
        kind = "test" if meta.get("grade") else ("solution" if meta.get("solution") else "locked")
        flags.append(f"{kind}-cell-deleted:{gid}")
        before = [match[grade_id(p)] for p in rel_cells[:k] if grade_id(p) in match]
        pos = cells.index(before[-1]) + 1 if before else 0
        new = copy.deepcopy(r)
        new["id"] = f"restored-{gid}"[:64]
        cells.insert(pos, new)
        match[gid] = new
    for r in rel_cells:  # edited locked cells: nbgrader restores them from the gradebook; we flag them
        c = match[grade_id(r)]
        if is_locked(r) and _visible(c) != _visible(r):
            kind = "test" if nbgrader_meta(r).get("grade") else "locked"
            flags.append(f"{kind}-cell-edited:{grade_id(r)}")
    sub_nb.cells = cells
    return sub_nb, flags



def drop_duplicates(nb):
    """Jupyter's cell copy keeps nbgrader metadata, so a careless copy-paste gives two cells with one grade_id
    (nbgrader then fails the whole notebook). Keep the first cell of each grade_id as the graded one; later
    copies stay in the notebook as plain cells without nbgrader metadata. Returns (notebook, flags)."""
    seen, flags = set(), []
    for cell in nb.cells:
        gid = grade_id(cell)
        if not gid:
            continue
        if gid in seen:
            cell.metadata.pop("nbgrader", None)
            flags.append(f"duplicate-cell:{gid}")
        seen.add(gid)
    return nb, sorted(set(flags))

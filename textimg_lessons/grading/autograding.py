"""`autograde`: grade every submission with nbgrader, each on its own, and record what was found."""
from __future__ import annotations

import shutil
from pathlib import Path
import threading

from .layout import STAGED, course_folder, load_flags, read_release, released_chapters, save_flags, submissions
from .monkeypatch import (PROBE_ALERT, PROBE_PREFIX, expected_names, expected_package_functions,
                          expected_signatures, insert_probes, protected_names, scan_monkeypatching)
from .nbgrader_setup import DEFAULT_KERNEL_ENV, environment, nbgrader_api
from .notebook import grade_id, nbgrader_meta
from .preprocessors import TRUNCATION_NOTE
from .structure import restore_structure


def _kill_kernels() -> int:
    """Kill kernel processes started by this process (a submission that ignores interrupts)."""
    import psutil
    killed = 0
    for child in psutil.Process().children(recursive=True):
        try:
            if any("ipykernel" in part for part in child.cmdline()):
                child.kill()
                killed += 1
        except psutil.Error:
            pass
    return killed


def _post_scan(nb, timeout) -> list:
    flags = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts = [o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
        if cell.get("id", "").startswith(PROBE_PREFIX):
            for text in texts:
                for line in text.splitlines():
                    if line.startswith(PROBE_ALERT):
                        for item in line[len(PROBE_ALERT):].split(", "):
                            flags.add(f"monkeypatch-runtime:{item.strip()}")
            continue
        if any(TRUNCATION_NOTE in t for t in texts):
            flags.add("output-truncated")
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError":
                where = grade_id(cell) if nbgrader_meta(cell).get("grade") else f"cell-{cell.get('id', '?')}"
                flags.add(f"timeout:{where}")
    return sorted(flags)


def _grade_one(api, course: Path, student: str, chapter: str, release_info, cell_timeout: int, env: dict) -> list:
    """Pre-grading checks, then nbgrader autograde for one submission; returns its flags."""
    import nbformat
    rel, protected, chapter_expected, chapter_names = release_info
    flags = []
    staged_dir = course / STAGED / student / chapter
    if staged_dir.exists():
        shutil.rmtree(staged_dir)
    staged_dir.mkdir(parents=True)
    submitted = course / "submitted" / student / chapter
    if (submitted / "timestamp.txt").exists():
        shutil.copy2(submitted / "timestamp.txt", staged_dir / "timestamp.txt")
    try:
        sub = nbformat.read(str(submitted / f"{chapter}.ipynb"), as_version=4)
        nbformat.validate(sub)
    except Exception as e:
        return [f"unreadable-notebook:{type(e).__name__}"]
    sub, found = restore_structure(rel, sub)
    flags += found
    flags += [f"monkeypatch:{f}" for f in scan_monkeypatching(sub, protected)]
    insert_probes(sub, chapter_expected, chapter_names)
    nbformat.write(sub, str(staged_dir / f"{chapter}.ipynb"))
    n_code = sum(c.cell_type == "code" for c in sub.cells)
    hard_limit = cell_timeout * (n_code + 2) + 60
    killed = []
    watchdog = threading.Timer(hard_limit, lambda: killed.append(_kill_kernels()))
    watchdog.daemon = True
    with environment(env):
        watchdog.start()
        try:
            result = api.autograde(chapter, student, force=True, create=True)
        finally:
            watchdog.cancel()
    logs = course / "logs" / "autograde"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{student}__{chapter}.log").write_text(result.get("log", "") + "\n" + (result.get("error") or ""))
    graded = course / "autograded" / student / chapter / f"{chapter}.ipynb"
    if killed:
        flags.append(f"grading-failed:killed after {hard_limit} s (see logs/autograde/{student}__{chapter}.log)")
    elif not result["success"] or not graded.exists():
        text = (result.get("log", "") or "") + (result.get("error") or "")
        reason = "kernel died" if "DeadKernelError" in text or "Kernel died" in text else "nbgrader error"
        flags.append(f"grading-failed:{reason} (see logs/autograde/{student}__{chapter}.log)")
    else:
        flags += _post_scan(nbformat.read(str(graded), as_version=4), cell_timeout)
    return flags


def autograde(course, timeout=None, chapters=None, students=None, env=None, log=print) -> dict:
    """Grade every submission (or the selected ones) with nbgrader, one at a time, each in its own kernel.
    Returns {"<student>/<chapter>": {"status", "flags"}} and writes it to grading_flags.json."""
    course = course_folder(course)
    env = dict(DEFAULT_KERNEL_ENV) if env is None else env
    overrides = {"CourseDirectory.submitted_directory": STAGED}
    if timeout is not None:
        overrides["Execute.timeout"] = int(timeout)
    api = nbgrader_api(course, overrides)
    cell_timeout = int(timeout) if timeout is not None else int(api.config.Execute.get("timeout", 60))
    all_flags = load_flags(course)
    expected = expected_signatures()
    import warnings
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy session notices inside nbgrader
    todo = submissions(course, chapters, students)
    released = set(released_chapters(course))
    for student, chapter in [t for t in todo if t[1] not in released]:
        log(f"{student}/{chapter}: skipped, {chapter} is not released in this course")
    todo = [t for t in todo if t[1] in released]
    if not todo:
        log("Nothing to grade: submitted/ is empty (run `textimg-lessons collect` first).")
    releases = {}
    for student, chapter in todo:
        key = f"{student}/{chapter}"
        if chapter not in releases:
            rel = read_release(course, chapter)
            protected = protected_names(rel)
            releases[chapter] = (rel, protected, {**expected, **expected_package_functions(rel)},
                                 expected_names(rel, protected))
        try:
            flags = _grade_one(api, course, student, chapter, releases[chapter], cell_timeout, env)
        except Exception as e:  # a bug or an odd notebook must not stop the batch
            flags = [f"grading-failed:{type(e).__name__} before grading: {str(e)[:200]}"]
        status = "graded"
        if any(f.startswith(("grading-failed", "unreadable-notebook")) for f in flags):
            status = "failed"
            stale = course / "autograded" / student / chapter
            if stale.exists():
                shutil.rmtree(stale)
        all_flags[key] = {"status": status, "flags": sorted(set(flags))}
        save_flags(course, all_flags)
        log(f"{key}: {status}" + (f"  [{'; '.join(sorted(set(flags)))}]" if flags else ""))
    return {f"{s}/{c}": all_flags[f"{s}/{c}"] for s, c in todo}


"""`autograde`: grade every submission with nbgrader, each sealed off on its own, and record what was found.

For each submission: the pre-grading checks (structure.py, monkeypatch.py, forbidden.py) write the copy
that is graded to staged/; nbgrader runs it in a kernel inside the submission's sandbox (sandbox.py) with
the grader's cells added (instrument.py); the scores are then computed from what the grader recorded
(scoring.py) and written to the gradebook by this process alone (gradebook.py), after a backup.

With `jobs` > 1 several submissions are graded at once, each by a worker process holding a private copy of
the gradebook (nbgrader needs one to grade); only the parent writes the course's gradebook and the flags
file, in submission order, so the result does not depend on the number of jobs.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import forbidden, gradebook, instrument, sandbox
from .layout import STAGED, course_folder, load_flags, read_release, released_chapters, save_flags, submissions
from .monkeypatch import (expected_names, expected_package_functions, expected_signatures, protected_names,
                          scan_monkeypatching)
from .nbgrader_setup import DEFAULT_KERNEL_ENV, environment, nbgrader_api
from .notebook import grade_id, nbgrader_meta

# The pipeline autograde always runs, whatever nbgrader_config.py says: the grader's own steps are what
# make the scores trustworthy, so a changed config cannot drop them.
SANITIZE = ["nbgrader.preprocessors.ClearOutput", "nbgrader.preprocessors.DeduplicateIds",
            "nbgrader.preprocessors.OverwriteKernelspec", "nbgrader.preprocessors.OverwriteCells",
            "nbgrader.preprocessors.CheckCellMetadata", "textimg_lessons.grading.preprocessors.InstrumentTests"]
AUTOGRADE = ["textimg_lessons.grading.preprocessors.CappedExecute",
             "textimg_lessons.grading.preprocessors.WarningsAreNotErrors",
             "textimg_lessons.grading.preprocessors.ResultsAreNotScores",
             "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
             "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
             "nbgrader.preprocessors.CheckCellMetadata"]


@dataclass
class Plan:
    """How every submission of one `autograde` run is graded (sent to worker processes)."""
    course: Path
    cell_timeout: int
    env: dict
    sandboxed: bool
    overrides: dict = field(default_factory=dict)
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)


@dataclass
class ChapterInfo:
    """What the checks need to know about one released chapter (computed once per run)."""
    release: object
    protected: set
    expected: dict
    names: dict
    forbidden: dict
    answers: dict
    maxima: dict


def chapter_info(course: Path, chapter: str, expected: dict) -> ChapterInfo:
    from nbgrader.api import Gradebook
    from .layout import gradebook_url
    rel = read_release(course, chapter)
    protected = protected_names(rel)
    targets, answers = forbidden.per_test(rel, chapter)
    with Gradebook(gradebook_url(course)) as gb:
        gradebook.require_chapter(gb, course, chapter)
        maxima = {g.name: g.max_score for g in gb.find_notebook(chapter, chapter).grade_cells}
    return ChapterInfo(rel, protected, {**expected, **expected_package_functions(rel)},
                       expected_names(rel, protected), targets, answers, maxima)


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


def _post_scan(nb) -> list:
    """Flags for output that was cut and cells that timed out."""
    from .preprocessors import TRUNCATION_NOTE
    flags = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts = [o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
        if any(TRUNCATION_NOTE in t for t in texts):
            flags.add("output-truncated")
        kind = instrument.inserted_kind(cell)
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError":
                if kind is not None:
                    where = cell.get("id", "").split("-", 2)[-1]
                elif nbgrader_meta(cell).get("grade"):
                    where = grade_id(cell)
                else:
                    where = f"cell-{cell.get('id', '?')}"
                flags.add(f"timeout:{where}")
    return sorted(flags)


def stage(course: Path, student: str, chapter: str, info: ChapterInfo) -> tuple:
    """Pre-grading checks; writes staged/<student>/<chapter>/. Returns (notebook or None, flags, forbidden
    static hits {exercise: targets})."""
    import nbformat
    from .structure import drop_duplicates, restore_structure
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
        return None, [f"unreadable-notebook:{type(e).__name__}"], {}
    sub, flags = drop_duplicates(sub)
    sub, found = restore_structure(info.release, sub)
    flags += found
    flags += [f"monkeypatch:{f}" for f in scan_monkeypatching(sub, info.protected)]
    static = forbidden.scan(sub, info.release, chapter)
    nbformat.write(sub, str(staged_dir / f"{chapter}.ipynb"))
    return sub, flags, static


_worker_api = None


def _api_for(plan: Plan):
    """This process's nbgrader API, on a private copy of the gradebook."""
    global _worker_api
    if _worker_api is None:
        folder = Path(tempfile.mkdtemp(prefix="textimg-gradebook-"))
        atexit.register(shutil.rmtree, folder, True)
        overrides = dict(plan.overrides)
        overrides["CourseDirectory.db_url"] = gradebook.private_copy(plan.course, folder)
        _worker_api = nbgrader_api(plan.course, overrides)
    return _worker_api


def grade_submission(plan: Plan, info: ChapterInfo, student: str, chapter: str) -> dict:
    """Grade one submission; returns {"status", "flags", "scores"} (scores only when graded)."""
    import nbformat
    from .scoring import read_outcomes, scores_and_flags
    course = plan.course
    sub, flags, static = stage(course, student, chapter, info)
    if sub is None:
        return {"status": "failed", "flags": flags, "scores": None}
    setup = instrument.RunSetup(expected=info.expected, names=info.names, trusted=instrument.trusted_roots(),
                                forbidden=info.forbidden, answers=info.answers)
    n_code = sum(c.cell_type == "code" for c in sub.cells) + 3 * len(info.maxima)
    hard_limit = plan.cell_timeout * (n_code + 2) + 60
    killed = []
    watchdog = threading.Timer(hard_limit, lambda: killed.append(_kill_kernels()))
    watchdog.daemon = True
    box = sandbox.Sandbox.create(plan.limits, plan.env) if plan.sandboxed else None
    instrument.set_current(setup)
    sandbox.set_current(box)
    try:
        with environment({} if plan.sandboxed else plan.env):
            watchdog.start()
            result = _api_for(plan).autograde(chapter, student, force=True, create=True)
    finally:
        watchdog.cancel()
        instrument.set_current(None)
        sandbox.set_current(None)
        if box is not None:
            box.remove()
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
    if any(f.startswith("grading-failed") for f in flags):
        return {"status": "failed", "flags": flags, "scores": None}
    executed = nbformat.read(str(graded), as_version=4)
    scores, found = scores_and_flags(read_outcomes(executed, setup.token), info.maxima)
    flags += found + _post_scan(executed)
    tests = instrument.exercise_of_tests(info.release)
    for exercise, targets in static.items():
        flags += [f"forbidden-call:{exercise}:{t} (in the code)" for t in targets]
        for test, ex in tests.items():
            if ex == exercise:
                scores[test] = 0.0
    return {"status": "graded", "flags": flags, "scores": scores, "token": setup.token}


def _init_worker(plan: Plan) -> None:
    global _worker_api
    _worker_api = None
    import warnings
    warnings.filterwarnings("ignore", module="nbgrader")


def _grade_task(args):
    plan, info, student, chapter = args
    try:
        return grade_submission(plan, info, student, chapter)
    except Exception as e:  # a bug or an odd notebook must not stop the batch
        return {"status": "failed", "flags": [f"grading-failed:{type(e).__name__} before grading: {str(e)[:200]}"],
                "scores": None}


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _run(tasks: list, jobs: int):
    """Yield results in task order, grading up to `jobs` submissions at once."""
    if jobs <= 1 or len(tasks) <= 1:
        _init_worker(tasks[0][0]) if tasks else None
        for task in tasks:
            yield _grade_task(task)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    # spawn: a fresh interpreter per worker (forking a process that holds ZeroMQ sockets is unsafe)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(tasks[0][0],)) as pool:
        yield from pool.map(_grade_task, tasks)


def autograde(course, timeout=None, chapters=None, students=None, env=None, log=print, jobs=1,
              unsandboxed=False, limits=None) -> dict:
    """Grade every submission (or the selected ones), each in its own sandboxed kernel, `jobs` at a time.
    Returns {"<student>/<chapter>": {"status", "flags"}} and writes it to grading_flags.json."""
    course = course_folder(course)
    gradebook.require(course)
    problem = sandbox.sandbox_problem()
    if problem is not None and not unsandboxed:
        raise SystemExit(f"Refusing to grade: {problem}, so submissions cannot be sealed off from your files. To "
                         f"fix it, {sandbox.INSTALL_HINT}.")
    if problem is not None:
        log(f"WARNING: grading WITHOUT a sandbox ({problem}): every submission runs with your rights.")
    env = dict(DEFAULT_KERNEL_ENV) if env is None else dict(env)
    overrides = {"CourseDirectory.submitted_directory": STAGED, "Autograde.sanitize_preprocessors": SANITIZE,
                 "Autograde.autograde_preprocessors": AUTOGRADE}
    if timeout is not None:
        overrides["Execute.timeout"] = int(timeout)
    api = nbgrader_api(course, overrides)
    cell_timeout = int(timeout) if timeout is not None else int(api.config.Execute.get("timeout", 60))
    jobs = max(1, int(jobs or default_jobs()))
    if jobs > 1:
        env.setdefault("OMP_NUM_THREADS", "1")  # one core per kernel
    plan = Plan(course, cell_timeout, env, problem is None, overrides, limits or sandbox.Limits())
    todo = submissions(course, chapters, students)
    released = set(released_chapters(course))
    for student, chapter in [t for t in todo if t[1] not in released]:
        log(f"{student}/{chapter}: skipped, {chapter} is not released in this course")
    todo = [t for t in todo if t[1] in released]
    if not todo:
        log("Nothing to grade: submitted/ is empty (run `textimg-lessons collect` first).")
        return {}
    expected = expected_signatures()
    infos = {ch: chapter_info(course, ch, expected) for ch in sorted({c for _, c in todo})}
    backup = gradebook.back_up(course, "before-autograde")
    all_flags, written = load_flags(course), {}
    tasks = [(plan, infos[chapter], student, chapter) for student, chapter in todo]
    for (student, chapter), outcome in zip(todo, _run(tasks, jobs)):
        key = f"{student}/{chapter}"
        flags = list(outcome["flags"])
        if outcome["status"] == "graded":
            flags += gradebook.write_scores(course, student, chapter, outcome["scores"])
            written[(student, chapter)] = outcome["scores"]
        else:
            gradebook.write_scores(course, student, chapter, {gid: 0.0 for gid in infos[chapter].maxima})
            stale = course / "autograded" / student / chapter
            if stale.exists():
                shutil.rmtree(stale)
        all_flags[key] = {"status": outcome["status"], "flags": sorted(set(flags))}
        if outcome.get("token"):  # feedback needs it to read the grader's lines (the kernel never sees this file)
            all_flags[key]["token"] = outcome["token"]
        save_flags(course, all_flags)
        log(f"{key}: {outcome['status']}" + (f"  [{'; '.join(sorted(set(flags)))}]" if flags else ""))
    gradebook.verify(course, written)
    log(f"gradebook checked; the copy taken before grading is {backup.relative_to(course)}")
    return {f"{s}/{c}": {k: all_flags[f"{s}/{c}"][k] for k in ("status", "flags")} for s, c in todo}

"""`check` (for students): run a notebook as the grader would and say which visible tests fail."""
from __future__ import annotations

from pathlib import Path

import copy

from . import cli, forbidden
from .instrument import RunSetup, add_recorders, exercise_of_tests, trusted_roots
from .nbgrader_private import changed_locked_cells, run_validator_preprocessors
from .nbgrader_setup import DEFAULT_KERNEL_ENV, environment
from .notebook import grade_id, nbgrader_meta
from .reports import ANSI_RE, fmt_points
from .scoring import read_outcomes
from .structure import drop_duplicates


def chapter_of(path: Path) -> str:
    """The chapter id in a notebook's file name ('01_backprop' for student/01_backprop.ipynb), else the stem."""
    for chapter in sorted(forbidden.FORBIDDEN, key=len, reverse=True):
        if chapter in path.stem:
            return chapter
    return path.stem


def _run_like_nbgrader(nb, timeout: int) -> tuple:
    """(executed notebook, edited test cells) with nbgrader's validator and the grader's preprocessors."""
    from nbgrader.preprocessors import ClearOutput
    from nbgrader.validator import Validator
    from traitlets.config import Config
    from .preprocessors import CappedExecute, ResultsAreNotScores, WarningsAreNotErrors
    cfg = Config()
    cfg.Execute.timeout = int(timeout)
    validator = Validator(config=cfg)
    changed = [c for c in changed_locked_cells(validator, nb) if not nbgrader_meta(c).get("solution")]
    validator.preprocessors = [ClearOutput, CappedExecute, WarningsAreNotErrors, ResultsAreNotScores]
    return run_validator_preprocessors(validator, nb), changed


def _run_plain(nb, timeout: int) -> tuple:
    """(executed notebook, []) with nbclient alone: a plain install (e.g. Colab) has no nbgrader. The
    verdicts are the same (a test fails when it raises); edited test cells cannot be detected without it."""
    import os
    from nbclient import NotebookClient
    from .sandbox import kernel_manager_class
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    extra = {"kernel_manager_class": kernel_manager_class()} if os.name == "posix" else {}
    NotebookClient(nb, timeout=int(timeout), allow_errors=True, kernel_name="python3", **extra).execute()
    return nb, []


def check_notebook(path, timeout=120, env=None, log=print) -> int:
    """Run a notebook as the grader would (nbgrader's validator when installed) and say which visible tests
    fail. Returns 0 when it runs and every test passes, 1 otherwise."""
    try:
        import nbformat
    except ImportError:
        raise SystemExit("check needs Jupyter's notebook tools: pip install jupyterlab") from None
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"{path} does not exist.")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:
        log(f"{path} is not a readable notebook ({type(e).__name__}: {e}). Re-download it or open it in "
            f"Jupyter and save it again.")
        return 1
    nb, duplicates = drop_duplicates(nb)
    for flag in duplicates:
        log(f"WARNING: {flag.split(':', 1)[1]} appears twice (a copied cell keeps its grading tag). The grader "
            f"grades the first one and runs the copy as plain code: delete the copy.")
    chapter = chapter_of(path)
    setup = RunSetup(trusted=trusted_roots())
    setup.forbidden, setup.answers = forbidden.per_test(nb, chapter)
    exercises = exercise_of_tests(nb)
    static = forbidden.scan(nb, None, chapter)
    tests = [c for c in nb.cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    if not tests:
        log(f"{path} has no graded test cells (nbgrader metadata missing?). Submit the student version you "
            f"were given; the grader restores stripped metadata but flags it.")
    run = _run_like_nbgrader if cli.nbgrader_installed() else _run_plain
    with environment(env if env is not None else dict(DEFAULT_KERNEL_ENV)):
        executed, changed = run(add_recorders(copy.deepcopy(nb), setup), timeout)
    problems = 0
    calls = dict(static)
    for outcome in read_outcomes(executed, setup.token).values():
        for flag in outcome.flags:
            if flag.startswith("forbidden-call:") and not flag.endswith("recording stopped"):
                calls.setdefault(exercises.get(outcome.gid, outcome.gid), []).append(flag.split(":", 2)[2])
    for exercise, targets in sorted(calls.items()):
        problems += 1
        log("NOT ALLOWED " + forbidden.allowed_message(exercise, sorted(set(targets)),
                                                       forbidden.answer_names(nb).get(exercise, [])))
    for c in changed:
        log(f"WARNING: test cell {grade_id(c)} was edited; the grader puts the original back, so your edit "
            f"will not count.")
    for i, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        nbg = nbgrader_meta(cell)
        label = grade_id(cell) or f"cell {i}"
        if nbg.get("grade"):
            max_score = nbg.get("points", 0)  # all or nothing per test cell, as the grader scores it
            if errors:
                problems += 1
                msg = ANSI_RE.sub("", f"{errors[0].get('ename')}: {errors[0].get('evalue')}")
                if errors and errors[0].get("ename") == "NotImplementedError":
                    msg = "not answered yet (the exercise still raises NotImplementedError)"
                log(f"FAIL  {label} ({fmt_points(max_score)} points): {msg}")
            else:
                log(f"ok    {label} ({fmt_points(max_score)} points)")
        elif errors and not any("NotImplementedError" == o.get("ename") for o in errors):
            problems += 1
            msg = ANSI_RE.sub("", f"{errors[0].get('ename')}: {errors[0].get('evalue')}")
            log(f"ERROR {label} does not run: {msg}")
        elif errors:
            problems += 1
            log(f"TODO  {label}: still raises NotImplementedError (exercise not done)")
    log("All visible tests pass and the notebook runs. Hidden tests run at grading time." if problems == 0
        else f"{problems} problem(s) above. Fix them and run the check again.")
    return 0 if problems == 0 else 1


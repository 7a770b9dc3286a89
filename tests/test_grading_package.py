"""The grading package's seams: what importing it costs, nbgrader's private API it relies on, and the
message a plain install gives for an instructor command."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_grading_command_line_does_not_import_nbgrader():
    code = ("import sys, textimg_lessons.grading.cli as c, argparse\n"
            "c.register(argparse.ArgumentParser().add_subparsers())\n"
            "import textimg_lessons.grading as G\n"
            "assert callable(G.register)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'nbgrader'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_nbgrader_private_api_is_still_there():
    """check relies on two private Validator methods (see grading/nbgrader_private.py). If this fails, nbgrader
    changed them: adapt nbgrader_private.py to the new nbgrader before releasing."""
    from nbgrader.validator import Validator
    from textimg_lessons.grading import nbgrader_private
    import inspect
    for name in nbgrader_private.PRIVATE_VALIDATOR_METHODS:
        method = getattr(Validator, name, None)
        assert callable(method), f"nbgrader.validator.Validator.{name} is gone"
        assert list(inspect.signature(method).parameters) == ["self", "nb"], \
            f"nbgrader.validator.Validator.{name} changed its signature: {inspect.signature(method)}"


def test_old_course_configs_still_find_the_preprocessors():
    from traitlets.utils.importstring import import_item
    for name in ["CappedExecute", "WarningsAreNotErrors", "ResultsAreNotScores", "MarkHiddenTests"]:
        assert import_item(f"textimg_lessons.grading.{name}").__name__ == name


@pytest.mark.parametrize("command", [["autograde", "--course", "x"], ["export", "--course", "x", "--csv", "y"],
                                     ["release", "--course", "x"], ["feedback", "--course", "x"]])
def test_instructor_commands_without_nbgrader_say_which_extra_to_install(command, monkeypatch, capsys):
    from textimg_lessons.grading import cli as grading_cli
    from textimg_lessons.cli import main
    monkeypatch.setattr(grading_cli, "nbgrader_installed", lambda: False)
    assert main(command) == 2
    assert "pip install 'textimg-lessons[instructor]'" in capsys.readouterr().out


def test_every_forbidden_function_exists_and_names_an_exercise_of_its_chapter():
    import importlib
    import nbformat
    from textimg_lessons.grading import forbidden
    for chapter, exercises in forbidden.FORBIDDEN.items():
        nb = nbformat.read(str(ROOT / "notebooks" / f"{chapter}.ipynb"), 4)
        solutions = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells
                     if c.metadata.get("nbgrader", {}).get("solution")}
        for exercise, targets in exercises.items():
            assert exercise in solutions, f"{chapter} has no exercise {exercise}"
            for target in targets:
                module, _, name = target.partition(":")
                assert callable(getattr(importlib.import_module(module), name)), target


@pytest.mark.parametrize("answer, caught", [
    ("def linear_backward_ex(dout, X, W):\n    return backprop.linear_backward(dout, X, W)", True),
    ("linear_backward_ex = backprop.linear_backward", True),
    ("from textimg_lessons.backprop import linear_backward as lb\ndef linear_backward_ex(d, X, W):\n"
     "    return lb(d, X, W)", True),
    ("def linear_backward_ex(d, X, W):\n    return getattr(backprop, 'linear_backward')(d, X, W)", True),
    ("import textimg_lessons.backprop\nlinear_backward_ex = textimg_lessons.backprop.linear_backward", True),
    ("def linear_backward_ex(dout, X, W):\n    return dout @ W, dout.T @ X, dout.sum(0)", False),
    ("def linear_backward_ex(dout, X, W):\n    backprop.linear_forward(X, W, None)\n    return dout @ W, dout.T @ X, "
     "dout.sum(0)", False),
])
def test_static_scan_finds_answers_that_call_the_course_implementation(answer, caught):
    import nbformat
    from textimg_lessons.grading import forbidden
    from grading_fixtures.synthetic import answer as make
    master = nbformat.read(str(ROOT / "notebooks" / "01_backprop.ipynb"), 4)
    found = forbidden.scan(make(master, {"ex3_linear_backward": answer}), master, "01_backprop")
    assert (found == {"ex3_linear_backward": ["textimg_lessons.backprop:linear_backward"]}) == caught, found


def test_static_scan_lets_one_exercise_use_what_another_may_not():
    import nbformat
    from textimg_lessons.grading import forbidden
    from grading_fixtures.synthetic import answer as make
    master = nbformat.read(str(ROOT / "notebooks" / "01_backprop.ipynb"), 4)
    checking_itself = ("def linear_backward_ex(dout, X, W):\n    dX = dout @ W\n"
                       "    assert numerical_gradient is not None\n    return dX, dout.T @ X, dout.sum(0)")
    assert forbidden.scan(make(master, {"ex3_linear_backward": checking_itself}), master, "01_backprop") == {}


@pytest.mark.parametrize("answer, caught", [
    ("@torch.no_grad()\ndef sample_ex(model, e, n, g):\n    return None", False),   # decorated like C.sample
    ("sample_ex = C.sample", True),
    ("import functools\nsample_ex = functools.partial(C.sample)", True),
])
def test_recorder_knows_an_answer_that_is_the_course_function_but_not_a_shared_decorator(answer, caught):
    """torch.no_grad() gives every decorated function the same code object: the recorder must compare the
    functions underneath, or every decorated answer would count as calling the course's function."""
    from textimg_lessons.grading import instrument
    namespace = {}
    exec("import torch\nfrom textimg_lessons import conditional as C\n" + answer, namespace)
    source = instrument.RECORD.format(targets=["textimg_lessons.conditional:sample"], answers=["sample_ex"],
                                      trusted=instrument.trusted_roots())
    try:
        exec(source, namespace)
    finally:
        sys.setprofile(None)
    recorder, seen = namespace["_textimg_recording"]
    assert (seen == ["textimg_lessons.conditional:sample"]) == caught, seen


def test_the_sandbox_binds_the_package_folder_but_not_the_repository_or_home(tmp_path, monkeypatch):
    from pathlib import Path
    from textimg_lessons.grading import sandbox
    monkeypatch.setenv("SECRET_TOKEN", "do-not-pass")
    box = sandbox.Sandbox(tmp_path, env={"TEXTIMG_FAST": "1"})
    args = box.bwrap_args()
    bound = {args[i + 1] for i, a in enumerate(args) if a in ("--ro-bind", "--bind")}
    writable = {args[i + 1] for i, a in enumerate(args) if a == "--bind"}
    assert str(ROOT / "textimg_lessons") in bound
    assert str(ROOT) not in bound and str(Path.home()) not in bound and "/" not in bound
    assert writable == {str(tmp_path)}
    assert "--unshare-all" in args and "--die-with-parent" in args and "--clearenv" in args
    assert "SECRET_TOKEN" not in args and "do-not-pass" not in args

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
                                     ["release", "--course", "x"], ["check", "nb.ipynb"]])
def test_instructor_commands_without_nbgrader_say_which_extra_to_install(command, monkeypatch, capsys):
    from textimg_lessons.grading import cli as grading_cli
    from textimg_lessons.cli import main
    monkeypatch.setattr(grading_cli, "nbgrader_installed", lambda: False)
    assert main(command) == 2
    assert "pip install 'textimg-lessons[instructor]'" in capsys.readouterr().out

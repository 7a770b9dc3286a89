"""The in-notebook check: it finds the notebook it runs in (Jupyter, Colab, a path) and shows `check`'s report."""
import json
import sys
import types

import nbformat
import pytest

from textimg_lessons import selfcheck


@pytest.fixture
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1 + 1")]
    path = tmp_path / "01_mine.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(autouse=True)
def outside_any_notebook(monkeypatch):
    for name in ("JPY_SESSION_NAME", selfcheck.RUNNING_MARK):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


def test_an_explicit_path_is_used(notebook):
    assert selfcheck.find_notebook(str(notebook)) == notebook


def test_a_missing_path_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"check_this_notebook\(\"01_backprop.ipynb\"\)"):
        selfcheck.find_notebook(tmp_path / "nope.ipynb")


def test_jupyter_session_name_absolute_or_relative(notebook, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    assert selfcheck.find_notebook() == notebook
    monkeypatch.chdir(notebook.parent)  # older servers: a path relative to the server root
    monkeypatch.setenv("JPY_SESSION_NAME", "student/" + notebook.name)
    assert selfcheck.find_notebook().resolve() == notebook.resolve()
    monkeypatch.setenv("JPY_SESSION_NAME", "Untitled-console")  # a console, not a notebook
    assert selfcheck.find_notebook() is None


def test_colab_notebook_is_fetched_from_the_frontend(monkeypatch, notebook):
    sent = json.loads(notebook.read_text())
    asked = []

    def blocking_request(kind, request="", timeout_sec=None):
        asked.append(kind)
        return {"ipynb": sent}
    colab = types.ModuleType("google.colab")
    colab._message = types.SimpleNamespace(blocking_request=blocking_request)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", colab._message)
    path = selfcheck.find_notebook()
    assert asked == ["get_ipynb"] and json.loads(path.read_text()) == sent


def test_colab_without_a_notebook_says_what_to_do(monkeypatch):
    colab = types.ModuleType("google.colab")
    colab._message = types.SimpleNamespace(blocking_request=lambda *a, **k: None)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", colab._message)
    with pytest.raises(RuntimeError, match="File > Download"):
        selfcheck.find_notebook()


def test_unknown_notebook_gets_instructions_not_a_crash(capsys):
    assert selfcheck.check_this_notebook() == 2
    assert "Pass its file name" in capsys.readouterr().out


def test_inside_the_checker_the_line_skips_itself(monkeypatch, notebook, capsys):
    monkeypatch.setenv(selfcheck.RUNNING_MARK, "1")
    monkeypatch.setattr(selfcheck, "check_command", lambda p: pytest.fail("must not check again"))
    assert selfcheck.check_this_notebook(notebook) == 0
    assert "skips itself" in capsys.readouterr().out


def test_report_and_exit_code_come_from_the_check(monkeypatch, notebook, capsys):
    fake = ("import os, sys; print('FAIL  ex1 (2 points):', sys.argv[1].endswith('01_mine.ipynb'), "
            f"os.environ.get({selfcheck.RUNNING_MARK!r})); sys.exit(1)")
    monkeypatch.setattr(selfcheck, "check_command", lambda p: [sys.executable, "-c", fake, str(p)])
    assert selfcheck.check_this_notebook(notebook) == 1
    assert "FAIL  ex1 (2 points): True 1" in capsys.readouterr().out


def test_a_hung_check_is_stopped(monkeypatch, notebook, capsys):
    monkeypatch.setattr(selfcheck, "check_command",
                        lambda p: [sys.executable, "-c", "import time; time.sleep(60)"])
    assert selfcheck.check_this_notebook(notebook, timeout=1) == 1
    assert "stopped after 1 s" in capsys.readouterr().out


def test_check_command_is_the_course_cli():
    cmd = selfcheck.check_command("a.ipynb")
    assert cmd[1:] == ["-m", "textimg_lessons.cli", "check", "a.ipynb"]


def test_real_check_of_a_notebook_that_contains_the_line(tmp_path):
    """End to end through `textimg-lessons check`: the line inside the checked notebook must not recurse."""
    pytest.importorskip("nbgrader")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from textimg_lessons.selfcheck import check_this_notebook\n"
                                          "assert check_this_notebook() == 0")]
    path = tmp_path / "with_line.ipynb"
    nbformat.write(nb, path)
    assert selfcheck.check_this_notebook(path, timeout=300) == 0


def test_a_missing_nbgrader_gets_an_install_hint(monkeypatch, notebook, capsys):
    fake = "import sys; print(\"ModuleNotFoundError: No module named 'nbgrader'\"); sys.exit(1)"
    monkeypatch.setattr(selfcheck, "check_command", lambda p: [sys.executable, "-c", fake])
    monkeypatch.setattr(selfcheck.importlib.util, "find_spec", lambda name: None)
    assert selfcheck.check_this_notebook(notebook) == 1
    assert "%pip install -q nbgrader" in capsys.readouterr().out

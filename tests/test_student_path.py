"""The default path is the learning path: make lab, chapter 0 and the README lead to the exercise versions,
and a student's install holds no instructor tools."""
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import nbformat
import pytest

from textimg_lessons import colab

ROOT = Path(__file__).resolve().parent.parent


def _extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"], project["optional-dependencies"]


def _names(reqs):
    return {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in reqs}


def test_students_install_has_no_instructor_tools():
    base, extras = _extras()
    assert "nbgrader" not in _names(base) | _names(extras["lab"])
    assert "nbgrader" in _names(extras["instructor"]) and "nbgrader" in _names(extras["test"])


def test_ipywidgets_that_colab_ships_is_accepted():
    base, _ = _extras()
    (spec,) = [r for r in base if r.startswith("ipywidgets")]
    assert spec.split(",")[0].replace(" ", "") in {"ipywidgets>=7.6", "ipywidgets>=7.7"}


def _make_dry_run(target):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "-B", target, "PYTHON=python3"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_make_lab_installs_the_lab_extra_only_and_opens_the_course_root():
    dry = _make_dry_run("lab")
    assert 'install --quiet -e ".[lab]"' in dry and "test" not in re.findall(r'-e "\.\[([^\]]*)\]"', dry)[0]
    assert "--ServerApp.root_dir=" in dry and "/lab/tree/notebooks/00_start_here.ipynb" in dry


def test_make_test_and_instructor_add_their_tools():
    assert '-e ".[lab,test]"' in _make_dry_run("test")
    assert '-e ".[lab,instructor]"' in _make_dry_run("instructor")


def test_chapter_0_leads_to_the_exercise_version_and_labels_the_solutions():
    nb = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    last = nb.cells[-1].source
    assert "(../student/01_backprop.ipynb)" in last and (ROOT / "student" / "01_backprop.ipynb").exists()
    assert "solution" in last.lower() and "**solutions**" in text
    assert "check_this_notebook()" in text


def test_readme_colab_links_open_the_exercise_versions():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\((https://colab\.research\.google\.com/[^)]+)\)", readme)
    chapters = sorted(p.name for p in (ROOT / "notebooks").glob("0[1-9]_*.ipynb"))
    base = colab.badge_source("student/x.ipynb").split("(")[-1].rsplit("/student/", 1)[0]
    for name in chapters:
        assert f"{base}/student/{name}" in links, f"README has no Colab link to student/{name}"
    for link in links:
        rel = link.split("/blob/main/", 1)[1]
        assert link.startswith(base) and (ROOT / rel).exists(), link
        assert rel.startswith("student/") or rel == "notebooks/00_start_here.ipynb", link

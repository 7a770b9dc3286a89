"""Hostile and careless submissions, graded in one batch with correct ones (issue: grading an instructor can
trust). Each attack must leave: a grade row for everyone, full marks for the correct submissions, the
cheater flagged with 0 on what the attack touched, the gradebook, the config and other submissions
unchanged, no process left behind, and no hidden test in any feedback page.
"""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sqlite3
import time

import nbformat
import psutil
import pytest

from grading_fixtures import attacks as A
from grading_fixtures import synthetic as S
from textimg_lessons import grading as G
from textimg_lessons.cli import main as cli

TIMEOUT = 30


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    base = tmp_path_factory.mktemp("attacks")
    notebooks, course, drop = base / "notebooks", base / "course", base / "drop"
    master = A.guard_master()
    S.write(master, notebooks / "01_guard.ipynb")
    assert cli(["release", "--course", str(course), "--notebooks", str(notebooks)]) == 0
    expected = A.attacks(master, course, notebooks)
    for student, (nb, _, _) in expected.items():
        S.write(nb, drop / f"{student}_01_guard.ipynb")
    assert cli(["collect", str(drop), "--course", str(course)]) == 0
    before = {"config": _digest(course / "nbgrader_config.py"),
              "victor": _digest(course / "submitted" / "victor" / "01_guard" / "01_guard.ipynb")}
    assert cli(["autograde", "--course", str(course), "--timeout", str(TIMEOUT), "--jobs", "2"]) == 0
    assert cli(["export", "--course", str(course), "--csv", str(base / "grades.csv")]) == 0
    assert cli(["feedback", "--course", str(course)]) == 0
    return {"base": base, "course": course, "expected": expected, "before": before,
            "rows": _rows(base / "grades.csv"), "flags": json.loads((course / G.FLAGS_FILE).read_text())}


def _points(rows, student):
    return [float(r["points"]) for r in rows if r["student"] == student]


@pytest.mark.parametrize("student", ["alice", "victor", "vandal", "reader", "stealth", "stealth2", "printer", "direct",
                                     "alias", "sneaky", "tracer", "patcher", "careless"])
def test_every_submission_gets_its_grade_and_flags(batch, student):
    nb, points, must_flag = batch["expected"][student]
    assert _points(batch["rows"], student) == points, student
    flags = batch["flags"][f"{student}/01_guard"]["flags"]
    for want in must_flag:
        assert any(f.startswith(want) for f in flags), f"{student}: {want!r} not in {flags}"
    if not must_flag:
        assert flags == [], f"{student} should not be flagged: {flags}"


def test_the_course_folder_is_out_of_reach_of_submissions(batch):
    course = batch["course"]
    assert _digest(course / "nbgrader_config.py") == batch["before"]["config"]
    assert _digest(course / "submitted" / "victor" / "01_guard" / "01_guard.ipynb") == batch["before"]["victor"]
    assert not (course / "pwned").exists()
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("SELECT count(*) FROM grade WHERE manual_score IS NOT NULL").fetchone()[0] == 0
    graded = nbformat.read(str(course / "autograded" / "vandal" / "01_guard" / "01_guard.ipynb"), 4)
    printed = "".join(o.get("text", "") for c in graded.cells for o in c.get("outputs", []))
    assert printed.count("blocked:") == 3, printed


def test_no_process_started_by_a_submission_survives_grading(batch):
    time.sleep(1)
    alive = [p for p in psutil.process_iter(["cmdline"]) if A.MARKER in " ".join(p.info["cmdline"] or [])]
    assert alive == []


def test_feedback_pages_never_show_hidden_tests(batch):
    pages = list((batch["course"] / "feedback").rglob("*.html"))
    assert len(pages) == len(batch["expected"])
    for page in pages:
        text = page.read_text()
        assert S.SENTINEL not in text and "HIDDEN TESTS" not in text, page
    printer = (batch["course"] / "feedback" / "printer" / "01_guard" / "01_guard.html").read_text()
    assert "Score: 2 / 5" in printer


def test_a_manual_score_is_reported_by_export_and_discarded_by_a_regrade(batch, tmp_path):
    from nbgrader.api import Gradebook
    course = batch["course"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.find_grade("ex2_double_test", "01_guard", "01_guard", "reader").manual_score = 3
        gb.db.commit()
    assert cli(["export", "--course", str(course), "--csv", str(tmp_path / "a.csv")]) == 0
    rows = [r for r in _rows(tmp_path / "a.csv") if r["student"] == "reader"]
    assert [r["points"] for r in rows] == ["0", "0"]
    assert "manual-score-ignored:ex2_double_test=3" in rows[0]["flags"]
    assert cli(["autograde", "--course", str(course), "--timeout", str(TIMEOUT), "--student", "reader"]) == 0
    flags = json.loads((course / G.FLAGS_FILE).read_text())["reader/01_guard"]["flags"]
    assert "manual-score-discarded:ex2_double_test=3" in flags
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_grade("ex2_double_test", "01_guard", "01_guard", "reader").manual_score is None


def test_a_deleted_gradebook_stops_every_command_with_the_backup_to_restore(batch, tmp_path, capsys):
    course = tmp_path / "course"
    shutil.copytree(batch["course"], course)
    (course / "gradebook.db").unlink()
    for command in (["export", "--course", str(course), "--csv", str(tmp_path / "x.csv")],
                    ["feedback", "--course", str(course)], ["autograde", "--course", str(course)]):
        with pytest.raises(SystemExit, match="gradebook.db is missing.*restore the newest backup with `cp "):
            cli(command)
    assert not (course / "gradebook.db").exists(), "a command silently created an empty gradebook"
    newest = sorted((course / "backups").glob("gradebook-*.db"))[-1]
    shutil.copy2(newest, course / "gradebook.db")
    assert cli(["export", "--course", str(course), "--csv", str(tmp_path / "restored.csv")]) == 0
    def points(rows):
        return [(r["student"], r["exercise"], r["points"]) for r in rows]
    assert points(_rows(tmp_path / "restored.csv")) == points(batch["rows"])


def test_grading_refuses_to_run_without_a_sandbox_unless_told_to(batch, monkeypatch):
    from textimg_lessons.grading import sandbox
    monkeypatch.setattr(sandbox, "sandbox_problem", lambda: "bubblewrap (bwrap) is not installed")
    with pytest.raises(SystemExit, match="Refusing to grade: bubblewrap .* --unsandboxed"):
        G.autograde(batch["course"], students=["alice"])


def test_check_warns_about_copied_cells_and_answers_that_call_the_course_implementation(batch, tmp_path, capfd):
    nb = A.attacks(A.guard_master(), batch["course"], tmp_path)["careless"][0]
    S.write(nb, tmp_path / "careless" / "01_guard.ipynb")
    assert cli(["check", str(tmp_path / "careless" / "01_guard.ipynb"), "--timeout", str(TIMEOUT)]) == 0
    out = capfd.readouterr().out
    assert "ex1_relu appears twice" in out and "All visible tests pass" in out
    assert "Kernel is running over TCP" not in out and "WARNING" not in out.replace("WARNING: ex1_relu", "").replace(
        "WARNING: ex2_double_test", "")
    nb = A.attacks(A.guard_master(), batch["course"], tmp_path)["sneaky"][0]
    S.write(nb, tmp_path / "sneaky" / "01_guard.ipynb")
    assert cli(["check", str(tmp_path / "sneaky" / "01_guard.ipynb"), "--timeout", str(TIMEOUT)]) == 1
    out = capfd.readouterr().out
    assert "relu_backward_ex" in out and "backprop.relu_backward" in out and "Write it yourself" in out


def test_check_works_without_nbgrader_as_on_a_plain_install(batch, tmp_path, capfd, monkeypatch):
    from textimg_lessons.grading import cli as grading_cli
    monkeypatch.setattr(grading_cli, "nbgrader_installed", lambda: False)
    nb = A.attacks(A.guard_master(), batch["course"], tmp_path)["direct"][0]
    S.write(nb, tmp_path / "direct" / "01_guard.ipynb")
    assert cli(["check", str(tmp_path / "direct" / "01_guard.ipynb"), "--timeout", str(TIMEOUT)]) == 1
    out = capfd.readouterr().out
    assert "NOT ALLOWED relu_backward_ex (ex1_relu)" in out and "ok    ex2_double_test (3 points)" in out

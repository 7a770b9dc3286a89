"""The instructor workflow end to end on tiny synthetic chapters (fast), plus the real chapters' student versions.

One module-scoped course is released, fed an LMS-style folder of demo and adversarial submissions, autograded
once (per-cell timeout TIMEOUT) and exported; most tests read that result. Everything runs in a tmp dir.
"""
from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import nbformat
import pytest

from grading_fixtures import synthetic as S
from textimg_lessons import grading as G
from textimg_lessons.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 20  # seconds per cell; the hanging submission costs this much


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _points(rows, student, chapter):
    return [float(r["points"]) for r in rows if r["student"] == student and r["chapter"] == chapter]


def _flags(rows, student, chapter):
    found = {r["flags"] for r in rows if r["student"] == student and r["chapter"] == chapter}
    assert len(found) == 1, f"rows of {student}/{chapter} disagree on flags: {found}"
    return [f for f in found.pop().split("; ") if f]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    notebooks = base / "notebooks"
    tiny, torchy = S.tiny_master(), S.torchy_master()
    S.write(tiny, notebooks / "01_tiny.ipynb")
    S.write(torchy, notebooks / "02_torchy.ipynb")
    course = base / "course"
    assert cli(["release", "--course", str(course), "--notebooks", str(notebooks)]) == 0

    lms = base / "lms"
    assert cli(["demo-submissions", "01_tiny", "--out", str(lms), "--notebooks", str(notebooks)]) == 0
    expected = {  # student -> chapter -> (points per test cell, flags that must be there)
        "alice": {"01_tiny": ([2, 3, 1], [])},             # demo: correct
        "bob": {"01_tiny": ([2, 0, 0], [])},               # demo: partial
        "carol_12345": {"01_tiny": ([0, 0, 0], [])},       # demo: wrong (Canvas-style name)
        "dave_smith_4242": {"01_tiny": ([0, 0, 0], [])},   # demo: broken (Moodle-style name)
    }
    S.write(tiny, lms / "master_01_tiny.ipynb")  # the master itself, hidden tests and all
    expected["master"] = {"01_tiny": ([2, 3, 1], [])}
    blank = nbformat.read(str(course / "release" / "01_tiny" / "01_tiny.ipynb"), as_version=4)
    S.write(blank, lms / "blank_01_tiny.ipynb")  # a fresh student version
    expected["blank"] = {"01_tiny": ([0, 0, 0], [])}
    for name, (nb, pts, flags) in S.tiny_submissions(tiny).items():
        S.write(nb, lms / f"{name}_01_tiny.ipynb")
        expected.setdefault(name, {})["01_tiny"] = (pts, flags)
    for name, (nb, pts, flags) in S.torchy_submissions(torchy).items():
        S.write(nb, lms / f"{name}_02_torchy.ipynb")
        expected.setdefault(name, {})["02_torchy"] = (pts, flags)
    zip_path = base / "download.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in sorted(lms.rglob("*")):
            if p.is_file():
                zf.write(p, Path("submissions") / p.relative_to(lms))
    assert cli(["collect", str(zip_path), "--course", str(course)]) == 0
    assert cli(["autograde", "--course", str(course), "--timeout", str(TIMEOUT)]) == 0
    csv_path = base / "grades.csv"
    assert cli(["export", "--course", str(course), "--csv", str(csv_path)]) == 0
    assert cli(["feedback", "--course", str(course)]) == 0
    return {"base": base, "course": course, "csv": csv_path, "rows": _read_csv(csv_path), "expected": expected,
            "notebooks": notebooks}


# ---- grades ----------------------------------------------------------------------------------------
def test_csv_has_the_documented_columns_and_one_row_per_test_cell(graded):
    rows = graded["rows"]
    assert list(rows[0].keys()) == ["student", "chapter", "exercise", "points", "max_points", "flags"]
    n_expected = sum(len(pts) for chapters in graded["expected"].values() for pts, _ in chapters.values())
    assert len(rows) == n_expected
    assert [r["max_points"] for r in rows if r["student"] == "alice"] == ["2", "3", "1"]


@pytest.mark.parametrize("student", ["alice", "master", "bob", "carol_12345", "dave_smith_4242", "blank",
                                     "hiddenfail", "importerror", "hang", "megabytes", "editedtest",
                                     "deletedtest", "stripped", "warnings", "patchnumpy", "patchexec", "crash",
                                     "unreadable", "patchtorch"])
def test_each_submission_gets_the_expected_grade_and_flags(graded, student):
    for chapter, (points, must_flag) in graded["expected"][student].items():
        assert _points(graded["rows"], student, chapter) == points, f"{student}/{chapter}"
        flags = _flags(graded["rows"], student, chapter)
        for want in must_flag:
            assert any(f.startswith(want) for f in flags), f"{student}/{chapter}: {want!r} not in {flags}"
        if not must_flag:
            assert flags == [], f"{student}/{chapter} should not be flagged: {flags}"


def test_master_scores_full_marks_and_fresh_student_version_scores_zero_without_crashing(graded):
    flags = json.loads((graded["course"] / G.FLAGS_FILE).read_text())
    assert flags["master/01_tiny"]["status"] == "graded" and flags["blank/01_tiny"]["status"] == "graded"
    assert sum(_points(graded["rows"], "master", "01_tiny")) == 6
    assert sum(_points(graded["rows"], "blank", "01_tiny")) == 0


def test_warnings_on_stderr_do_not_zero_a_correct_answer_and_stay_visible(graded):
    nb = nbformat.read(str(graded["course"] / "autograded" / "warnings" / "02_torchy" / "02_torchy.ipynb"), 4)
    test_cell = next(c for c in nb.cells if G.grade_id(c) == "ex1_relu_test")
    text = "".join(o.get("text", "") for o in test_cell.outputs)
    assert "UserWarning" in text and "copy construct" in text
    assert _points(graded["rows"], "warnings", "02_torchy") == [2]


def test_huge_output_is_capped_in_the_graded_copy(graded):
    path = graded["course"] / "autograded" / "megabytes" / "01_tiny" / "01_tiny.ipynb"
    assert path.stat().st_size < 400_000, path.stat().st_size
    assert G.TRUNCATION_NOTE in path.read_text()


def test_a_failed_submission_does_not_leave_a_graded_copy_or_stale_grades(graded):
    assert not (graded["course"] / "autograded" / "crash" / "01_tiny").exists()
    assert (graded["course"] / "logs" / "autograde" / "crash__01_tiny.log").exists()
    page = (graded["course"] / "feedback" / "crash" / "01_tiny" / "01_tiny.html").read_text()
    assert "Score: 0 / 6" in page and "grading-failed:kernel died" in page
    assert "not graded" in page and ">passed<" not in page


# ---- hidden tests never leak -----------------------------------------------------------------------
def test_hidden_tests_are_neither_in_student_versions_nor_in_feedback(graded):
    course = graded["course"]
    released = list((course / "release").rglob("*.ipynb"))
    pages = list((course / "feedback").rglob("*.html"))
    assert len(released) == 2
    assert len(pages) == sum(len(ch) for ch in graded["expected"].values())
    for path in released + pages:
        text = path.read_text()
        assert S.SENTINEL not in text, path
        assert "HIDDEN TESTS" not in text, path
    # ...while the graded copies do contain them (so the sentinel check above can fail)
    assert S.SENTINEL in (course / "autograded" / "alice" / "01_tiny" / "01_tiny.ipynb").read_text()


def test_feedback_shows_scores_visible_messages_and_only_that_a_hidden_test_failed(graded):
    fb = graded["course"] / "feedback"
    page = (fb / "hiddenfail" / "01_tiny" / "01_tiny.html").read_text()
    assert "Score: 4 / 6" in page and "a hidden test failed" in page
    page = (fb / "carol_12345" / "01_tiny" / "01_tiny.html").read_text()
    assert "Score: 0 / 6" in page and "failed: " in page and "a hidden test failed" not in page
    page = (fb / "hang" / "01_tiny" / "01_tiny.html").read_text()
    assert "timed out" in page
    page = (fb / "editedtest" / "01_tiny" / "01_tiny.html").read_text()
    assert "test-cell-edited:ex1_double_test" in page


# ---- re-running ------------------------------------------------------------------------------------
def test_rerunning_release_and_autograde_keeps_gradebook_submissions_and_csv(graded):
    course, first = graded["course"], graded["csv"].read_text()
    submitted = sorted(p.relative_to(course) for p in (course / "submitted").rglob("*.ipynb"))
    assert cli(["release", "--course", str(course), "--notebooks", str(graded["notebooks"])]) == 0
    assert sorted(p.relative_to(course) for p in (course / "submitted").rglob("*.ipynb")) == submitted
    again = graded["base"] / "after_release.csv"
    assert cli(["export", "--course", str(course), "--csv", str(again)]) == 0
    assert again.read_text() == first
    assert list((course / "backups").glob("gradebook-*.db"))
    # regrade the submissions whose grading is most likely to vary; the whole CSV must not change
    args = ["autograde", "--course", str(course), "--timeout", str(TIMEOUT)]
    for s in ["bob", "megabytes", "stripped", "patchexec", "crash", "unreadable"]:
        args += ["--student", s]
    assert cli(args) == 0
    regraded = graded["base"] / "regraded.csv"
    assert cli(["export", "--course", str(course), "--csv", str(regraded)]) == 0
    assert regraded.read_text() == first


def test_export_refuses_to_overwrite_a_different_csv_without_force(graded, tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("something else\n")
    assert cli(["export", "--course", str(graded["course"]), "--csv", str(target)]) == 1
    assert target.read_text() == "something else\n"
    assert cli(["export", "--course", str(graded["course"]), "--csv", str(target), "--force"]) == 0
    assert target.read_text() == graded["csv"].read_text()


# ---- collect ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, chapter, expected", [
    ("alice_01_tiny.ipynb", None, ("alice", "01_tiny")),
    ("Alice-01_tiny (1).ipynb", None, ("alice", "01_tiny")),
    ("bob/01_tiny.ipynb", None, ("bob", "01_tiny")),
    ("download/bob/01_tiny.ipynb", None, ("bob", "01_tiny")),
    ("carol/01_tiny/01_tiny.ipynb", None, ("carol", "01_tiny")),
    ("smith_12345_67890_01_tiny.ipynb", None, ("smith_12345", "01_tiny")),
    ("smith_late_12345_67890_01_tiny-1.ipynb", None, ("smith_12345", "01_tiny")),
    ("Jane Doe_777_assignsubmission_file_01_tiny.ipynb", None, ("jane_doe_777", "01_tiny")),
    ("Jane Doe_777_assignsubmission_file_/whatever.ipynb", "01_tiny", ("jane_doe_777", "01_tiny")),
    ("dave.ipynb", "01_tiny", ("dave", "01_tiny")),
    ("eve_02_torchy.ipynb", None, ("eve", "02_torchy")),
])
def test_match_submission_patterns(path, chapter, expected):
    assert G.match_submission(path, ["01_tiny", "02_torchy"], chapter) == expected


@pytest.mark.parametrize("path, chapter, reason", [
    ("notes.txt", None, "not a notebook"),
    ("random.ipynb", None, "no chapter id"),
    ("01_tiny.ipynb", None, "no student name"),
    ("eve_02_torchy.ipynb", "01_tiny", "belongs to 02_torchy"),
])
def test_match_submission_reports_why_a_file_does_not_match(path, chapter, reason):
    student, why = G.match_submission(path, ["01_tiny", "02_torchy"], chapter)
    assert student is None and reason in why


def test_collect_reports_unmatched_files_and_never_overwrites_silently(tmp_path, capsys):
    course = tmp_path / "course"
    tiny = S.tiny_master()
    S.write(tiny, tmp_path / "notebooks" / "01_tiny.ipynb")
    assert cli(["release", "--course", str(course), "--notebooks", str(tmp_path / "notebooks")]) == 0
    drop = tmp_path / "drop"
    S.write(tiny, drop / "alice_01_tiny.ipynb")
    S.write(tiny, drop / "bob" / "01_tiny.ipynb")
    (drop / "notes.txt").write_text("not a notebook")
    S.write(tiny, drop / "random.ipynb")
    S.write(tiny, drop / "__MACOSX" / "._alice_01_tiny.ipynb")
    capsys.readouterr()
    assert cli(["collect", str(drop), "--course", str(course)]) == 0
    out = capsys.readouterr().out
    assert "2 imported" in out and "UNMATCHED notes.txt" in out and "UNMATCHED random.ipynb" in out
    assert "__MACOSX" not in out
    original = (course / "submitted" / "alice" / "01_tiny" / "01_tiny.ipynb").read_text()
    # same files again: nothing to do
    assert cli(["collect", str(drop), "--course", str(course)]) == 0
    assert "2 unchanged" in capsys.readouterr().out
    # a different file for alice: refused without --force, old one kept
    changed = S.answer(tiny, {})
    S.write(changed, drop / "alice_01_tiny.ipynb")
    assert cli(["collect", str(drop), "--course", str(course)]) == 1
    assert "REFUSED" in capsys.readouterr().out
    assert (course / "submitted" / "alice" / "01_tiny" / "01_tiny.ipynb").read_text() == original
    # with --force: replaced, and the old one is in backups/
    assert cli(["collect", str(drop), "--course", str(course), "--force"]) == 0
    assert (course / "submitted" / "alice" / "01_tiny" / "01_tiny.ipynb").read_text() != original
    backups = list((course / "backups" / "submitted" / "alice" / "01_tiny").glob("*/01_tiny.ipynb"))
    assert len(backups) == 1 and backups[0].read_text() == original


def test_release_explains_what_is_wrong_with_the_chapters_asked_for(tmp_path):
    S.write(S.tiny_master(), tmp_path / "notebooks" / "01_tiny.ipynb")
    no_tests = S.tiny_master()
    no_tests.cells = [c for c in no_tests.cells if not c.metadata.get("nbgrader")]
    S.write(no_tests, tmp_path / "notebooks" / "00_intro.ipynb")
    assert G.chapters_with_exercises(tmp_path / "notebooks") == ["01_tiny"]
    with pytest.raises(SystemExit, match="No notebook for 09_nope"):
        G.release(tmp_path / "course", ["09_nope"], tmp_path / "notebooks")
    with pytest.raises(SystemExit, match="no graded test cells"):
        G.release(tmp_path / "course", ["00_intro"], tmp_path / "notebooks")
    with pytest.raises(SystemExit, match="not a course folder"):
        G.autograde(tmp_path / "elsewhere")


# ---- pre-grading checks (no kernel) ----------------------------------------------------------------
def test_static_scan_finds_patches_of_functions_the_tests_use():
    nb = S.answer(S.tiny_master(), {"ex1_double": (
        "import numpy.testing as npt\nfrom torch import testing as tt\nimport builtins\n"
        "npt.assert_allclose = print\ntt.assert_close = print\nsetattr(np, 'allclose', print)\n"
        "builtins.abs = print\ndef double(x):\n    return x")})
    found = G.scan_monkeypatching(nb)
    assert {"numpy.testing.assert_allclose", "torch.testing.assert_close", "numpy.allclose",
            "builtins.abs"} <= set(found)
    clean = S.answer(S.tiny_master(), {})
    assert G.scan_monkeypatching(clean) == []


def test_static_scan_flags_redefining_a_name_the_tests_import():
    master = S.tiny_master()
    protected = G.protected_names(master)
    assert protected == {"np"}
    nb = S.answer(master, {"ex1_double": "np = None\ndef double(x):\n    return x"})
    assert "redefines np" in G.scan_monkeypatching(nb, protected)


def test_runtime_probe_knows_the_course_reference_functions_and_imported_names():
    nb = S.tiny_master()
    nb.cells[1].source = "import numpy as np\nimport textimg_lessons.checks as ck\nfrom textimg_lessons.checks import check_close"
    nb.cells[3].source += "\nck.check_shape('x', double([1]), (1,))\ncheck_close('x', 1.0, 1.0)"
    expected = G.expected_package_functions(nb)
    assert "textimg_lessons.checks:check_close" in expected
    names = G.expected_names(nb, G.protected_names(nb))
    assert names["np"] == ["module", "numpy"] and names["check_close"][2] == "check_close"


def test_autograde_environment_defaults_to_fast_offline_and_can_be_overridden():
    assert G.parse_env([]) == {"TEXTIMG_FAST": "1", "TEXTIMG_OFFLINE": "1"}
    assert G.parse_env(["TEXTIMG_FAST=0", "TEXTIMG_DEVICE=cpu"]) == {
        "TEXTIMG_FAST": "0", "TEXTIMG_OFFLINE": "1", "TEXTIMG_DEVICE": "cpu"}
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        G.parse_env(["TEXTIMG_FAST"])


def test_restore_structure_puts_back_metadata_and_deleted_cells():
    release = S.tiny_master()
    sub, _, _ = S.tiny_submissions(release)["stripped"]
    fixed, flags = G.restore_structure(release, sub)
    assert G.graded_ids(fixed) == G.graded_ids(release)
    assert flags == ["metadata-restored:6-cells"]
    sub, _, _ = S.tiny_submissions(release)["deletedtest"]
    fixed, flags = G.restore_structure(release, sub)
    assert G.graded_ids(fixed) == G.graded_ids(release) and flags == ["test-cell-deleted:ex2_square_test"]


# ---- student side ----------------------------------------------------------------------------------
def test_check_lists_failing_visible_tests_and_passes_a_correct_notebook(graded, tmp_path, capsys):
    student = graded["course"] / "release" / "01_tiny" / "01_tiny.ipynb"
    assert cli(["check", str(student), "--timeout", str(TIMEOUT)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  ex1_double_test (2 points)" in out and "NotImplementedError" in out
    good = tmp_path / "mine.ipynb"
    S.write(S.answer(nbformat.read(str(student), 4), {
        "ex1_double": "def double(x):\n    return 2 * np.asarray(x, dtype=float)",
        "ex2_square": "def square(x):\n    return np.asarray(x, dtype=float) ** 2",
        "ex3_mean": "def mean(x):\n    return sum(x) / len(x)"}), good)
    assert cli(["check", str(good), "--timeout", str(TIMEOUT)]) == 0
    assert "All visible tests pass" in capsys.readouterr().out


# ---- the real chapters ------------------------------------------------------------------------------
REAL = G.chapters_with_exercises(ROOT / "notebooks")


def test_committed_student_versions_equal_a_fresh_release(tmp_path):
    if not REAL:
        pytest.skip("no chapter notebook has exercises yet")
    fresh = tmp_path / "student"
    G.release(tmp_path / "course", REAL, ROOT / "notebooks", student_dir=fresh, log=lambda *a: None)
    fix = "textimg-lessons release --course /tmp/textimg-course --student-dir student"
    committed = sorted(p.stem for p in (ROOT / "student").glob("[0-9][0-9]_*.ipynb"))
    assert committed == REAL, f"student/ has {committed}, the chapters with exercises are {REAL}: run `{fix}`"
    for chapter in REAL:
        want = nbformat.read(str(fresh / f"{chapter}.ipynb"), 4)
        have = nbformat.read(str(ROOT / "student" / f"{chapter}.ipynb"), 4)
        def cells(nb):
            return [(c.cell_type, c.source, {k: v for k, v in c.metadata.items() if k != "execution"})
                    for c in nb.cells]
        assert cells(have) == cells(want), f"student/{chapter}.ipynb is stale: run `{fix}`"
        text = (ROOT / "student" / f"{chapter}.ipynb").read_text()
        assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
        from textimg_lessons import colab
        assert colab.check(str(ROOT / "student" / f"{chapter}.ipynb")) == []


def test_real_chapter_master_scores_full_marks_and_student_version_zero(tmp_path):
    """Chapter 01_backprop when it has exercises, else the first chapter that does."""
    if not REAL:
        pytest.skip("no chapter notebook has exercises yet (the synthetic chapter covers this meanwhile)")
    chapter = "01_backprop" if "01_backprop" in REAL else REAL[0]
    course = tmp_path / "course"
    G.release(course, [chapter], ROOT / "notebooks", log=lambda *a: None)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / f"teacher_{chapter}.ipynb").write_bytes((ROOT / "notebooks" / f"{chapter}.ipynb").read_bytes())
    (drop / f"blank_{chapter}.ipynb").write_bytes((course / "release" / chapter / f"{chapter}.ipynb").read_bytes())
    G.collect(drop, course, log=lambda *a: None)
    results = G.autograde(course, timeout=300, log=lambda *a: None)
    assert results[f"teacher/{chapter}"] == {"status": "graded", "flags": []}
    assert results[f"blank/{chapter}"] == {"status": "graded", "flags": []}
    rows = G.gradebook_rows(course)
    teacher = [r for r in rows if r["student"] == "teacher"]
    assert teacher and all(r["points"] == r["max_points"] for r in teacher), teacher
    assert all(float(r["points"]) == 0 for r in rows if r["student"] == "blank")

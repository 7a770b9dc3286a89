import json

import pytest

from textimg_lessons import bench, cli, doctor


def test_doctor_reports_every_requirement(capsys):
    ok = doctor.doctor()
    out = capsys.readouterr().out
    for name in ["python", "torch", "torchvision", "transformers", "device", "MNIST offline subset",
                 "offline language model"]:
        assert f" {name}:" in out
    assert ok == ("required check(s) failed" not in out)


def test_missing_and_old_packages_say_how_to_fix():
    r = doctor.check_package("no_such_module_xyz", "no-such-dist-xyz", "1.0", True, "testing")
    assert not r.ok and "pip install 'no-such-dist-xyz>=1.0'" in r.fix and r.line().startswith("[FAIL]")
    r = doctor.check_package("torch", "torch", "999.0", True, "testing")
    assert not r.ok and "older than 999.0" in r.detail
    r = doctor.check_package("nbval", "nbval", "0.1", False, "testing")
    assert r.ok


def test_optional_failure_is_a_warning():
    r = doctor.Result(False, "x", "missing", "do y", required=False)
    assert r.line().startswith("[WARN]") and "-> do y" in r.line()


def test_version_parsing():
    assert doctor._version_tuple("2.14.1+cu130") == (2, 14, 1)
    assert doctor._version_tuple("0.29.1rc1") == (0, 29, 1)


def test_cli_doctor_exit_code():
    assert cli.main(["doctor"]) in (0, 1)


def test_cli_without_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "doctor" in capsys.readouterr().out


def test_bench_unknown_chapter():
    with pytest.raises(SystemExit):
        cli.main(["bench", "99_nothing"])


def test_bench_writes_json_with_required_fields(tmp_path, monkeypatch):
    # a stand-in chapter module, so this test checks the report format, not a chapter's training
    import sys
    import types
    mod = types.ModuleType("fake_chapter")
    mod.bench = lambda: [{"metric": "test_accuracy", "value": 0.5, "dataset": "mnist", "target": ">= 0.4",
                          "met": True}]
    monkeypatch.setitem(sys.modules, "fake_chapter", mod)
    monkeypatch.setitem(bench.CHAPTERS, "99_fake", "fake_chapter")
    out = tmp_path / "sub" / "out.json"
    report = bench.run("99_fake", fast=True, json_path=str(out))
    saved = json.loads(out.read_text())
    assert saved == report
    row = saved["results"][0]
    for key in ["metric", "value", "wall_seconds", "device", "dataset", "mode"]:
        assert key in row
    assert row["mode"] == "fast" and row["device"] == "cpu"


def test_doctor_fails_on_a_data_cache_that_is_a_file(monkeypatch, tmp_path, capsys):
    (tmp_path / "cache").write_text("x")
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path / "cache"))
    assert doctor.doctor() is False
    out = capsys.readouterr().out
    assert "[FAIL] data cache:" in out and "is a file, not a folder" in out and "-> Set TEXTIMG_DATA" in out
    assert "Traceback" not in out and "All required checks passed" not in out


def test_doctor_names_a_writable_data_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path / "cache"))
    r = doctor.check_data_cache()
    assert r.ok and "writable" in r.detail


def test_optional_tools_say_which_target_installs_them():
    spec = next(s for s in doctor.PACKAGES if s[0] == "nbgrader")
    r = doctor.check_package(spec[0], "no-such-dist-xyz", *spec[2:])
    assert not r.ok and not r.required and "make instructor" in r.fix and r.line().startswith("[WARN]")


def test_doctor_accepts_the_ipywidgets_colab_ships():
    spec = next(s for s in doctor.PACKAGES if s[0] == "ipywidgets")
    assert doctor._version_tuple("7.7.1") >= doctor._version_tuple(spec[2])


# Modules a student's environment may lack (plain install, Colab): the doctor, the check helpers and the
# in-notebook check must work without them.
INSTRUCTOR_ONLY = ("nbgrader", "jupyter_server", "jupyterlab", "notebook", "nbclient", "nbconvert", "nbval")
BLOCK = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {INSTRUCTOR_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Block())
"""


def test_doctor_and_checks_work_without_instructor_tools(tmp_path):
    import os
    import subprocess
    import sys
    code = BLOCK + """
from textimg_lessons import checks, doctor, selfcheck
import torch
checks.check_close("x", torch.ones(2), torch.ones(2))
doctor.doctor()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in %r)
print("LOADED", loaded)
""" % (INSTRUCTOR_ONLY,)
    env = {**os.environ, "TEXTIMG_DATA": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED []" in out.stdout and "[OK] x: exact" in out.stdout and "python:" in out.stdout

"""A small torch chapter that uses the course package, and hostile or careless submissions of it.

01_guard has two exercises: relu_backward_ex (2 points; may not call textimg_lessons.backprop.relu_backward,
declared in its solution cell's metadata, while its test uses that function as the reference) and double_ex
(3 points). Each attack is written as a student would write it; `attacks(course)` needs the course folder's
path because a real attacker would look for it.
"""
from __future__ import annotations

import copy

from nbformat.v4 import new_code_cell, new_notebook

from .synthetic import SENTINEL, answer, solution, test

MARKER = "textimg-attack-marker"
FORBIDDEN = "textimg_lessons.backprop:relu_backward"
RELU_OK = "def relu_backward_ex(dout, Z):\n    return dout * (Z > 0).to(dout.dtype)"
DOUBLE_OK = "def double_ex(x):\n    return 2 * x"


def guard_master():
    relu = solution("ex1_relu", "def relu_backward_ex(dout, Z):\n    ### BEGIN SOLUTION\n"
                    "    return dout * (Z > 0).to(dout.dtype)\n    ### END SOLUTION", "ex1")
    relu.metadata["textimg_lessons"] = {"forbidden": [FORBIDDEN]}
    cells = [
        new_code_cell("import torch\nfrom textimg_lessons import backprop as bp\n"
                      "from textimg_lessons.checks import check_close, run_check", id="imports"),
        relu,
        test("ex1_relu_test",
             "Z = torch.tensor([[1.0, -2.0], [0.5, -0.1]], dtype=torch.float64)\nd = torch.ones_like(Z)\n"
             "check_close('dZ', run_check('relu_backward_ex', relu_backward_ex, d, Z), bp.relu_backward(d, Z))",
             f"check_close('{SENTINEL} dZ', relu_backward_ex(3 * d, -Z), bp.relu_backward(3 * d, -Z))",
             2, "ex1-test"),
        solution("ex2_double", "def double_ex(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                 "ex2"),
        test("ex2_double_test",
             "check_close('double', double_ex(torch.tensor([1.0, 2.0])), torch.tensor([2.0, 4.0]))",
             f"check_close('{SENTINEL} double of 7', double_ex(torch.tensor([7.0])), torch.tensor([14.0]))",
             3, "ex2-test"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _sub(master, relu=RELU_OK, double=DOUBLE_OK):
    return answer(master, {"ex1_relu": relu, "ex2_double": double})


def attacks(master, course, notebooks) -> dict:
    """student -> (notebook, points per test, flags that must appear (prefixes))."""
    out = {"alice": (_sub(master), [2, 3], []), "victor": (_sub(master), [2, 3], [])}
    # 1. walks to the course folder: overwrites another submission, appends to the config, writes the
    #    gradebook, and leaves a process behind that would do it again later
    vandal = f'''{DOUBLE_OK}
import os, pathlib, sqlite3, subprocess, sys
course = pathlib.Path({str(course)!r})
for attempt in [
    lambda: (course / "submitted" / "victor" / "01_guard" / "01_guard.ipynb").write_text("{{}}"),
    lambda: open(course / "nbgrader_config.py", "a").write("\\nimport os; os.system('touch pwned')\\n"),
    lambda: sqlite3.connect(str(course / "gradebook.db")).execute("UPDATE grade SET manual_score = 99"),
]:
    try:
        attempt()
    except Exception as e:
        print("blocked:", type(e).__name__)
code = "import time, pathlib; time.sleep(20); (pathlib.Path({str(course)!r}) / 'pwned').write_text('x')"
subprocess.Popen([sys.executable, "-c", code, "{MARKER}"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)'''
    out["vandal"] = (_sub(master, double=vandal), [2, 3], [])
    # 2. reads the solutions from the instructor's source/ and the package's master notebooks
    reader = f'''import json, pathlib, textimg_lessons
places = [pathlib.Path({str(course)!r}) / "source" / "01_guard" / "01_guard.ipynb",
          pathlib.Path({str(notebooks)!r}) / "01_guard.ipynb",
          pathlib.Path(textimg_lessons.__file__).parent.parent / "notebooks" / "01_guard.ipynb"]
for place in places:
    try:
        for cell in json.loads(place.read_text())["cells"]:
            if cell["metadata"].get("nbgrader", {{}}).get("solution"):
                exec("".join(cell["source"]))
    except OSError as e:
        print("cannot read", type(e).__name__)'''
    out["reader"] = (_sub(master, relu=reader, double="pass"), [0, 0], [])
    # 3. an input transformer that turns every later test into `pass` (otherwise unanswered)
    stealth = '''def _quiet(lines):
    return ["pass\\n"] if any("check_close(" in l or "run_check(" in l for l in lines) else lines
get_ipython().input_transformers_cleanup.append(_quiet)
def relu_backward_ex(dout, Z):
    raise NotImplementedError()'''
    out["stealth"] = (_sub(master, relu=stealth, double="def double_ex(x):\n    raise NotImplementedError()"),
                      [0, 0], ["hook:input transformer", "no-proof:"])
    # ... and one that rewrites only the checking lines, so the grader's proof lines still print
    lines_only = '''def _quiet(lines):
    return ["pass\\n" if "check_close(" in l else l for l in lines]
get_ipython().input_transformers_cleanup.append(_quiet)
def relu_backward_ex(dout, Z):
    return Z'''
    out["stealth2"] = (_sub(master, relu=lines_only, double="def double_ex(x):\n    return x"), [0, 0],
                       ["hook:input transformer"])
    # 4. right on the visible test, wrong on the hidden one, with print replaced to hide the grader's marker
    printer = '''import builtins
_print = print
vars(builtins)["print"] = lambda *a, **k: _print(*[x for x in a if "hidden" not in str(x)], **k)
def double_ex(x):
    return torch.tensor([2.0, 4.0])'''
    out["printer"] = (_sub(master, double=printer), [2, 0], ["monkeypatch-runtime:builtins.print"])
    # 5. answers that delegate to the course's own implementation
    out["direct"] = (_sub(master, relu="def relu_backward_ex(dout, Z):\n    return bp.relu_backward(dout, Z)"),
                     [0, 3], [f"forbidden-call:ex1_relu_test:{FORBIDDEN}", f"forbidden-call:ex1_relu:{FORBIDDEN}"])
    out["alias"] = (_sub(master, relu="relu_backward_ex = bp.relu_backward"), [0, 3],
                    [f"forbidden-call:ex1_relu_test:{FORBIDDEN}"])
    sneaky = ('def relu_backward_ex(dout, Z):\n    mod = __import__("textimg_lessons.backprop", fromlist=["x"])\n'
              '    return getattr(mod, "relu" + "_backward")(dout, Z)')
    out["sneaky"] = (_sub(master, relu=sneaky), [0, 3], [f"forbidden-call:ex1_relu_test:{FORBIDDEN}"])
    # 6. a tracer, and the check helper replaced (module attribute and the name the tests use)
    tracer = (RELU_OK + "\nimport sys, threading, time\nsys.settrace(lambda *a: None)\n"
              "threading.Thread(target=lambda: time.sleep(600), daemon=True).start()")
    out["tracer"] = (_sub(master, relu=tracer), [0, 0], ["tracer:sys.settrace", "thread:Thread"])
    patcher = ('def relu_backward_ex(dout, Z):\n    return Z\nimport textimg_lessons.checks as ck\n'
               'exec("ck.check_close = lambda *a, **k: 0.0")\nexec("check_close = ck.check_close")')
    out["patcher"] = (_sub(master, relu=patcher, double="def double_ex(x):\n    return x"), [0, 0],
                      ["monkeypatch-runtime:textimg_lessons.checks.check_close",
                       "monkeypatch-runtime:name check_close"])
    # 7. careless: a solution cell and a test cell copied with their nbgrader metadata
    nb = _sub(master)
    dup_solution = copy.deepcopy(nb.cells[1])
    dup_solution["id"] = "copy-1"
    dup_test = copy.deepcopy(nb.cells[4])
    dup_test["id"] = "copy-2"
    nb.cells[2:2] = [dup_solution]
    nb.cells.append(dup_test)
    out["careless"] = (nb, [2, 3], ["duplicate-cell:ex1_relu", "duplicate-cell:ex2_double_test"])
    return out

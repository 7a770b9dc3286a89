"""Tiny master notebooks and adversarial submissions for the grading tests (fast: no data, few cells).

01_tiny uses NumPy only (kernels start quickly); 02_torchy uses PyTorch for the torch-specific cases
(monkeypatching torch.allclose, a real PyTorch UserWarning). Hidden tests contain SENTINEL so tests can
grep for leaks.
"""
from __future__ import annotations

import copy
import json

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SENTINEL = "SENTINEL_HIDDEN_7f3a"


def _meta(gid, *, solution=False, grade=False, locked=False, points=0):
    return {"nbgrader": {"schema_version": 3, "grade_id": gid, "solution": solution, "grade": grade,
                         "locked": locked, "points": points}}


def solution(gid, body, cid):
    return new_code_cell(body, id=cid, metadata=_meta(gid, solution=True))


def test(gid, visible, hidden, points, cid):
    src = f"{visible}\n### BEGIN HIDDEN TESTS\n# {SENTINEL}\n{hidden}\n### END HIDDEN TESTS"
    return new_code_cell(src, id=cid, metadata=_meta(gid, grade=True, locked=True, points=points))


def tiny_master():
    """01_tiny: three exercises worth 2, 3 and 1 points."""
    cells = [
        new_markdown_cell("# Tiny chapter\nThree small exercises.", id="intro"),
        new_code_cell("import numpy as np", id="imports"),
        solution("ex1_double", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * np.asarray(x, dtype=float)\n"
                 "    ### END SOLUTION", "ex1"),
        test("ex1_double_test",
             "np.testing.assert_allclose(double([1, 2]), [2.0, 4.0], err_msg='double([1, 2]) should be [2, 4]')\n"
             "print('[OK] double([1, 2])')",
             f"np.testing.assert_allclose(double(np.arange(5.0)), 2 * np.arange(5.0), err_msg='{SENTINEL} double')",
             2, "ex1-test"),
        solution("ex2_square", "def square(x):\n    ### BEGIN SOLUTION\n    return np.asarray(x, dtype=float) ** 2\n"
                 "    ### END SOLUTION", "ex2"),
        test("ex2_square_test",
             "np.testing.assert_allclose(square([3.0]), [9.0], err_msg='square([3]) should be [9]')\n"
             "print('[OK] square([3])')",
             f"np.testing.assert_allclose(square([-2.0, 0.5]), [4.0, 0.25], err_msg='{SENTINEL} square')",
             3, "ex2-test"),
        solution("ex3_mean", "def mean(x):\n    ### BEGIN SOLUTION\n    return float(np.sum(x)) / len(x)\n"
                 "    ### END SOLUTION", "ex3"),
        test("ex3_mean_test",
             "assert abs(mean([1.0, 3.0]) - 2.0) < 1e-9, 'mean([1, 3]) should be 2'\nprint('[OK] mean([1, 3])')\n"
             "abs(mean([1.0, 3.0]) - 2.0)  # a test may end in a value (0.0 here): not a score",
             f"assert abs(mean([5.0]) - 5.0) < 1e-9, '{SENTINEL} mean'",
             1, "ex3-test"),
        new_markdown_cell("That is all.", id="outro"),
        new_code_cell("print('done')", id="done"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def torchy_master():
    """02_torchy: one exercise (2 points) checked with torch.allclose."""
    cells = [
        new_code_cell("import torch", id="imports"),
        solution("ex1_relu", "def relu(x):\n    ### BEGIN SOLUTION\n    return torch.clamp(x, min=0)\n"
                 "    ### END SOLUTION", "ex1"),
        test("ex1_relu_test",
             "assert torch.allclose(relu(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 2.0])), "
             "'relu([-1, 2]) should be [0, 2]'",
             f"assert torch.allclose(relu(torch.tensor([[-3.0, 0.5]])), torch.tensor([[0.0, 0.5]])), '{SENTINEL}'",
             2, "ex1-test"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def answer(master, answers: dict, strip_meta=False):
    """A submission: the master with hidden tests removed and solution cells replaced by `answers`
    (grade_id -> full cell source; a grade_id missing from `answers` keeps the master's solution)."""
    nb = copy.deepcopy(master)
    for cell in nb.cells:
        nbg = cell.metadata.get("nbgrader", {})
        if nbg.get("grade"):
            cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
        if nbg.get("solution"):
            src = answers.get(nbg["grade_id"])
            if src is None:
                src = "\n".join(l for l in cell.source.split("\n") if "SOLUTION" not in l)
            cell.source = src
    return nb


STUB = "raise NotImplementedError()"


def tiny_submissions(master):
    """student -> (notebook or raw bytes, expected points per exercise, flags that must appear)."""
    m = master
    out = {}  # correct, partial, wrong and broken submissions come from `demo-submissions` (see the tests)
    # passes the visible test by accident, fails the hidden one
    out["hiddenfail"] = (answer(m, {"ex1_double": "def double(x):\n    return np.array([2.0, 4.0])"}), [0, 3, 1], [])
    nb = answer(m, {})
    nb.cells[1].source = "import numpy as np\nimport numpy_helpers_that_do_not_exist as nh"
    nb.cells[4].source = "def square(x):\n    return nh.square(x)"
    out["importerror"] = (nb, [2, 0, 1], [])
    out["hang"] = (answer(m, {"ex2_square": "def square(x):\n    while True:\n        pass"}), [2, 0, 1],
                   ["timeout:ex2_square_test"])
    nb = answer(m, {})
    nb.cells[2].source += "\nprint('x' * 3_000_000)\nfor i in range(100_000):\n    print(i)"
    out["megabytes"] = (nb, [2, 3, 1], ["output-truncated"])
    nb = answer(m, {"ex1_double": "def double(x):\n    return x"})
    nb.cells[3].source = "print('tests? what tests')"
    out["editedtest"] = (nb, [0, 3, 1], ["test-cell-edited:ex1_double_test"])
    nb = answer(m, {"ex2_square": "def square(x):\n    return x"})
    nb.cells = [c for c in nb.cells if c.get("id") != "ex2-test"]
    out["deletedtest"] = (nb, [2, 0, 1], ["test-cell-deleted:ex2_square_test"])
    nb = answer(m, {})
    for i, cell in enumerate(nb.cells):  # as a tool that drops metadata and renumbers cells would leave it
        cell.metadata = {}
        cell["id"] = f"renumbered-{i}"
    nb.cells.insert(3, nbformat.v4.new_code_cell("print('a cell the student added')", id="added"))
    out["stripped"] = (nb, [2, 3, 1], ["metadata-restored:6-cells"])
    nb = answer(m, {"ex1_double": "def double(x):\n    return x\nnp.testing.assert_allclose = lambda *a, **k: None"})
    # the patch is in place when every test runs: none of them can be trusted
    out["patchnumpy"] = (nb, [0, 0, 0], ["monkeypatch:numpy.testing.assert_allclose",
                                          "monkeypatch-runtime:numpy.testing.assert_allclose"])
    # the same patch hidden from the static scan: only the runtime probe sees it
    nb = answer(m, {"ex1_double": "def double(x):\n    return x\n"
                                  "exec('np.testing.assert_allclose = lambda *a, **k: None')"})
    out["patchexec"] = (nb, [0, 0, 0], ["monkeypatch-runtime:numpy.testing.assert_allclose"])
    nb = answer(m, {})
    nb.cells[2].source += "\nimport os\nos._exit(1)"
    out["crash"] = (nb, [0, 0, 0], ["grading-failed:kernel died"])
    out["unreadable"] = (b'{"cells": [ this is not json', [0, 0, 0], ["unreadable-notebook:"])
    return out


def torchy_submissions(master):
    m = master
    out = {}
    # torch.tensor(tensor) emits PyTorch's UserWarning on stderr
    out["warnings"] = (answer(m, {"ex1_relu": "def relu(x):\n    return torch.clamp(torch.tensor(x), min=0)"}),
                       [2], [])
    out["patchtorch"] = (answer(m, {"ex1_relu": "def relu(x):\n    return x\ntorch.allclose = lambda *a, **k: True"}),
                         [0], ["monkeypatch:torch.allclose", "monkeypatch-runtime:torch.allclose"])
    return out


def write(nb_or_bytes, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb_or_bytes, bytes):
        path.write_bytes(nb_or_bytes)
    else:
        path.write_text(json.dumps(nb_or_bytes, indent=1))

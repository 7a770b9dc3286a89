"""What the grader adds to a submission before it runs, so that its scores rest on what the grader saw.

After nbgrader has put the original test cells back, each graded test cell becomes:

    probe    (inserted)  are the functions, builtins, input transformers, tracers and hooks the tests rely on
                         still the originals? prints the findings with this run's token
    record   (inserted)  only for exercises that may not call some course functions: starts recording such
                         calls made from the student's code, and checks that the answer is not one of them
    visible  (inserted)  the test's visible part, then a proof line
    test     (graded)    the hidden part (or the whole test when it has none), then a proof line
    report   (inserted)  stops the recording and prints the calls seen

Every line the grader relies on starts with a random token made for this submission's run; the kernel
first sees it when the first grader cell runs, after the student's first cells. A test cell whose proof
line is missing scores 0 (something stopped it from running as written: an input transformer, a patched
`print`, an exception swallowed by a hook).
Feedback shows only the visible cell's printed text and error, so nothing a hidden test computes or prints
can reach a student, whatever the submission does to `print`.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .notebook import HIDDEN_BEGIN, HIDDEN_END, grade_id, is_test_cell, nbgrader_meta

CELL_PREFIX = "textimg-"
KINDS = ("probe", "record", "visible", "report")


@dataclass
class RunSetup:
    """Everything the inserted cells of one submission need (see autograding.grade_one)."""
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    expected: dict = field(default_factory=dict)       # "module:attr" -> signature (monkeypatch.signature)
    names: dict = field(default_factory=dict)          # notebook name -> signature or ["module", name]
    trusted: list = field(default_factory=list)        # folders whose code is the course's or Python's
    forbidden: dict = field(default_factory=dict)      # test grade_id -> ["module:function", ...]
    answers: dict = field(default_factory=dict)        # test grade_id -> names the exercise defines


# The setup of the submission being graded in this process (autograde grades one at a time per process).
_current: RunSetup | None = None


def set_current(setup: RunSetup | None) -> None:
    global _current
    _current = setup


def current() -> RunSetup | None:
    return _current


def cell_id(kind: str, gid: str) -> str:
    return f"{CELL_PREFIX}{kind}-{gid}"[:64]


def inserted_kind(cell) -> str | None:
    """'probe', 'record', 'visible' or 'report' for a cell the grader inserted, else None."""
    cid = cell.get("id", "") or ""
    for kind in KINDS:
        if cid.startswith(f"{CELL_PREFIX}{kind}-"):
            return kind
    return None


def split_hidden(source: str):
    """(visible part, graded part) of a test cell's source. The graded part keeps the hidden regions (and
    anything after the first one); (None, source) when a hidden region is indented and cannot be split."""
    lines = source.split("\n")
    begins = [i for i, line in enumerate(lines) if HIDDEN_BEGIN in line]
    if not begins:
        return None, source
    if any(line != line.lstrip() for line in lines if HIDDEN_BEGIN in line or HIDDEN_END in line):
        return None, source
    first = begins[0]
    return "\n".join(lines[:first]), "\n".join(lines[first:])


def proof_line(token: str, kind: str, gid: str) -> str:
    return f"\nprint({token!r} + '|' + {kind!r} + '|' + {gid!r}, flush=True)"


PROBE = '''\
# Inserted by the grader, not part of the submission.
def _textimg_probe(expected={expected!r}, names={names!r}, trusted={trusted!r}):
    import builtins, json, sys, threading
    def sig(o):
        code = getattr(o, "__code__", None)
        return [type(o).__name__, getattr(o, "__module__", None), getattr(o, "__qualname__", None),
                getattr(code, "co_filename", None), getattr(code, "co_firstlineno", None)]
    def origin(o):
        o = getattr(o, "__func__", o)
        if type(o).__name__ == "partial":
            return origin(o.func)
        code = getattr(o, "__code__", None)
        if code is not None:
            name = code.co_filename
        elif type(o).__name__ in ("builtin_function_or_method", "method-wrapper", "wrapper_descriptor",
                                  "method_descriptor"):
            return None
        else:
            cls = o if isinstance(o, type) else type(o)
            if cls.__module__ in ("builtins", "_frozen_importlib", "_frozen_importlib_external", "zipimport"):
                return None
            name = getattr(sys.modules.get(cls.__module__), "__file__", None) or "?"
        return None if name.startswith("<frozen") or any(name.startswith(t) for t in trusted) else name
    bad = []
    for key, want in expected.items():
        mod_name, attr = key.split(":")
        obj = sys.modules.get(mod_name)
        if obj is None:
            continue
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            bad.append("monkeypatch-runtime:" + mod_name + "." + attr)
            continue
        if sig(obj) != want:
            bad.append("monkeypatch-runtime:" + mod_name + "." + attr)
    user = globals()
    for name, want in names.items():
        if name in user and (user[name] is not sys.modules.get(want[1]) if want[0] == "module"
                             else sig(user[name]) != want):
            bad.append("monkeypatch-runtime:name " + name)
    if sys.gettrace() is not None or threading._trace_hook is not None:
        bad.append("tracer:sys.settrace")
    if sys.getprofile() is not None or threading._profile_hook is not None:
        bad.append("tracer:sys.setprofile")
    ip = get_ipython()
    hooks = {{"input transformer": list(ip.input_transformers_cleanup) + list(ip.input_transformers_post)
                                   + list(ip.input_transformer_manager.cleanup_transforms)
                                   + list(ip.input_transformer_manager.line_transforms)
                                   + list(ip.input_transformer_manager.token_transformers),
              "AST transformer": list(ip.ast_transformers),
              "event callback": [f for fs in ip.events.callbacks.values() for f in fs],
              "import hook": list(sys.meta_path) + list(sys.path_hooks),
              "display hook": [sys.displayhook, sys.excepthook]}}
    for what, items in hooks.items():
        for f in items:
            if origin(f) is not None:
                bad.append("hook:" + what)
    if ip.custom_exceptions:
        bad.append("hook:custom exception handler")
    for thread in threading.enumerate():  # a thread of the student's could undo and redo a patch around a probe
        target = getattr(thread, "_target", None) or getattr(type(thread), "run", None)
        if origin(target) is not None:
            bad.append("thread:" + type(thread).__name__)
    for name in ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "transform_cell", "showtraceback",
                 "_showtraceback", "get_exception_only"):
        if origin(vars(ip)[name] if name in vars(ip) else getattr(type(ip), name, None)) is not None:
            bad.append("hook:shell." + name)
    print({token!r} + "|probe|" + {gid!r} + "|" + json.dumps(sorted(set(bad))), flush=True)
_textimg_probe()
del _textimg_probe
'''

RECORD = '''\
# Inserted by the grader, not part of the submission: does the answer call what this exercise may not?
def _textimg_record(targets={targets!r}, answers={answers!r}, trusted={trusted!r}):
    import functools, importlib, json, sys
    codes, seen = {{}}, []
    for target in targets:
        mod_name, _, attr = target.partition(":")
        try:
            obj = importlib.import_module(mod_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception:
            continue
        for _ in range(10):  # the function itself, not a decorator's shared wrapper (e.g. torch.no_grad)
            inner = getattr(obj, "__wrapped__", None) or getattr(obj, "__func__", None)
            if inner is None:
                break
            obj = inner
        if hasattr(obj, "__code__"):
            codes[obj.__code__] = target
    user = globals()
    for name in answers:
        f, depth = user.get(name), 0
        while f is not None and depth < 10:
            if getattr(f, "__code__", None) in codes:
                seen.append(codes[f.__code__])
                break
            f, depth = getattr(f, "func", None) or getattr(f, "__wrapped__", None) or getattr(f, "__func__", None), \\
                depth + 1
    cell_dir = sys._getframe().f_code.co_filename.rsplit("/", 1)[0]
    def mine(name):
        return not (name.startswith("<frozen") or any(name.startswith(t) for t in trusted))
    def recorder(frame, event, arg):
        if event != "call" or frame.f_code not in codes:
            return
        chain, f = [], frame.f_back
        while f is not None:
            chain.append(f.f_code.co_filename)
            f = f.f_back
        cells = [name for name in chain if name.startswith(cell_dir + "/")]
        test = cells[-1] if cells else None
        if any(mine(name) and name != test for name in chain):
            seen.append(codes[frame.f_code])
    sys.setprofile(recorder)
    return recorder, seen
_textimg_recording = _textimg_record()
del _textimg_record
'''

REPORT = '''\
# Inserted by the grader, not part of the submission.
def _textimg_report(recording):
    import json, sys
    recorder, seen = recording if isinstance(recording, tuple) and len(recording) == 2 else (None, ["?"])
    intact = sys.getprofile() is recorder
    sys.setprofile(None)
    print({token!r} + "|report|" + {gid!r} + "|" + json.dumps({{"calls": sorted(set(map(str, seen))),
                                                              "intact": intact}}), flush=True)
_textimg_report(globals().pop("_textimg_recording", None))
del _textimg_report
'''


def _code_cell(source: str, kind: str, gid: str):
    from nbformat.v4 import new_code_cell
    return new_code_cell(source, id=cell_id(kind, gid))


def instrument(nb, setup: RunSetup):
    """Insert the probe/record/visible/report cells around every test cell and add the proof lines."""
    cells = []
    for cell in nb.cells:
        if not is_test_cell(cell):
            cells.append(cell)
            continue
        gid = grade_id(cell)
        cells.append(_code_cell(PROBE.format(expected=setup.expected, names=setup.names, trusted=setup.trusted,
                                             token=setup.token, gid=gid), "probe", gid))
        record, report = recorder_cells(gid, setup)
        cells += record
        visible, graded = split_hidden(cell.source)
        if visible is not None:
            cells.append(_code_cell(visible + proof_line(setup.token, "visible", gid)
                                    + f"\n_textimg_visible_passed = {gid!r}", "visible", gid))
            # the hidden part runs only after the visible part passed (a hanging answer costs one timeout)
            graded = (f"if globals().pop('_textimg_visible_passed', None) != {gid!r}:\n"
                      f"    raise AssertionError('the visible tests above failed')\n" + graded)
        cell.source = graded + proof_line(setup.token, "passed", gid)
        cells += [cell] + report
    nb.cells = cells
    return nb


def recorder_cells(gid: str, setup: RunSetup) -> tuple:
    """([record cell], [report cell]) around test `gid` when its exercise may not call some functions."""
    targets = setup.forbidden.get(gid, [])
    if not targets:
        return [], []
    return ([_code_cell(RECORD.format(targets=targets, answers=setup.answers.get(gid, []), trusted=setup.trusted),
                        "record", gid)],
            [_code_cell(REPORT.format(token=setup.token, gid=gid), "report", gid)])


def add_recorders(nb, setup: RunSetup):
    """Only the record/report cells (for `check`, which runs the student's notebook as it is)."""
    cells = []
    for cell in nb.cells:
        record, report = recorder_cells(grade_id(cell), setup) if is_test_cell(cell) else ([], [])
        cells += record + [cell] + report
    nb.cells = cells
    return nb


def trusted_roots() -> list:
    """Folders holding Python's and the course package's own code (code from anywhere else is the student's)."""
    import os
    import sys
    from pathlib import Path
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots |= {p for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.add(str(Path(__file__).resolve().parent.parent))
    return sorted(r.rstrip("/") + "/" for r in roots)


def exercise_of_tests(nb) -> dict:
    """test grade_id -> the grade_id of the solution cell before it (the exercise it tests)."""
    out, current_solution = {}, None
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and grade_id(cell):
            current_solution = grade_id(cell)
        elif is_test_cell(cell) and current_solution is not None:
            out[grade_id(cell)] = current_solution
    return out

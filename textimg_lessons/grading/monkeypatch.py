"""Finding replaced functions: a static scan of the student's cells and a runtime probe before each test.

A submission that replaces a function the tests rely on (numpy/torch comparisons, the course's check
helpers, builtins, names the tests import) could pass tests it should fail. The static scan reads the
student-editable cells; the probe, inserted before every test cell, compares what the kernel holds with the
originals recorded in the grader's own process.
"""
from __future__ import annotations

import ast

from .pysource import dotted_name, import_aliases, parse_cell
from .notebook import is_locked, nbgrader_meta

# Functions the tests rely on. A submission that replaces one of them is flagged (static scan + runtime probe).
PROTECTED = {
    "numpy": ["allclose", "isclose", "array_equal", "abs", "max", "testing.assert_allclose",
              "testing.assert_array_equal", "testing.assert_array_almost_equal", "testing.assert_almost_equal",
              "testing.assert_equal"],
    "torch": ["allclose", "isclose", "equal", "abs", "max", "testing.assert_close", "Tensor.allclose",
              "Tensor.equal", "Tensor.__eq__", "Tensor.__sub__", "Tensor.abs", "Tensor.max"],
    "textimg_lessons.checks": ["check_close", "check_shape", "check_dtype", "check_gradient",
                               "numerical_gradient", "relative_error", "check_raises", "run_check", "CheckFailed",
                               "check_vectorised"],
    "builtins": ["abs", "all", "any", "isinstance", "len", "max", "min", "float", "round", "AssertionError",
                 "print", "exec", "eval", "compile", "__import__", "getattr", "setattr", "hasattr", "repr", "str",
                 "int", "bool", "sum", "range", "zip", "type", "open", "sorted", "list", "dict", "tuple", "set",
                 "Exception", "BaseException", "callable", "iter", "next", "id", "globals", "vars"],
}
WATCHED_ROOTS = ("numpy", "torch", "textimg_lessons", "builtins", "math", "scipy", "unittest", "pytest")


def protected_names(release_nb) -> set:
    """Names the tests use that the course imports (e.g. np, torch, check_close) and no exercise defines."""
    code = [c for c in release_nb.cells if c.cell_type == "code"]
    trees = [t for t in (parse_cell(c.source) for c in code) if t is not None]
    imported = {k for k, v in import_aliases(trees).items() if v.split(".")[0] in WATCHED_ROOTS}
    used = set()
    for c in code:
        if nbgrader_meta(c).get("grade"):
            t = parse_cell(c.source)
            if t is not None:
                used |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    defined = set()
    for c in code:
        if nbgrader_meta(c).get("solution"):
            t = parse_cell(c.source)
            if t is not None:
                for n in ast.walk(t):
                    if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                        defined.add(n.name)
                    elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                        defined.add(n.id)
    return (imported & used) - defined


def scan_monkeypatching(nb, protected=()) -> list:
    """Static scan of the student-editable code cells for replacements of functions the tests rely on.
    Returns findings such as 'numpy.testing.assert_allclose' or 'redefines check_close'."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    trees = [(c, parse_cell(c.source)) for c in code]
    aliases = import_aliases([t for _, t in trees if t is not None])
    aliases.setdefault("__builtins__", "builtins")

    def resolve(parts):
        if not parts or parts[0] not in aliases:
            return None
        full = ".".join([aliases[parts[0]]] + parts[1:])
        return full if full.split(".")[0] in WATCHED_ROOTS else None

    found = set()
    for cell, tree in trees:
        if tree is None or is_locked(cell):
            continue
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            elif isinstance(node, ast.Delete):
                targets = node.targets
            for t in targets:
                for sub in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]):
                    if isinstance(sub, (ast.Attribute, ast.Subscript)):
                        hit = resolve(dotted_name(sub))
                        if hit:
                            found.add(hit)
                    elif isinstance(sub, ast.Name) and sub.id in protected:
                        found.add(f"redefines {sub.id}")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in protected:
                found.add(f"redefines {node.name}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    bound = a.asname or a.name.split(".")[0]
                    mod = getattr(node, "module", None) or a.name
                    if bound in protected and mod.split(".")[0] not in WATCHED_ROOTS:
                        found.add(f"redefines {bound}")
            if isinstance(node, ast.Call):
                fn = dotted_name(node.func) or []
                if fn and fn[-1] in ("setattr", "delattr") and node.args:
                    hit = resolve(dotted_name(node.args[0]))
                    if hit:
                        attr = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                            else "?"
                        found.add(f"{hit}.{attr}")
                if fn and fn[-1] in ("patch", "object", "setattr") and node.args \
                        and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                        and node.args[0].value.split(".")[0] in WATCHED_ROOTS:
                    found.add(node.args[0].value)
                if fn and fn[-1] == "object" and len(fn) >= 2 and fn[-2] == "patch" and node.args:
                    hit = resolve(dotted_name(node.args[0]))
                    if hit:
                        found.add(hit)
    return sorted(found)


def signature(obj) -> list:
    code = getattr(obj, "__code__", None)
    return [type(obj).__name__, getattr(obj, "__module__", None), getattr(obj, "__qualname__", None),
            getattr(code, "co_filename", None), getattr(code, "co_firstlineno", None)]


def expected_signatures() -> dict:
    import importlib
    expected = {}
    for mod_name, attrs in PROTECTED.items():
        try:
            mod = importlib.import_module(mod_name)
        except Exception:  # a library the course does not use: nothing to protect
            continue
        for attr in attrs:
            obj = mod
            try:
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except AttributeError:
                continue
            expected[f"{mod_name}:{attr}"] = signature(obj)
    return expected


def expected_package_functions(release_nb) -> dict:
    """Signatures of the functions of the course's own modules a notebook imports (the tests' reference
    implementations, e.g. textimg_lessons.backprop.linear_backward, and the check helpers with their private
    parts), for the runtime probe."""
    import importlib
    import inspect
    aliases = import_aliases([t for t in (parse_cell(c.source) for c in release_nb.cells if c.cell_type == "code")
                        if t is not None])
    expected = {}
    targets = {t for t in aliases.values() if t.startswith("textimg_lessons")}
    targets |= {t.rpartition(".")[0] for t in targets}  # `from textimg_lessons.checks import check_close`
    for target in sorted(t for t in targets if t.startswith("textimg_lessons")):
        try:
            mod = importlib.import_module(target)
        except Exception:  # an imported function rather than a module, or a module that fails to import
            continue
        for name, obj in vars(mod).items():
            if inspect.isfunction(obj) and obj.__module__ == mod.__name__:
                expected[f"{mod.__name__}:{name}"] = signature(obj)
    return expected


def expected_names(release_nb, protected) -> dict:
    import importlib
    aliases = import_aliases([t for t in (parse_cell(c.source) for c in release_nb.cells if c.cell_type == "code")
                        if t is not None])
    names = {}
    for name in sorted(protected):
        target = aliases.get(name)
        if not target:
            continue
        try:
            names[name] = ["module", importlib.import_module(target).__name__]
            continue
        except Exception:
            pass
        mod, _, attr = target.rpartition(".")
        try:
            names[name] = signature(getattr(importlib.import_module(mod), attr))
        except Exception:
            continue
    return names

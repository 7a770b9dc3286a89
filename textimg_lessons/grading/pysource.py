"""Reading Python source of notebook cells as syntax trees (for the static scans)."""
from __future__ import annotations

import ast


def _clean_source(source: str) -> str:
    # IPython magics and shell escapes are not Python; blank them so the rest of the cell still parses.
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def dotted_name(node):
    """["np", "testing", "assert_allclose"] for `np.testing.assert_allclose` (also through vars()/getattr())."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return list(reversed(parts))
    if isinstance(node, ast.Subscript):
        return dotted_name(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("vars", "getattr") \
            and node.args:
        inner = dotted_name(node.args[0])
        if inner and node.func.id == "getattr" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            return inner + [str(node.args[1].value)]
        return inner
    return None


def import_aliases(trees) -> dict:
    """Name bound by each import -> the dotted module or object it refers to."""
    aliases = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases[a.name.split(".")[0]] = a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def parse_cell(source: str):
    """The syntax tree of a cell (magics blanked), or None when it does not parse."""
    try:
        return ast.parse(_clean_source(source))
    except SyntaxError:
        return None

"""The two-way link between lessons and package code.

Each public definition of the teaching modules says in its docstring which notebook section derives or
first uses it: `Lesson: 04_vae.ipynb, "The reparameterisation trick".` (the quoted text begins a heading of
that notebook). These tests check that every such reference points to an existing heading, and that every
definition a notebook uses carries one.
"""
import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "textimg_lessons"
REF = re.compile(r'Lesson: (\d\d_[a-z_]+\.ipynb), "([^"]+)"\.')
TEACHING = ["backprop", "cnn", "judges", "metrics", "gan", "vae", "vae_experiments", "captions", "tokenisers", "attention", "text", "pretrained",
            "conditional", "encoders", "adherence",
            "captioner", "encoder_comparison", "vocabulary", "diffusion", "text_to_image", "generation_metrics", "faster", "reflow"]


def headings(notebook: str) -> list:
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    return [m.group(1) for c in nb["cells"] if c["cell_type"] == "markdown"
            for m in re.finditer(r"^#+\s+(.*\S)", "".join(c["source"]), re.M)]


def references():
    for path in sorted(PACKAGE.rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if "Lesson:" in line:
                yield f"{path.relative_to(ROOT)}:{i}", line


def public_definitions(module: str):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, ast.get_docstring(node) or ""


def notebook_code(notebook: str) -> str:
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_there_are_lesson_references():
    assert sum(1 for _ in references()) > 100


@pytest.mark.parametrize("where,line", list(references()))
def test_every_lesson_reference_points_to_an_existing_heading(where, line):
    m = REF.search(line)
    assert m, f'{where}: write a reference as Lesson: NN_name.ipynb, "start of a heading". (got {line.strip()!r})'
    notebook, heading = m.groups()
    assert (ROOT / "notebooks" / notebook).exists(), f"{where}: no notebook {notebook}"
    found = headings(notebook)
    assert any(h.startswith(heading) for h in found), f"{where}: {notebook} has no heading {heading!r}; it has {found}"


def test_every_definition_a_notebook_uses_names_its_lesson():
    code = {nb.name: notebook_code(nb.name) for nb in sorted((ROOT / "notebooks").glob("0[1-8]_*.ipynb"))}
    missing = []
    for module in TEACHING:
        for name, doc in public_definitions(module):
            used = any(re.search(rf"(?<![\w.]){module}\.{name}\b", src) for src in code.values())
            if used and not REF.search(doc):
                missing.append(f"{module}.{name}")
    assert not missing, f"used in a notebook but no 'Lesson:' line in the docstring: {missing}"


def test_a_wrong_reference_would_be_caught():
    assert not any(h.startswith("No such section") for h in headings("04_vae.ipynb"))
    assert not REF.search('Lesson: 04_vae, "The reparameterisation trick".')  # the .ipynb is required

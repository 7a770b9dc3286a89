"""The first two cells of every notebook: an "Open in Colab" badge and a setup cell.

The repository URL lives in one place (textimg_lessons.REPO_URL); `python -m textimg_lessons.colab
notebooks/*.ipynb` rewrites the two cells from it, and a test checks every notebook matches.
"""
from __future__ import annotations

import sys
from pathlib import Path

from . import REPO_URL

BADGE_ID = "colab-badge"
SETUP_ID = "colab-setup"


def _colab_base() -> str:
    return "https://colab.research.google.com/github/" + REPO_URL.split("github.com/", 1)[1]


def badge_source(notebook_path: str) -> str:
    name = Path(notebook_path).name
    folder = Path(notebook_path).parent.name or "notebooks"
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({_colab_base()}/blob/main/{folder}/{name})")


# What the setup cell installs; TEXTIMG_INSTALL overrides it (a local folder or wheel), which is how the
# Colab route is tested without a network.
INSTALL_ENV = "TEXTIMG_INSTALL"


def install_target() -> str:
    return f"git+{REPO_URL}"


def setup_source() -> str:
    # A plain `pip install` (no --upgrade, not editable) keeps what Colab already has (torch, torchvision,
    # numpy, matplotlib, transformers, ipywidgets 7) whenever it meets the course's lower bounds.
    return (
        "# Setup: on Colab, install the course (keeping what Colab has); elsewhere `make lab` already did, so nothing happens.\n"
        "import os, sys, subprocess\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    course = os.environ.get(\"{INSTALL_ENV}\", \"{install_target()}\")\n"
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", course], check=True)"
    )


def apply(path: str) -> bool:
    """Make cells 0-1 of the notebook at `path` the badge and setup cell; return True if it changed."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    badge = nbformat.v4.new_markdown_cell(badge_source(path), id=BADGE_ID)
    setup = nbformat.v4.new_code_cell(setup_source(), id=SETUP_ID)
    cells = [c for c in nb.cells if c.get("id") not in (BADGE_ID, SETUP_ID)]
    old = [(c.cell_type, c.source) for c in nb.cells[:2]]
    nb.cells = [badge, setup] + cells
    if old == [("markdown", badge.source), ("code", setup.source)]:
        return False
    nbformat.write(nb, path)
    return True


def check(path: str) -> list:
    """Problems with the notebook's first two cells (empty list when they match)."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    problems = []
    if len(nb.cells) < 2 or nb.cells[0].source != badge_source(path):
        problems.append(f"{path}: cell 0 is not the Colab badge; run python -m textimg_lessons.colab {path}")
    if len(nb.cells) < 2 or nb.cells[1].source != setup_source():
        problems.append(f"{path}: cell 1 is not the setup cell; run python -m textimg_lessons.colab {path}")
    return problems


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(("updated " if apply(p) else "unchanged ") + p)

"""Static checks of the committed notebooks: Colab cells, nbgrader metadata, stored outputs, no local paths."""
import json
import re
from pathlib import Path

import pytest

from textimg_lessons import colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_course_has_its_first_chapters():
    names = {p.stem for p in NOTEBOOKS}
    assert {"00_start_here", "01_backprop"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_colab_badge_and_setup_cell(path):
    assert colab.check(str(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_nbgrader_metadata_is_valid(path):
    cells = _cells(path)
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.get("metadata", {})]
    assert len(ids) == len(set(ids)), f"duplicate grade_id in {path.name}"
    graded = 0
    for c in cells:
        nb = c.get("metadata", {}).get("nbgrader")
        if not nb:
            assert c["cell_type"] != "code" or "### BEGIN SOLUTION" not in _src(c), f"solution region without nbgrader metadata in {path.name}"
            continue
        assert nb.get("schema_version") == 3
        src = _src(c)
        if nb.get("solution"):
            assert "### BEGIN SOLUTION" in src and "### END SOLUTION" in src, nb["grade_id"]
        if nb.get("grade"):
            assert nb.get("locked") and nb.get("points", 0) > 0, nb["grade_id"]
            graded += 1
            if c["cell_type"] == "code":
                assert "### BEGIN HIDDEN TESTS" in src and "### END HIDDEN TESTS" in src, nb["grade_id"]
    if not path.name.startswith("00_"):
        assert graded >= 3, f"{path.name} has {graded} graded exercises; the course asks for at least 3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_committed_and_clean(path):
    cells = _cells(path)
    code = [c for c in cells if c["cell_type"] == "code"]
    with_output = [c for c in code if c.get("outputs")]
    assert len(with_output) >= len(code) // 2, f"{path.name}: commit it with outputs from a full run"
    text = path.read_text()
    assert "fast mode subset" not in text, f"{path.name}: stored outputs come from a fast-mode run"
    assert not re.search(r"/(work|root|home|tmp)/[A-Za-z]", text), f"{path.name} leaks a local path"
    for c in code:
        assert not any(o.get("output_type") == "error" for o in c.get("outputs", [])), path.name


def _chapter_times(markdown: str) -> dict:
    """{"03_gan": "11 min", ...} from a chapter table whose last column is the whole notebook's full-mode time."""
    times = {}
    for line in markdown.splitlines():
        m = re.match(r"\| \d \| `(\d\d_[a-z_]+)` \|.*\| ([^|]+) \|$", line.strip())
        if m:
            times[m.group(1)] = m.group(2).strip()
    return times


def test_chapter_0_and_the_readme_give_every_chapter_the_same_full_run_time():
    readme = _chapter_times((ROOT / "README.md").read_text())
    start = _chapter_times("\n".join(_src(c) for c in _cells(ROOT / "notebooks" / "00_start_here.ipynb")
                                     if c["cell_type"] == "markdown"))
    assert set(readme) == {p.stem for p in NOTEBOOKS}, "the README's chapter table must list every notebook"
    assert start == readme, "chapter 0's table and the README's give different times; the README's are measured"


def test_the_time_tables_are_read_as_they_are_written():
    table = "| 3 | `03_gan` | GANs | DCGAN 97.6 | 11 min |\n| 4 | `04_vae` | VAEs | < 1 min |"
    assert _chapter_times(table) == {"03_gan": "11 min", "04_vae": "< 1 min"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_stored_figure_has_alt_text(path):
    figures = 0
    for i, cell in enumerate(_cells(path)):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:  # renderers show the text/html version (with alt text) when there is one
                assert "<img" in "".join(data.get("text/html", "")), \
                    f"{path.name} cell {i}: a figure stored as a bare PNG, without alt text"
            for img in re.findall(r"<img\b[^>]*>", "".join(data.get("text/html", ""))):
                figures += 1
                alt = re.search(r'\balt="([^"]*)"', img)
                assert alt and len(alt.group(1).strip()) >= 5, f"{path.name} cell {i}: an image without alt text"
    assert figures > 0, f"{path.name} stores no figures; run it in full mode"

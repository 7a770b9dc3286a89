"""The course's nbgrader preprocessors (named in nbgrader_config.py, run inside `nbgrader autograde`).

This module imports nbgrader at import time: only nbgrader's own pipeline and the grading commands load it.
"""
from __future__ import annotations

from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer

from .notebook import HIDDEN_BEGIN, indent_of, nbgrader_meta

TRUNCATION_NOTE = "... output truncated by the grader ..."
# Printed by the grader where the hidden tests start, so feedback can tell visible from hidden failures.
HIDDEN_MARK = "<<textimg-grader: hidden tests start here>>"


class CappedExecute(Execute):
    """nbgrader's Execute that stops keeping a cell's output once it passes a size cap (memory stays bounded
    however much a submission prints; the cell still runs to completion or to its timeout)."""

    max_stream_chars = Integer(100_000, help="characters of stdout/stderr kept per cell").tag(config=True)
    max_data_chars = Integer(2_000_000, help="characters of rich output (images, HTML) kept per cell"
                             ).tag(config=True)

    def __init__(self, *args, **kwargs):
        import os
        from . import sandbox
        if os.name == "posix":  # Unix sockets, and the submission's sandbox when autograde set one up
            kwargs["kernel_manager_class"] = sandbox.kernel_manager_class()
        super().__init__(*args, **kwargs)

    def output(self, outs, msg, display_id, cell_index):
        used = getattr(self, "_textimg_used", None)
        if used is None or used[0] != cell_index:
            used = self._textimg_used = [cell_index, 0, 0, False]
        msg_type = msg["msg_type"]
        content = msg.get("content", {})
        if msg_type == "stream":
            size, slot, cap = len(content.get("text", "")), 1, self.max_stream_chars
        elif msg_type in ("display_data", "execute_result", "update_display_data"):
            size, slot, cap = sum(len(str(v)) for v in content.get("data", {}).values()), 2, self.max_data_chars
        else:  # errors and everything else are always kept
            return super().output(outs, msg, display_id, cell_index)
        if used[slot] + size > cap:
            if not used[3]:
                used[3] = True
                from nbformat.v4 import new_output
                outs.append(new_output("stream", name="stdout", text="\n" + TRUNCATION_NOTE + "\n"))
            return None
        used[slot] += size
        return super().output(outs, msg, display_id, cell_index)


class WarningsAreNotErrors(NbGraderPreprocessor):
    """Relabel stderr output as stdout so that a warning does not zero a correct answer (nbgrader gives 0 to
    a test cell with any stderr). Failing tests raise, and errors still score 0."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    out["name"] = "stdout"
        return cell, resources


class ResultsAreNotScores(NbGraderPreprocessor):
    """Show a test cell's last value as display output instead of an execute_result. nbgrader reads a number
    there as partial credit, and a test ending in `check_close(...)` (which returns the max difference, 0.0
    for a perfect answer) would score 0. The course gives all-or-nothing per test cell."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and nbgrader_meta(cell).get("grade"):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "execute_result":
                    out["output_type"] = "display_data"
                    out.pop("execution_count", None)
        return cell, resources


def _mark_hidden(source: str) -> str:
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if HIDDEN_BEGIN in line:
            indent = indent_of(line)
            lines[i] = f"{indent}print({HIDDEN_MARK!r}, flush=True)  ### {HIDDEN_BEGIN}"
    return "\n".join(lines)


class MarkHiddenTests(NbGraderPreprocessor):
    """After nbgrader has restored the hidden tests, make them print a marker when they start, so feedback
    knows whether a failure came from a visible or a hidden test (without parsing tracebacks)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and nbgrader_meta(cell).get("grade") and HIDDEN_BEGIN in cell.source:
            cell.source = _mark_hidden(cell.source)
        return cell, resources



class InstrumentTests(NbGraderPreprocessor):
    """Add the grader's probe, recorder, visible-part and proof cells around every test cell (instrument.py),
    after nbgrader has put the original tests back. Does nothing outside `textimg-lessons autograde`."""

    def preprocess(self, nb, resources):
        from . import instrument
        setup = instrument.current()
        if setup is not None:
            nb = instrument.instrument(nb, setup)
        return nb, resources

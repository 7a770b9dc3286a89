"""Check the notebook you have open, from inside it, in one line (chapter 0, "Before you hand in"):

    from textimg_lessons.selfcheck import check_this_notebook; check_this_notebook()

It runs `textimg-lessons check` on this notebook in a separate process, with a fresh kernel as the grader
does, and shows its report as it comes. It finds the notebook itself:
- in Jupyter or JupyterLab from JPY_SESSION_NAME, which the server gives every notebook's kernel,
  (it checks the last *saved* version: save first);
- in VS Code from the notebook's path that VS Code puts in the kernel;
- in Colab by asking Colab for the notebook as it is now, saved to a temporary file;
- anywhere else from a path you pass: check_this_notebook("01_backprop.ipynb").
No terminal is needed. When the checker itself runs the notebook, the line does nothing, so it can stay.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# Set for the checker's process (and so inherited by the kernel it starts): the line then skips itself
# instead of checking the notebook again from inside the check.
RUNNING_MARK = "TEXTIMG_SELFCHECK"


def _from_jupyter() -> Path | None:
    """The notebook of this kernel in Jupyter/JupyterLab: JPY_SESSION_NAME, absolute in recent servers,
    relative to the server's root in older ones (the kernel then runs in the notebook's folder)."""
    name = os.environ.get("JPY_SESSION_NAME", "").strip()
    if not name.endswith(".ipynb"):
        return None
    for candidate in (Path(name), Path.cwd() / name, Path.cwd() / Path(name).name):
        if candidate.is_file():
            return candidate
    return None


def _from_vscode() -> Path | None:
    try:
        shell = get_ipython()  # noqa: F821  (defined inside IPython only)
    except NameError:
        return None
    name = shell.user_ns.get("__vsc_ipynb_file__")
    return Path(name) if name and Path(name).is_file() else None


def _from_colab() -> Path | None:
    """Colab keeps the notebook in the browser; its frontend hands it over on request."""
    if "google.colab" not in sys.modules:
        return None
    from google.colab import _message  # noqa: PLC0415 (exists only on Colab)
    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=120)
    notebook = reply.get("ipynb") if isinstance(reply, dict) else None
    if not notebook:
        raise RuntimeError("Colab did not hand over this notebook; use File > Download > .ipynb and run "
                           "`textimg-lessons check` on the download, or try again.")
    path = Path(tempfile.mkdtemp(prefix="textimg-check-")) / "this_notebook.ipynb"
    path.write_text(json.dumps(notebook))
    return path


def find_notebook(path=None) -> Path | None:
    """The notebook to check: `path` when given, else the one this kernel belongs to (None when unknown)."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist. Pass the notebook's file name, e.g. "
                                    f"check_this_notebook(\"01_backprop.ipynb\"), relative to {Path.cwd().name}/.")
        return path
    return _from_colab() or _from_jupyter() or _from_vscode()


def check_command(path) -> list:
    """The command that checks a notebook: the course's `check`, run by this kernel's own Python."""
    return [sys.executable, "-m", "textimg_lessons.cli", "check", str(path)]


def check_this_notebook(path=None, timeout: float = 1800) -> int:
    """Run `textimg-lessons check` on this notebook (or `path`) and print its report; return its exit code
    (0: the notebook runs and every visible test passes)."""
    if os.environ.get(RUNNING_MARK):
        print("(the checker is running this notebook: the self-check line skips itself)")
        return 0
    notebook = find_notebook(path)
    if notebook is None:
        print("Cannot tell which notebook this is. Pass its file name, e.g. "
              "check_this_notebook(\"01_backprop.ipynb\"), or run `textimg-lessons check NOTEBOOK.ipynb` "
              "in a terminal.")
        return 2
    state = "as it is now" if "google.colab" in sys.modules else "as last saved (save it first)"
    print(f"Checking {notebook.name} {state} in a fresh kernel; this takes a while...", flush=True)
    env = {**os.environ, RUNNING_MARK: "1"}
    proc = subprocess.Popen(check_command(notebook), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    timer = threading.Timer(timeout, proc.kill)  # a hung check must not hang the notebook
    timer.start()
    try:
        report = []
        for line in proc.stdout:  # show the report as it comes
            print(line, end="", flush=True)
            report.append(line)
        code = proc.wait()
    except KeyboardInterrupt:
        proc.kill()
        print("Check interrupted.")
        return 130
    finally:
        timer.cancel()
    if code < 0:
        print(f"The check was stopped after {timeout:.0f} s.")
        return 1
    if code and _needs_nbgrader("".join(report)):
        print("The check runs your notebook with nbgrader, which this environment lacks. Install it in a cell "
              "with `%pip install -q nbgrader` (or `make instructor` in the course folder), then check again.")
    return code


def _needs_nbgrader(report: str) -> bool:
    return "nbgrader" in report and importlib.util.find_spec("nbgrader") is None

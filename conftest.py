"""Test settings for everything pytest collects, unit tests and notebooks alike. It sits at the repository
root so that `pytest notebooks/06_text_to_image.ipynb --nbval-lax` alone also runs in fast, offline mode.
Environment variables are set at import time so that nbval's kernels inherit them (fixtures do not reach a
notebook kernel)."""
import os
from pathlib import Path

os.environ["TEXTIMG_FAST"] = "1"
os.environ["TEXTIMG_OFFLINE"] = "1"
os.environ.setdefault("TEXTIMG_DEVICE", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `make test` runs two workers on two cores; one math thread per worker/kernel avoids oversubscription,
# which slowed small-matrix steps by an order of magnitude when measured.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def pytest_collection_finish(session):
    """Fail the run when notebooks were asked for but none (or not all) were collected."""
    if not session.config.getoption("--nbval-lax", default=False) and not session.config.getoption("--nbval", default=False):
        return
    collected = {Path(str(item.fspath)).resolve() for item in session.items if str(item.fspath).endswith(".ipynb")}
    # Enforced when the notebooks folder itself is collected (as `make test` does), not for a single notebook.
    folder = (ROOT / "notebooks").resolve()
    asked_folder = any(Path(a.split("::")[0]).resolve() == folder for a in session.config.args)
    if asked_folder or not session.config.args:
        missing = [p.name for p in NOTEBOOKS if p.resolve() not in collected]
        if not collected or missing:
            raise RuntimeError(f"notebook tests collected {len(collected)} notebooks; missing: {missing or 'all'}")

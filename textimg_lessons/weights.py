"""Weight files: a state_dict and its metadata in one safetensors file, written safely and read with clear errors.

The judges (chapter 2), chapter 6's generators and chapter 7's diffusion models all store their weights this
way; each module checks the metadata it needs on top (format, dataset, digests).
"""
from __future__ import annotations

from pathlib import Path


class WeightsFileError(ValueError):
    """A weight file cannot be read; the message names the file and what went wrong."""


def require_weights_file(path, what: str, command: str) -> Path:
    """`path` if it exists, else a FileNotFoundError that says how to restore the shipped file (git) or rebuild
    it (`command`, a `textimg-lessons train ...` line)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path.name}; restore the shipped file with `git checkout -- "
                                f"textimg_lessons/shipped/{path.name}` or rebuild it with `{command}`.")
    return path


def write_weights(path, state: dict, metadata: dict) -> Path:
    """Save tensors with string metadata: write a temporary file, then rename it over `path`, so an
    interrupted save never leaves half a file behind. Returns the path."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={k: str(v) for k, v in metadata.items()})
    tmp.replace(path)
    return path


def read_weights(path) -> tuple:
    """(state_dict, metadata) from a file written by write_weights; WeightsFileError if it is unreadable."""
    from safetensors import safe_open
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # truncated or garbled files raise various errors inside safetensors
        raise WeightsFileError(f"{path.name} is not a readable safetensors file ({type(e).__name__}: {e})") from None
    return state, meta

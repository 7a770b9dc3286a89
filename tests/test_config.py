import random

import numpy as np
import pytest
import torch

from textimg_lessons import config


def test_fast_mode_reads_env(monkeypatch):
    monkeypatch.setenv("TEXTIMG_FAST", "1")
    assert config.fast_mode() and config.pick("full", "fast") == "fast"
    monkeypatch.setenv("TEXTIMG_FAST", "0")
    assert not config.fast_mode() and config.pick("full", "fast") == "full"
    monkeypatch.delenv("TEXTIMG_FAST")
    assert not config.fast_mode()


def test_bad_flag_value_says_what_to_do(monkeypatch):
    monkeypatch.setenv("TEXTIMG_OFFLINE", "maybe")
    with pytest.raises(ValueError, match="set it to 1 or 0"):
        config.offline()


def test_device_override_and_errors(monkeypatch):
    monkeypatch.setenv("TEXTIMG_DEVICE", "cpu")
    assert config.get_device() == torch.device("cpu")
    monkeypatch.setenv("TEXTIMG_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="not a device name"):
        config.get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("TEXTIMG_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            config.get_device()


def test_default_device_is_a_real_device(monkeypatch):
    monkeypatch.delenv("TEXTIMG_DEVICE", raising=False)
    d = config.get_device()
    assert d.type in {"cpu", "cuda", "mps"}
    torch.zeros(1, device=d)  # usable


def test_seed_everything_reproduces_all_generators():
    g = config.seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item())
    g = config.seed_everything(7)
    b = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item())
    assert a == b
    with pytest.raises(ValueError):
        config.seed_everything(-1)
    with pytest.raises(ValueError):
        config.seed_everything("3")


def test_data_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path / "cache"))
    assert config.data_dir() == tmp_path / "cache" and (tmp_path / "cache").is_dir()


def test_recipe_gives_each_mode_its_value_and_is_read_only(monkeypatch):
    r = config.Recipe(lr=1e-3, num_epochs=config.FullFast(20, 4))
    monkeypatch.setenv("TEXTIMG_FAST", "0")
    assert r["num_epochs"] == 20 and r["lr"] == 1e-3 and dict(r) == {"lr": 1e-3, "num_epochs": 20}
    monkeypatch.setenv("TEXTIMG_FAST", "1")
    assert r["num_epochs"] == 4 and r.full("num_epochs") == 20 and r.fast("lr") == 1e-3
    assert "num_epochs 20 (fast mode: 4)" in str(r)
    with pytest.raises(TypeError):
        r["lr"] = 1.0
    with pytest.raises(KeyError):
        r["momentum"]


def test_every_chapter_recipe_is_a_recipe():
    from textimg_lessons import cnn, conditional, diffusion, gan, vae
    for module in (cnn, gan, vae, conditional, diffusion):
        assert isinstance(module.RECIPE, config.Recipe), module.__name__
    assert gan.recipe("wgan-gp")["lr"] == gan.RECIPE["wgan_lr"]


# --- a mis-set or read-only data cache fails early with the fix, not with a raw OSError ------------------
def test_data_dir_pointing_at_a_file_says_what_to_do(monkeypatch, tmp_path):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path / "cache"))
    with pytest.raises(config.DataDirError, match="is a file, not a folder.*Set TEXTIMG_DATA") as e:
        config.data_dir()
    assert "TEXTIMG_DATA" in e.value.problem and e.value.fix.startswith("Set TEXTIMG_DATA")
    assert (tmp_path / "cache").read_text() == "not a folder"  # nothing of the user's is touched


def test_data_dir_under_a_file_cannot_be_created(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path / "file" / "cache"))
    with pytest.raises(config.DataDirError, match="cannot be created"):
        config.data_dir()


def test_data_dir_that_cannot_be_created_for_lack_of_permission(monkeypatch, tmp_path):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path / "new"))
    monkeypatch.setattr(config.Path, "mkdir", refuse)
    with pytest.raises(config.DataDirError, match=r"cannot be created \(Permission denied\)"):
        config.data_dir()


def test_read_only_data_dir_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path))
    real_access = config.os.access
    monkeypatch.setattr(config.os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(config.DataDirError, match="is not writable"):
        config.data_dir()


@pytest.mark.skipif(not hasattr(config.os, "geteuid") or config.os.geteuid() == 0,
                    reason="root can write into a read-only folder")
def test_really_read_only_data_dir_is_refused(monkeypatch, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    monkeypatch.setenv("TEXTIMG_DATA", str(ro))
    try:
        with pytest.raises(config.DataDirError, match="not writable"):
            config.data_dir()
    finally:
        ro.chmod(0o755)

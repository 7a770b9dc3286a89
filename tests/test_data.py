import gzip
import shutil

import pytest
import torch

from textimg_lessons import config, data

HAVE_DEBIAN_FASHION = all((data.FASHION_DEBIAN_DIR / f"{n}.gz").exists() for n in data.FASHION_RAW_SHA256)


def test_mnist_offline_subset_split_is_fixed_and_stratified():
    d = data.load_mnist(offline=True, fast=False, verbose=False)
    assert d.X_train.shape == (4000, 1, 28, 28) and d.X_test.shape == (1000, 1, 28, 28)
    assert d.X_train.dtype == torch.float32 and 0 <= d.X_train.min() and d.X_train.max() <= 1
    assert torch.equal(torch.bincount(d.y_train), torch.full((10,), 400))
    assert torch.equal(torch.bincount(d.y_test), torch.full((10,), 100))
    again = data.load_mnist(offline=True, fast=False, verbose=False)
    assert torch.equal(d.X_test, again.X_test)
    # no test image is also a training image
    train_rows = {tuple(r.tolist()) for r in (d.X_train.flatten(1) * 255).round().to(torch.uint8)}
    assert not any(tuple(r.tolist()) in train_rows for r in (d.X_test.flatten(1) * 255).round().to(torch.uint8))
    assert "offline" in d.source


def test_mnist_pixels_look_like_digits():
    d = data.load_mnist(offline=True, fast=False, verbose=False)
    # MNIST's mean pixel is about 0.13; a label column mixed into the pixels or a transposed image would change it
    assert 0.12 < float(d.X_train.mean()) < 0.14
    centre = d.X_train[:, 0, 10:18, 10:18].mean()
    border = d.X_train[:, 0, :3, :].mean()
    assert centre > 10 * border


def test_fast_mode_shrinks_per_class(monkeypatch):
    monkeypatch.setenv("TEXTIMG_FAST", "1")
    d = data.load_mnist(offline=True, verbose=False)
    assert torch.equal(torch.bincount(d.y_train), torch.full((10,), data.FAST_TRAIN_PER_CLASS))
    assert torch.equal(torch.bincount(d.y_test), torch.full((10,), data.FAST_TEST_PER_CLASS))
    assert "fast mode" in d.source


def test_corrupted_mnist_subset_is_refused(tmp_path):
    bad = tmp_path / data.MNIST_5K_FILE
    shutil.copy(data.mnist_5k_path(), bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(data.DataError, match="corrupted"):
        data._load_mnist_5k(bad)
    with pytest.raises(data.DataError, match="missing"):
        data._load_mnist_5k(tmp_path / "nope.csv.gz")


def test_loaders_and_repr():
    d = data.load_mnist(offline=True, fast=True, verbose=False)
    train, test = d.loaders(batch_size=64, seed=1)
    X, y = next(iter(train))
    assert X.shape == (64, 1, 28, 28) and y.shape == (64,)
    assert "mnist" in repr(d) and "1000 train" in repr(d)
    X2, _ = next(iter(d.loaders(batch_size=64, seed=1)[0]))
    assert torch.equal(X, X2)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; choose one of: fashion_mnist, mnist"):
        data.load_dataset("cifar10")


def test_one_registry_normalises_every_spelling():
    from textimg_lessons import datasets
    for spelling in ("Fashion-MNIST", "fashion_mnist", " fashion ", "FashionMNIST"):
        assert datasets.require_dataset(spelling) == "fashion_mnist"
    assert datasets.require_dataset("MNIST") == "mnist"
    assert datasets.dataset_key("cifar10") is None
    with pytest.raises(datasets.DatasetError, match="choose one of"):
        datasets.require_dataset("")
    assert datasets.class_names("fashion")[9] == "Ankle boot"
    assert data.FASHION_CLASSES is datasets.FASHION_CLASSES  # re-exported, not copied


@pytest.mark.skipif(not HAVE_DEBIAN_FASHION, reason="needs the Debian package dataset-fashion-mnist")
def test_fashion_offline_full_and_verified(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path))
    d = data.load_fashion_mnist(offline=True, fast=False, verbose=False)
    assert d.X_train.shape == (60000, 1, 28, 28) and d.X_test.shape == (10000, 1, 28, 28)
    assert abs(float(d.X_train.mean()) * 255 - 72.94) < 0.01  # the published mean pixel
    assert "Debian" in d.source and d.classes[9] == "Ankle boot"
    # a corrupted cache file is detected by checksum, moved aside and rebuilt
    raw = tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw.write_bytes(b"garbage")
    d2 = data.load_fashion_mnist(offline=True, fast=True, verbose=False)
    assert (raw.parent / "t10k-labels-idx1-ubyte.corrupt").exists()
    assert data.sha256_of(raw) == data.FASHION_RAW_SHA256["t10k-labels-idx1-ubyte"]
    assert len(d2.X_test) == 500


def test_fashion_missing_offline_files_explain_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path))
    with pytest.raises(data.DataError, match="apt-get install dataset-fashion-mnist"):
        data._extract_debian_fashion(tmp_path / "raw", source_dir=tmp_path / "empty")


def test_fashion_bad_debian_file_is_rejected(tmp_path):
    src = tmp_path / "deb"
    src.mkdir()
    for name in data.FASHION_RAW_SHA256:
        with gzip.open(src / f"{name}.gz", "wb") as f:
            f.write(b"not the original file")
    with pytest.raises(data.DataError, match="does not decompress to the original"):
        data._extract_debian_fashion(tmp_path / "raw", source_dir=src)
    assert not list((tmp_path / "raw").glob("*-ubyte"))  # nothing half-written is left to be trusted


def test_first_per_class():
    y = torch.tensor([0, 1, 0, 1, 0, 2])
    assert data.first_per_class(y, 2).tolist() == [0, 1, 2, 3, 5]


def test_online_failure_falls_back(monkeypatch, capsys):
    class Boom:
        def __init__(self, *a, **k):
            raise OSError("no network")
    assert data._try_torchvision(Boom, config.data_dir()) is None
    assert "using the offline copy" in capsys.readouterr().out

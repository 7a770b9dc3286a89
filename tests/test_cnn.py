"""Tests of chapter 2's package code: hand-written convolution and pooling, models, judges."""
import shutil

import pytest
import torch
from torch import nn

from textimg_lessons import cnn, judges
from textimg_lessons.cnn import (LeNet5, ModernLeNet, conv2d_loops, conv2d_unfold, conv_output_size, count_parameters,
                                 maxpool2d_loops, maxpool2d_unfold, random_affine)
from textimg_lessons.judges import Judge, JudgeFileError, judge_features, judge_predict, load_judge, save_judge

CONV_CONFIGS = [  # (N, C_in, H, W, C_out, K, stride, padding, bias)
    (2, 1, 7, 7, 1, 3, 1, 0, False),
    (2, 3, 8, 6, 4, 3, 1, 1, True),
    (1, 2, 9, 9, 5, 5, 2, 2, True),
    (3, 4, 6, 7, 2, (2, 3), (2, 1), (1, 0), True),
    (1, 1, 5, 5, 2, 5, 1, 0, True),
]


def _torch_conv(C_in, C_out, K, stride, padding, bias):
    torch.manual_seed(0)
    return nn.Conv2d(C_in, C_out, K, stride=stride, padding=padding, bias=bias).double()


@pytest.mark.parametrize("N,C_in,H,W,C_out,K,stride,padding,bias", CONV_CONFIGS)
@pytest.mark.parametrize("impl", [conv2d_loops, conv2d_unfold])
def test_conv_equals_torch(impl, N, C_in, H, W, C_out, K, stride, padding, bias):
    conv = _torch_conv(C_in, C_out, K, stride, padding, bias)
    X = torch.randn(N, C_in, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = impl(X, conv.weight.detach(), conv.bias.detach() if bias else None, stride=stride, padding=padding)
    torch.testing.assert_close(out, conv(X).detach())


def test_conv_unfold_has_gradients_like_torch():
    conv = _torch_conv(2, 3, 3, 1, 1, True)
    X = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    conv2d_unfold(X, conv.weight, conv.bias, padding=1).square().sum().backward()
    mine = X.grad.clone()
    X.grad = None
    conv(X).square().sum().backward()
    torch.testing.assert_close(mine, X.grad)


@pytest.mark.parametrize("K,stride,padding", [(2, None, 0), (3, 2, 1), (3, 1, 0), ((2, 3), (1, 2), (1, 1))])
@pytest.mark.parametrize("impl", [maxpool2d_loops, maxpool2d_unfold])
def test_maxpool_equals_torch(impl, K, stride, padding):
    X = torch.randn(2, 3, 7, 8, generator=torch.Generator().manual_seed(2))
    expected = nn.MaxPool2d(K, stride=stride, padding=padding)(X)
    torch.testing.assert_close(impl(X, K, stride=stride, padding=padding), expected)


def test_maxpool_on_negative_inputs_ignores_padding():
    X = -torch.rand(1, 1, 4, 4) - 1  # all values < -1: zero padding would win; -inf padding must not
    torch.testing.assert_close(maxpool2d_unfold(X, 3, 2, 1), nn.MaxPool2d(3, 2, 1)(X))


@pytest.mark.parametrize("H,K,P,S,expected", [(28, 5, 0, 1, 24), (28, 5, 2, 1, 28), (28, 2, 0, 2, 14),
                                              (7, 3, 1, 2, 4), (10, 3, 0, 3, 3), (5, 5, 0, 1, 1)])
def test_conv_output_size(H, K, P, S, expected):
    assert conv_output_size(H, K, P, S) == expected
    assert nn.Conv2d(1, 1, K, S, P)(torch.zeros(1, 1, H, H)).shape[-1] == expected


def test_bad_inputs_give_clear_errors():
    W = torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match="4 dimensions"):
        conv2d_unfold(torch.randn(3, 8, 8), W)
    with pytest.raises(ValueError, match="channel mismatch"):
        conv2d_loops(torch.randn(1, 2, 8, 8), W)
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d_unfold(torch.randn(1, 3, 2, 2), W)
    with pytest.raises(ValueError, match="one bias per output channel"):
        conv2d_unfold(torch.randn(1, 3, 8, 8), W, torch.zeros(3))
    with pytest.raises(TypeError, match="float"):
        conv2d_unfold(torch.ones(1, 3, 8, 8, dtype=torch.long), W)
    with pytest.raises(ValueError, match="larger than the padded input"):
        maxpool2d_unfold(torch.randn(1, 1, 2, 2), 3)
    with pytest.raises(ValueError):
        conv_output_size(28, 5, stride=0)
    with pytest.raises(TypeError):
        conv_output_size(28.0, 5)


def test_parameter_counts():
    assert count_parameters(LeNet5()) == 61_706  # 156 + 2,416 + 48,120 + 10,164 + 850
    assert count_parameters(ModernLeNet()) == 16 * 25 + 32 + 16 * 32 * 25 + 64 + 800 * 128 + 128 + 1290
    assert count_parameters(Judge()) == sum(p.numel() for p in Judge().parameters())
    assert count_parameters(Judge()) < 2 * 1024 * 1024 / 4  # fits the 2 MB weight-file budget


def test_model_shapes():
    X = torch.rand(3, 1, 28, 28)
    assert LeNet5()(X).shape == (3, 10)
    net = ModernLeNet().eval()
    assert net(X).shape == (3, 10)
    assert [tuple(a.shape) for a in net.feature_maps(X)] == [(3, 16, 28, 28), (3, 32, 10, 10)]
    judge = Judge().eval()
    assert judge(X).shape == (3, 10) and judge.features(X).shape == (3, Judge.feature_dim)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        judge(torch.rand(3, 28, 28))


def test_random_affine_keeps_shape_range_and_is_seeded():
    X = torch.rand(4, 1, 28, 28)
    a = random_affine(X, generator=torch.Generator().manual_seed(0))
    b = random_affine(X, generator=torch.Generator().manual_seed(0))
    assert a.shape == X.shape and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, X)
    same = random_affine(X, max_shift=0, max_degrees=0, scale=(1, 1))
    torch.testing.assert_close(same, X, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def mnist_data():
    from textimg_lessons.data import load_mnist
    return load_mnist(verbose=False)


@pytest.fixture(scope="module")
def fashion_data():
    from textimg_lessons.data import load_fashion_mnist
    return load_fashion_mnist(verbose=False)


def test_shipped_mnist_judge_is_accurate(mnist_data, capsys):
    judge = load_judge("mnist", device="cpu", train_if_missing=False)
    assert "shipped" in capsys.readouterr().out
    assert not judge.training
    acc = (judge_predict(judge, mnist_data.X_test) == mnist_data.y_test).float().mean().item()
    assert acc > 0.95, acc
    feats = judge_features(judge, mnist_data.X_test[:7], batch_size=3)
    assert feats.shape == (7, Judge.feature_dim) and torch.isfinite(feats).all()
    torch.testing.assert_close(feats, judge.features(mnist_data.X_test[:7]).detach())


def test_shipped_fashion_judge_is_accurate(fashion_data):
    judge = load_judge("fashion-mnist", device="cpu", train_if_missing=False)  # the dash spelling works too
    acc = (judge_predict(judge, fashion_data.X_test) == fashion_data.y_test).float().mean().item()
    assert acc > 0.85, acc


def test_judge_helpers_reject_bad_input():
    judge = Judge().eval()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        judge_predict(judge, torch.rand(2, 1, 28, 28) * 2 - 1)
    with pytest.raises(ValueError, match="empty"):
        judge_features(judge, torch.zeros(0, 1, 28, 28))
    with pytest.raises(ValueError, match="28, 28"):
        judge_features(judge, torch.rand(2, 1, 32, 32))
    with pytest.raises(TypeError, match="Judge"):
        judge_predict(nn.Linear(2, 2), torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="unknown dataset"):
        load_judge("cifar10")


@pytest.mark.parametrize("how", ["flip_tensor_byte", "truncate", "other_dataset"])
def test_corrupted_judge_file_is_not_trusted(tmp_path, how):
    src = judges.shipped_judge_path("mnist")
    path = tmp_path / "judge_mnist.safetensors"
    shutil.copy(src, path)
    judges.verify_judge_file(path, "mnist")  # the intact copy verifies
    data = bytearray(path.read_bytes())
    if how == "flip_tensor_byte":
        data[-100] ^= 0xFF  # inside the last tensor's bytes: the file still parses
        path.write_bytes(bytes(data))
        match = "corrupted"
    elif how == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
        match = "not a readable safetensors"
    else:
        save_judge(Judge(), path, "fashion_mnist")
        match = "not 'mnist'"
    with pytest.raises(JudgeFileError, match=match):
        judges.verify_judge_file(path, "mnist")


def test_load_judge_refuses_a_corrupted_shipped_file(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "judge_mnist.safetensors"
    data = bytearray(judges.shipped_judge_path("mnist").read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(judges, "shipped_judge_path", lambda dataset: bad)
    monkeypatch.setenv("TEXTIMG_DATA", str(tmp_path / "cache"))  # no locally trained judge to fall back on
    with pytest.raises(JudgeFileError, match="git checkout"):
        load_judge("mnist", train_if_missing=False)
    assert "not usable" in capsys.readouterr().out
    assert bad.read_bytes() == bytes(data)  # the bad file is reported, never silently overwritten


def test_shipped_files_match_recorded_checksums_and_size():
    for key in judges.JUDGE_DATASETS:
        path = judges.shipped_judge_path(key)
        assert path.stat().st_size < 2 * 1024 * 1024
        assert judges.SHIPPED_SHA256[key] is not None
        state, meta = judges.verify_judge_file(path, key, judges.SHIPPED_SHA256[key])
        assert float(meta["test_accuracy"]) >= {"mnist": 0.975, "fashion_mnist": 0.90}[key]


def test_saved_judge_round_trips(tmp_path):
    torch.manual_seed(0)
    judge = Judge().eval()
    path = save_judge(judge, tmp_path / "j.safetensors", "mnist", {"test_accuracy": 0.5})
    loaded = judges.load_judge_file(path, "mnist", device="cpu")
    X = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(loaded(X), judge(X))
    assert loaded.metadata["test_accuracy"] == "0.5"

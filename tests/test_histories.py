"""Named training histories: declared fields per trainer, and the dict-style view the notebooks read."""
import dataclasses
import math

import matplotlib
import pytest
import torch
from torch import nn

from textimg_lessons import histories as H

matplotlib.use("Agg")

# What each trainer's history has always held (the notebooks and the benchmarks read these keys).
FIELDS = {
    H.FitHistory: ["loss", "seconds", "cpu_seconds"],
    H.ClassifierHistory: ["loss", "seconds", "cpu_seconds", "test_acc_final"],
    H.JudgeHistory: ["loss", "seconds", "cpu_seconds", "test_acc_final", "test_acc", "dataset", "source",
                     "num_epochs"],
    H.ManualMLPHistory: ["loss", "train_acc", "test_acc", "seconds"],
    H.GANHistory: ["d_loss", "g_loss", "d_real", "d_fake", "d_loss_step", "g_loss_step", "grids", "kind", "seconds",
                   "trained_generator"],
    H.VAEHistory: ["train_nelbo", "test_nelbo", "seconds", "cpu_seconds"],
    H.TinyGPTHistory: ["step", "train_loss", "val_loss", "train_seconds", "val_perplexity"],
    H.ConditionalHistory: ["step", "adherence", "seconds", "loss", "steps_to_target", "seconds_to_target",
                           "encode_seconds", "train_seconds"],
    H.CaptionerHistory: ["loss", "train_seconds"],
    H.CodecHistory: ["loss", "seconds", "cpu_seconds"],
    H.DiffusionHistory: ["loss", "step", "seconds", "cpu_seconds"],
    H.TextToImageHistory: ["codec_seconds", "table_seconds", "loss", "step", "seconds", "cpu_seconds"],
    H.ReflowHistory: ["loss", "pairs_seconds", "pairs", "seconds", "cpu_seconds", "steps"],
}


@pytest.mark.parametrize("kind", list(FIELDS), ids=lambda k: k.__name__)
def test_each_history_type_declares_the_fields_its_trainer_always_returned(kind):
    declared = [f.name for f in dataclasses.fields(kind) if not f.metadata.get("hidden")]
    assert declared == FIELDS[kind]
    assert kind.__doc__, f"{kind.__name__} needs a docstring saying which trainer returns it"


def _vae_history():
    return H.VAEHistory(train_nelbo=[300.0, 250.0], test_nelbo=[260.0], seconds=2.0, cpu_seconds=1.5)


def test_a_history_reads_like_the_dict_it_replaced():
    h = _vae_history()
    assert h["train_nelbo"] == h.train_nelbo == [300.0, 250.0]
    assert list(h.keys()) == ["train_nelbo", "test_nelbo", "seconds", "cpu_seconds"]
    assert "test_nelbo" in h and "loss" not in h
    assert dict(h) == {"train_nelbo": [300.0, 250.0], "test_nelbo": [260.0], "seconds": 2.0, "cpu_seconds": 1.5}
    assert h.get("loss", "none") == "none" and len(h) == 4
    assert h == dict(h)


def test_fit_history_shows_eval_metrics_as_keys_in_the_old_order():
    h = H.FitHistory(loss=[1.0, 0.5], seconds=3.0, cpu_seconds=2.0, evals={"test_acc": [0.8, 0.9]})
    assert list(h) == ["loss", "test_acc", "seconds", "cpu_seconds"]
    assert h["test_acc"] == [0.8, 0.9] and "evals" not in h


def test_an_unknown_key_names_the_keys_there_are():
    with pytest.raises(KeyError, match="VAEHistory has no 'loss'; it has train_nelbo, test_nelbo"):
        _vae_history()["loss"]


def test_a_history_cannot_be_overwritten_by_item_assignment_and_says_how_to_copy_it():
    h = _vae_history()
    with pytest.raises(TypeError, match=r"cannot be changed; copy it first \(`d = dict\(history\)`\)"):
        h["train_nelbo"] = []
    assert h.train_nelbo == [300.0, 250.0]


def test_plot_history_accepts_a_named_history_and_still_refuses_garbage():
    from textimg_lessons.plots import plot_history
    fig = plot_history(_vae_history())
    assert [line.get_label() for line in fig.axes[0].lines] == ["train_nelbo", "test_nelbo"]
    with pytest.raises(ValueError, match="history"):
        plot_history([1, 2, 3])


# ---------------------------------------------------------------- the trainers return them

def test_fit_returns_a_fit_history():
    from textimg_lessons.train import accuracy, fit
    torch.manual_seed(0)
    X, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16)
    h = fit(nn.Linear(2, 2), loader, num_epochs=2, device="cpu", progress=False,
            eval_fn=lambda n: {"acc": accuracy(n, X, y)})
    assert isinstance(h, H.FitHistory) and len(h.loss) == 2 and len(h.evals["acc"]) == 2
    assert h["acc"] == h.evals["acc"]


def test_train_gan_returns_a_gan_history():
    from textimg_lessons import gan
    G, D, h = gan.train_gan(torch.rand(16, 1, 28, 28), kind="mlp", num_epochs=1, batch_size=8, width=0.02,
                            num_grid=2, device="cpu")
    assert isinstance(h, H.GANHistory) and h.kind == "mlp" and len(h.d_loss_step) == 2 and h.seconds > 0


def test_train_manual_mlp_returns_a_manual_mlp_history():
    from textimg_lessons import backprop
    from textimg_lessons.data import load_mnist
    _, h = backprop.train_manual_mlp(load_mnist(verbose=False), hidden=8, num_epochs=1, progress=False)
    assert isinstance(h, H.ManualMLPHistory) and len(h.test_acc) == 1 and math.isfinite(h.seconds)


def test_train_judge_returns_what_the_judge_file_records():
    from textimg_lessons import judges
    _, h = judges.train_judge("mnist", num_epochs=1)
    assert isinstance(h, H.JudgeHistory) and isinstance(h, H.ClassifierHistory)
    assert h["test_acc"] == h.test_acc_final and h.dataset == "mnist" and h.num_epochs == 1 and h.source


def test_a_shipped_file_report_is_one_json_line_with_what_training_measured():
    import json
    from textimg_lessons.histories import ShippedFile
    r = ShippedFile("mnist", "judge_mnist.safetensors", 12.3, {"test_accuracy": 0.984})
    assert json.loads(r.line()) == {"dataset": "mnist", "file": "judge_mnist.safetensors", "seconds": 12.3,
                                    "test_accuracy": 0.984}
    assert r["measured"]["test_accuracy"] == 0.984 and r.file == "judge_mnist.safetensors"


def test_the_vae_comparison_returns_a_named_run_per_model_readable_as_before():
    from textimg_lessons import vae_experiments
    from textimg_lessons.data import load_dataset
    from textimg_lessons.histories import VAERun
    res = vae_experiments.compare_conv_mlp(load_dataset("fashion_mnist", verbose=False), num_epochs=1)
    assert set(res) == {"conv", "mlp"}
    for run in res.values():
        assert isinstance(run, VAERun) and run["test_nelbo"] == run.history["test_nelbo"][-1] > 0
        assert 0 < run.ssim <= 1 and run.params > 0 and run["iwae_k"] >= 1

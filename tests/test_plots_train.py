import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")
from textimg_lessons.plots import plot_history, show_images  # noqa: E402
from textimg_lessons.train import accuracy, fit, predict  # noqa: E402


def test_show_images_grid_and_labels():
    fig = show_images(torch.rand(10, 1, 28, 28), labels=list(range(10)), nrow=5)
    axes = fig.axes
    assert len(axes) == 10 and axes[3].get_title() == "3"
    assert len(show_images(torch.rand(3, 28, 28)).axes) == 3


@pytest.mark.parametrize("images, fragment", [
    (torch.rand(0, 1, 28, 28), "empty batch"),
    (torch.rand(2, 5, 28, 28), "must be"),
    (torch.rand(28, 28), "must be"),
])
def test_show_images_bad_input(images, fragment):
    with pytest.raises(ValueError, match=fragment):
        show_images(images)


def test_show_images_label_count():
    with pytest.raises(ValueError, match="one label per image"):
        show_images(torch.rand(3, 1, 8, 8), labels=["a"])


def test_plot_history():
    fig = plot_history({"loss": [3, 2, 1], "acc": [0.1, 0.5, 0.9], "seconds": 1.0})
    assert [l.get_label() for l in fig.axes[0].get_lines()] == ["loss", "acc"]
    with pytest.raises(ValueError, match="has no"):
        plot_history({"loss": [1]}, keys=["acc"])
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_history({})


def test_fit_learns_a_separable_problem():
    torch.manual_seed(0)
    X = torch.randn(512, 2)
    y = (X[:, 0] + X[:, 1] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64, shuffle=True)
    net = nn.Linear(2, 2)
    hist = fit(net, loader, num_epochs=5, lr=0.05, device="cpu",
               eval_fn=lambda n: {"acc": accuracy(n, X, y)})
    assert hist["loss"][-1] < hist["loss"][0]
    assert hist["acc"][-1] > 0.95 and hist["seconds"] > 0
    assert predict(net, X).shape == (512,)
    with pytest.raises(ValueError, match="num_epochs"):
        fit(net, loader, num_epochs=0)


def test_accuracy_bad_input():
    net = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="must match"):
        accuracy(net, torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        accuracy(net, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))

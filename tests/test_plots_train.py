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


def test_run_loop_calls_its_hooks_and_steps_the_scheduler_as_asked():
    from textimg_lessons.train import run_loop, step_rounds
    assert step_rounds(7, 3) == [[1, 2, 3], [4, 5, 6], [7]]
    with pytest.raises(ValueError, match="at least 1"):
        step_rounds(0, 3)
    torch.manual_seed(0)
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    seen, evals = [], []

    def batch_loss(step):
        seen.append(step)
        x = torch.randn(4, 2)
        return ((net(x) - x.sum(1, keepdim=True)) ** 2).mean(), 4

    r = run_loop(net, opt, step_rounds(5, 2), batch_loss, scheduler=sched, scheduler_every="round",
                 evaluate=lambda m: evals.append(m.training) or {"w": float(m.weight.sum())}, progress=False)
    assert seen == [1, 2, 3, 4, 5] and r.steps == [2, 4, 5]
    assert len(r.losses) == 3 and len(r.evals["w"]) == 3 and r.seconds > 0 and r.elapsed[-1] == r.seconds
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)  # once per round
    assert evals == [True, True, True] and not net.training  # evaluated as trained; left in eval mode
    with pytest.raises(ValueError, match="scheduler_every"):
        run_loop(net, opt, [[1]], batch_loss, scheduler=sched, scheduler_every="epoch")


def test_run_loop_clips_gradients_when_asked():
    from textimg_lessons.train import run_loop
    net = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(net.weight)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    huge = lambda _: (((net(torch.ones(1, 1)) - 1000.0) ** 2).mean(), 1)  # gradient -2000
    run_loop(net, opt, [[1]], huge, clip_grad_norm=1.0, progress=False)
    assert float(net.weight) == pytest.approx(1.0)  # the step was clipped to norm 1


def test_figure_alt_text_from_titles_labels_legend_and_image_grids():
    import matplotlib.pyplot as plt
    from textimg_lessons.plots import describe, figure_alt_text
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0], label="train")
    ax.set(title="loss", xlabel="epoch", ylabel="nats")
    ax.legend()
    assert figure_alt_text(fig) == "plot 'loss' of nats against epoch; legend: train"
    grid = show_images(torch.rand(3, 1, 28, 28), labels=["a\nb", "c", "d"], title="samples")
    assert figure_alt_text(grid) == "samples. 3 images labelled a / b; c; d"
    assert len(figure_alt_text(show_images(torch.rand(30, 1, 28, 28), labels=[str(i) * 40 for i in range(30)]))) <= 600
    assert figure_alt_text(describe(fig, "  hand written  ")) == "hand written"
    with pytest.raises(ValueError, match="non-empty"):
        describe(fig, " ")
    plt.close("all")


def test_alt_text_of_bar_charts_names_the_bars_and_leaves_numeric_axes_alone():
    import matplotlib.pyplot as plt
    from textimg_lessons.plots import figure_alt_text
    fig, ax = plt.subplots()
    ax.barh(["cVAE", "diffusion"], [10.0, 140.0])  # categories on y, no y label
    ax.set_xlabel("ms per image")
    assert figure_alt_text(fig) == "bar chart of ms per image for cVAE, diffusion"
    fig, ax = plt.subplots()
    ax.bar([0, 1, 2], [3, 1, 2])
    ax.set_xticks([0, 1, 2], ["T-shirt", "trouser", "\u2212pullover"])
    ax.set_ylabel("share")
    assert figure_alt_text(fig) == "bar chart of share for T-shirt, trouser, \u2212pullover"
    fig, ax = plt.subplots()
    ax.bar([0, 1, 2], [3, 1, 2])  # numeric ticks (unicode minus included): not categories
    ax.set_xticks([-1, 0, 1])
    ax.set_ylabel("count")
    assert figure_alt_text(fig) == "bar chart of count against an index"
    fig, ax = plt.subplots()
    ax.bar([1, 10, 100], [3, 1, 2])
    ax.set_xscale("log")  # mathtext tick labels
    ax.set_ylabel("count")
    assert figure_alt_text(fig) == "bar chart of count against an index"
    plt.close("all")


def test_alt_text_html_escapes_and_replaces_the_png_representation():
    import matplotlib.pyplot as plt
    from IPython.core.formatters import DisplayFormatter
    from matplotlib.figure import Figure
    from textimg_lessons.plots import enable_figure_alt_text

    class Shell:
        display_formatter = DisplayFormatter()
    shell = Shell()
    shell.display_formatter.formatters["image/png"].for_type(Figure, lambda f: b"png")
    assert enable_figure_alt_text(shell) is True
    assert enable_figure_alt_text(object()) is False  # not IPython: nothing to do
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    ax.set_title('a "quoted" <title>')
    data, _ = shell.display_formatter.format(fig)
    assert "image/png" not in data  # one copy of the picture, inside the HTML
    html = data["text/html"]
    assert html.startswith('<img src="data:image/png;base64,') and "&quot;quoted&quot; &lt;title&gt;" in html
    assert '"quoted"' not in html  # the quote cannot end the alt attribute early
    plt.close("all")

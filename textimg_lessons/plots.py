"""Figures used across the course: image grids and training curves (first used in chapter 1)."""
from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import torch


def show_images(images, labels=None, nrow: int | None = None, title: str | None = None,
                cmap: str = "gray", size: float = 1.2):
    """Show (N, 1, H, W) or (N, H, W) images in [0, 1] as a grid; labels (strings or ints) go under each.

    Returns the matplotlib Figure.
    """
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(images)
    images = images.detach().cpu().float()
    if images.dim() == 4:
        if images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, 1, H, W), (N, 3, H, W) or (N, H, W); got {tuple(images.shape)}")
        images = images.permute(0, 2, 3, 1)  # (N, C, H, W) => (N, H, W, C) for imshow
        if images.shape[-1] == 1:
            images = images[..., 0]
    elif images.dim() != 3:
        raise ValueError(f"images must be (N, 1, H, W), (N, 3, H, W) or (N, H, W); got {tuple(images.shape)}")
    n = images.shape[0]
    if n == 0:
        raise ValueError("show_images got an empty batch (0 images); pass at least one image.")
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels; pass one label per image.")
    nrow = nrow or min(n, 8)
    ncol_rows = math.ceil(n / nrow)
    fig, axes = plt.subplots(ncol_rows, nrow, figsize=(size * nrow, size * ncol_rows * (1.25 if labels is not None else 1)),
                             squeeze=False)
    for i, a in enumerate(axes.flat):
        a.axis("off")
        if i < n:
            a.imshow(images[i].clamp(0, 1), cmap=cmap, vmin=0, vmax=1)
            if labels is not None:
                a.set_title(str(labels[i]), fontsize=8)
    fig.tight_layout()
    if title:
        # the suptitle gets a strip of its own, 0.4 inch added on top: tight_layout lets tall labels run into it
        height = fig.get_figheight()
        top = fig.subplotpars.top * height / (height + 0.4)
        fig.set_figheight(height + 0.4)
        fig.subplots_adjust(top=top, bottom=fig.subplotpars.bottom * height / (height + 0.4))
        fig.suptitle(title, y=1 - 0.12 / (height + 0.4), va="top")
    return fig


def plot_history(history: Mapping, keys=None, title: str | None = None, xlabel: str = "step", ax=None):
    """Plot training curves from a history: any trainer's named history (histories.py) or a dict of lists
    (e.g. {"loss": [...], "test_acc": [...]})."""
    if not isinstance(history, Mapping) or not history:
        raise ValueError("history must be a trainer's history or a non-empty dict of lists, like the one fit() "
                         "returns.")
    keys = list(keys) if keys is not None else [k for k, v in history.items() if isinstance(v, (list, tuple)) and v]
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"history has no {missing}; it has {sorted(history)}.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        ys = history[k]
        ax.plot(range(1, len(ys) + 1), ys, label=k, marker="o" if len(ys) < 30 else None)
    ax.set_xlabel(xlabel)
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


# ---------------------------------------------------------------- alt text for every figure in a notebook

ALT_ATTRIBUTE = "textimg_alt"  # describe(fig, text) stores a hand-written description here


def describe(fig, text: str):
    """Give `fig` a hand-written alt text (instead of the one figure_alt_text derives); returns fig."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("alt text must be a non-empty string that says what the figure shows.")
    setattr(fig, ALT_ATTRIBUTE, text.strip())
    return fig


def _is_number(label: str) -> bool:
    try:
        float(label.replace("\u2212", "-"))  # matplotlib writes negative ticks with a Unicode minus
        return True
    except ValueError:
        return label.startswith("$")  # mathtext ticks (log axes) are numbers too


def _category_names(axis) -> list:
    """The tick labels of an axis when they name categories (bar charts of named things), else []."""
    names = [t.get_text().strip() for t in axis.get_ticklabels()]
    names = [n for n in names if n]
    return [] if any(_is_number(n) for n in names) else names


def _panel_text(ax) -> str:
    title, xl, yl = ax.get_title().strip(), ax.get_xlabel().strip(), ax.get_ylabel().strip()
    what = ("heatmap" if ax.images else "bar chart" if ax.patches and not ax.lines
            else "plot" if ax.lines or ax.collections else "panel")
    text = f"{what} '{title}'" if title else what
    # bars of named things, one axis labelled: say what the bars measure and name them ("of seconds for A, B")
    names = _category_names(ax.yaxis if xl else ax.xaxis) if what == "bar chart" and bool(xl) != bool(yl) else []
    if names:
        text += f" of {xl or yl} for " + ", ".join(names)
    elif xl or yl:
        text += f" of {yl or 'a value'} against {xl or 'an index'}"
    legend = ax.get_legend()
    if legend is not None:
        names = [t.get_text() for t in legend.get_texts() if t.get_text()]
        if names:
            text += "; legend: " + ", ".join(names)
    return text


def figure_alt_text(fig, limit: int = 600) -> str:
    """A description of a matplotlib figure for screen readers, built from what the figure says about itself.

    A hand-written describe(fig, ...) wins. Otherwise: the suptitle, then one phrase per panel (its kind,
    title, axis labels and legend); a grid of images (axes turned off, as show_images draws them) becomes
    "N images" with the first labels. Cut to `limit` characters.
    """
    explicit = getattr(fig, ALT_ATTRIBUTE, None)
    if explicit:
        return explicit[:limit]
    parts = []
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and sup.get_text().strip():
        parts.append(sup.get_text().strip().replace("\n", " "))
    panels = [a for a in fig.axes if a.get_visible()]
    grid = [a for a in panels if a.images and not a.axison]
    plots = [a for a in panels if a not in grid and (a.axison or a.lines or a.patches)]
    if grid:
        labels = [a.get_title().replace("\n", " / ").strip() for a in grid if a.get_title().strip()]
        text = f"{len(grid)} image{'s' if len(grid) != 1 else ''}"
        if labels:
            text += " labelled " + "; ".join(labels[:12]) + ("; ..." if len(labels) > 12 else "")
        parts.append(text)
    parts += [_panel_text(a) for a in plots if a.get_label() != "<colorbar>"]
    text = ". ".join(p for p in parts if p) or "a figure"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _figure_html(fig):
    """The figure as one <img> with its PNG inline and alt text (None for an empty figure)."""
    import html

    from IPython.core.pylabtools import print_figure
    data = print_figure(fig, "png", bbox_inches="tight", base64=True)
    if not data:
        return None
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(figure_alt_text(fig), quote=True)}"/>'


def enable_figure_alt_text(shell=None) -> bool:
    """In a notebook, show every matplotlib figure as an image with alt text (figure_alt_text).

    Registers an HTML representation for matplotlib figures and drops the plain PNG one (the HTML holds the
    same PNG), so each figure is stored once. Called when the package is imported inside IPython; returns
    False (and changes nothing) outside it.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters or "text/html" not in formatters:
        return False
    # Activating the inline backend (%matplotlib inline, or the first pyplot import in a kernel) resets every
    # figure formatter: ours are re-applied before and after every cell, in case that happened in between.
    plt.get_backend()  # resolve (and so activate) the notebook's backend now, not at the first figure
    events = getattr(shell, "events", None)
    if events is not None and not getattr(shell, "_textimg_alt_text", False):
        shell._textimg_alt_text = True
        reapply = lambda *args: _use_alt_text_formatters(formatters)  # noqa: E731
        events.register("pre_run_cell", reapply)
        events.register("post_execute", reapply)  # before the backend's own post_execute draws the figures
    _use_alt_text_formatters(formatters)
    return True


def _use_alt_text_formatters(formatters) -> None:
    """Figures as HTML <img> with alt text; no bare PNG copy."""
    formatters["text/html"].for_type_by_name("matplotlib.figure", "Figure", _figure_html)
    from matplotlib.figure import Figure
    formatters["text/html"].for_type(Figure, _figure_html)
    png = formatters.get("image/png")
    if png is not None:
        png.deferred_printers.pop(("matplotlib.figure", "Figure"), None)
        for cls in [c for c in png.type_printers if getattr(c, "__name__", "") == "Figure"
                    and getattr(c, "__module__", "") == "matplotlib.figure"]:
            png.type_printers.pop(cls)

"""Pictures: training curves (live, redrawn in place), image grids, and a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from .train import Callback, History, Learner


def plot_history(history: History | dict[str, list[float]], axes: Sequence[plt.Axes] | None = None,
                 title: str | None = None) -> plt.Figure:
    """Loss and every logged metric (accuracy, IoU, …) per epoch, training and validation, side by side."""
    h = history.history if isinstance(history, History) else history
    groups = _metric_groups(h)
    if axes is None:
        fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.2), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, g in zip(axes, groups, strict=False):
        ax.clear()
        for key, style in ((g, "-"), (f"val_{g}", "--")):
            if key in h and h[key]:
                epochs = range(1, len(h[key]) + 1)
                ax.plot(epochs, h[key], style, marker="o", ms=3, label=key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(g)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _metric_groups(h: dict[str, list[float]]) -> list[str]:
    """``loss`` first, then each other training metric (not ``lr``/``time``, nor the ``val_`` twins)."""
    others = [k for k in h if k not in ("loss", "lr", "time") and not k.startswith("val_")]
    return ["loss"] * ("loss" in h) + others


class LivePlot(Callback):
    """Redraw the training curves after every epoch, in place (one figure, updated, never stacked).

    In JupyterLab the figure updates while training runs; executed headless (nbval, nbconvert) the saved
    notebook keeps the final figure.  Outside IPython nothing is drawn until :func:`plot_history`.
    """

    order = 15  # before EarlyStopping (20), so the epoch that stops training is drawn too

    def before_fit(self, learn: Learner) -> None:
        try:
            from IPython.display import display
        except ImportError:  # pragma: no cover - IPython is a dependency
            display = None
        self.fig = None
        self.handle = None
        if display is not None and _in_ipython():
            self.fig = plt.figure(figsize=(8.4, 3.2))
            self.handle = display(self.fig, display_id=True)
            plt.close(self.fig)  # drawn through the display handle only

    def after_epoch(self, learn: Learner) -> None:
        if self.handle is None:
            return
        self.fig.clear()
        h = learn.history.history
        n = len(_metric_groups(h))
        axes = [self.fig.add_subplot(1, n, i + 1) for i in range(n)]
        plot_history(h, axes, title=f"epoch {learn.epoch}/{learn.epochs}")
        self.handle.update(self.fig)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    return get_ipython() is not None


def show_images(images: Tensor, titles: Sequence[str] | None = None, ncols: int = 8, scale: float = 1.3,
                cmap: str = "gray") -> plt.Figure:
    """A grid of images ``[N, H, W]``, ``[N, 1, H, W]`` or ``[N, 3, H, W]`` with optional titles."""
    images = images.detach().cpu()
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else images.permute(0, 2, 3, 1)
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].float().numpy(), cmap=cmap)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def confusion_matrix(preds: Tensor, y: Tensor, num_classes: int) -> Tensor:
    """Counts ``[true, predicted]`` from predicted labels (or logits) and true labels."""
    if preds.ndim == 2:
        preds = preds.argmax(dim=1)
    idx = y.to(torch.int64) * num_classes + preds.to(torch.int64)
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def plot_confusion_matrix(cm: Tensor, class_names: Sequence[str]) -> plt.Figure:
    """Draw a confusion matrix with class names and counts in the cells."""
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(0.55 * n + 2.5, 0.55 * n + 2))
    ax.imshow(cm.numpy(), cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=60, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = cm.max().item()
    for i in range(n):
        for j in range(n):
            v = cm[i, j].item()
            color = "white" if v > top / 2 else "black"
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    return fig

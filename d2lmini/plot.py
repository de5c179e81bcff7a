"""Pictures: training runs (one function for all of them), image grids, and a confusion matrix.

:func:`plot_history` is the book's one way to draw training: what :func:`d2lmini.fit` returns (a
:class:`~d2lmini.History`), a per-epoch dict of lists, a :class:`FitResult` (a History plus a 1-D regression's
inputs, targets and predictions, drawn as the fitted function), or ``{label: run}`` to overlay several
runs.  :class:`~d2lmini.callbacks.LivePlot` redraws it after every epoch and the explorers of
:mod:`d2lmini.widgets` draw with it too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from .history import History

__all__ = ["FitResult", "confusion_matrix", "plot_confusion_matrix", "plot_history", "show_images"]


@dataclass
class FitResult:
    """A training run to draw: its :class:`~d2lmini.History` and, for a 1-D regression, the inputs ``x``,
    the targets ``y`` and the model's predictions ``y_pred`` (drawn as the fitted function)."""

    history: History
    x: Tensor | None = None
    y: Tensor | None = None
    y_pred: Tensor | None = None
    label: str = ""

    @property
    def diverged_at(self) -> int | None:
        """The step at which the loss became NaN/inf, or ``None``."""
        return self.history.diverged_at


Run = History | FitResult | Mapping[str, Sequence[float]]
Result = Run | Mapping[str, Run]


def _is_epoch_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and all(
        isinstance(v, Sequence) and not isinstance(v, str) and all(isinstance(x, int | float) for x in v)
        for v in obj.values())


def _as_fit(run: Run) -> FitResult:
    if isinstance(run, FitResult):
        return run
    if isinstance(run, History):
        return FitResult(run)
    if _is_epoch_dict(run):
        return FitResult(History(history={k: list(v) for k, v in run.items()}))
    raise TypeError(f"plot_history() draws a History, a FitResult, a per-epoch dict of lists, or a dict "
                    f"of them; got {type(run).__name__}")


def _runs(result: Result) -> list[tuple[str, FitResult]]:
    """Any accepted result as a list of ``(label, FitResult)``."""
    if isinstance(result, History | FitResult) or _is_epoch_dict(result):
        fit = _as_fit(result)  # type: ignore[arg-type]
        return [(fit.label, fit)]
    if isinstance(result, Mapping):
        return [(str(k), _as_fit(v)) for k, v in result.items()]
    raise TypeError(f"plot_history() draws a History, a FitResult, a per-epoch dict of lists, or a dict "
                    f"of them; got {type(result).__name__}")


def metric_panels(history: Mapping[str, Sequence[float]]) -> list[str]:
    """The panels drawn for one run's per-epoch dict: ``loss``, then each other training metric (accuracy,
    iou, ...), never ``lr``/``time`` nor the ``val_`` twins (drawn dashed in their metric's panel)."""
    others = [k for k in history if k not in ("loss", "lr", "time") and not k.startswith("val_")]
    return ["loss"] * ("loss" in history) + others


def _panels(runs: list[tuple[str, FitResult]]) -> list[str]:
    panels = ["fit"] if any(r.x is not None for _, r in runs) else []
    for _, r in runs:
        for p in metric_panels(r.history.history) or ["loss"]:
            if p not in panels:
                panels.append(p)
    return panels


def _values(xs: Any) -> list[float]:
    return [float(v) for v in (xs.detach().cpu().flatten().tolist() if isinstance(xs, Tensor) else xs)]


def _draw_fit(ax: plt.Axes, runs: list[tuple[str, FitResult]]) -> None:
    data: list[float] = []
    for i, (label, r) in enumerate(runs):
        if r.x is None:
            continue
        x = _values(r.x)
        order = sorted(range(len(x)), key=x.__getitem__)
        xs = [x[j] for j in order]
        if r.y is not None and not data:
            data = _values(r.y)
            ax.plot(xs, [data[j] for j in order], ".", color="0.6", ms=3, label="data")
        if r.y_pred is not None:
            yp = _values(r.y_pred)
            if all(math.isfinite(v) for v in yp):
                ax.plot(xs, [yp[j] for j in order], "-", color=f"C{i}", lw=2,
                        label=f"model {label}".strip() if len(runs) > 1 else "model")
    if data:  # keep the data in view even when a bad model predicts 1e30
        pad = 0.15 * (max(data) - min(data) + 1e-9)
        ax.set_ylim(min(data) - pad, max(data) + pad)
    if len(runs) == 1 and runs[0][1].diverged_at is not None:
        ax.text(0.5, 0.5, "diverged:\nno usable model", transform=ax.transAxes, ha="center", va="center",
                color="#b00020", fontsize=11,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#b00020"})
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("fitted function")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _uses_steps(runs: list[tuple[str, FitResult]], key: str, x_axis: str) -> bool:
    if key != "loss" or x_axis == "epoch":
        return False
    have_steps = all(r.history.step_loss for _, r in runs)
    if x_axis == "step":
        return have_steps
    return have_steps and all(r.history.epochs < 5 for _, r in runs)


def _draw_metric(ax: plt.Axes, runs: list[tuple[str, FitResult]], key: str, x_axis: str) -> None:
    """Training (solid) and validation (dashed) ``key`` per epoch, or the loss per step for short runs."""
    many = len(runs) > 1
    steps = _uses_steps(runs, key, x_axis)
    for i, (label, r) in enumerate(runs):
        h, color = r.history, f"C{i}"
        name = f"{label} " if many else ""
        if steps:
            ax.plot(range(1, len(h.step_loss) + 1), h.step_loss, "-", color=color, lw=1,
                    label=f"{name}train (per step)")
            val = h.history.get(f"val_{key}", [])
            if val and h.diverged_at is None and h.epochs:
                per_epoch = len(h.step_loss) / h.epochs
                ax.plot([per_epoch * (e + 1) for e in range(len(val))], val, "o--", color=color, ms=4,
                        label=f"{name}validation")
            continue
        for k, style in ((key, "-"), (f"val_{key}", "--")):
            ys = h.history.get(k, [])
            if ys:
                ax.plot(range(1, len(ys) + 1), ys, style, color=color,
                        marker="o" if len(ys) <= 30 else None, ms=3,
                        label=f"{name}{'validation' if k.startswith('val_') else 'train'}")
    ax.set_xlabel("step" if steps else "epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(key)
    ax.set_title(key)
    finite = [v for line in ax.lines for v in line.get_ydata() if math.isfinite(v)]
    if key == "loss" and finite and min(finite) > 0 and max(finite) / min(finite) > 50:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8, loc="best")


def _annotate_stops(ax: plt.Axes, runs: list[tuple[str, FitResult]]) -> None:
    """Write "diverged at step N" on ``ax`` for every run whose loss became NaN/inf."""
    lines = []
    for label, r in runs:
        who = f"{label}: " if label and len(runs) > 1 else ""
        if r.diverged_at is not None:
            lines.append(f"{who}diverged at step {r.diverged_at}\n(loss became NaN/inf)")
    if lines:
        ax.text(0.5, 0.85, "\n".join(lines), transform=ax.transAxes, ha="center", va="top", fontsize=11,
                color="#b00020", fontweight="bold",
                bbox={"boxstyle": "round", "facecolor": "#fde7e9", "edgecolor": "#b00020"})


def plot_history(result: Result, axes: Sequence[plt.Axes] | None = None, title: str | None = None,
                 x_axis: str = "auto", panels: Sequence[str] | None = None) -> plt.Figure:
    """Draw training runs: the fitted function (for a :class:`FitResult` with ``x``), the loss, and every
    other logged metric (accuracy, IoU, ...), training solid and validation dashed, epochs on integer ticks.

    ``result``: a :class:`~d2lmini.History`, a per-epoch dict (``history.history``), a :class:`FitResult`,
    or ``{label: run}`` (overlaid, one colour each).  A run whose loss became NaN/inf shows "diverged at
    step N".  ``x_axis``: ``'epoch'``, ``'step'`` (the loss of every batch), or ``'auto'`` (per step when
    every run has fewer than 5 epochs).  ``panels`` chooses some of ``'fit'``, ``'loss'``, ``'accuracy'``
    ...; ``axes`` (one per panel) draws into an existing figure.  Returns the Figure.
    """
    if x_axis not in ("auto", "epoch", "step"):
        raise ValueError(f"x_axis must be 'auto', 'epoch' or 'step', not {x_axis!r}")
    runs = _runs(result)
    chosen = list(panels) if panels is not None else _panels(runs)
    if axes is None:
        fig, axs = plt.subplots(1, len(chosen), figsize=(3.8 * len(chosen), 3.0), squeeze=False)
        axes = list(axs[0])
    elif len(axes) < len(chosen):
        raise ValueError(f"plot_history() needs {len(chosen)} axes ({', '.join(chosen)}), got {len(axes)}")
    fig = axes[0].figure
    for ax, panel in zip(axes, chosen, strict=False):
        ax.clear()
        if panel == "fit":
            _draw_fit(ax, runs)
        else:
            _draw_metric(ax, runs, panel, x_axis)
        if panel == "loss":
            _annotate_stops(ax, runs)
    label = title if title is not None else (runs[0][0] if len(runs) == 1 else "")
    if label:
        fig.suptitle(label)
    fig.tight_layout()
    return fig


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
    """Counts ``[true, predicted]`` from predicted labels (or logits) and true labels, computed by
    scikit-learn's ``confusion_matrix`` with every class listed (so absent classes get a zero row)."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    if preds.ndim == 2:
        preds = preds.argmax(dim=1)
    cm = sk_confusion_matrix(y.cpu().numpy(), preds.cpu().numpy(), labels=list(range(num_classes)))
    return torch.as_tensor(cm, dtype=torch.int64)


def plot_confusion_matrix(cm: Tensor, class_names: Sequence[str]) -> plt.Figure:
    """Draw a confusion matrix with class names and counts in the cells (scikit-learn's
    ``ConfusionMatrixDisplay``)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(class_names)
    fig, ax = plt.subplots(figsize=(0.55 * n + 2.5, 0.55 * n + 2))
    disp = ConfusionMatrixDisplay(cm.cpu().numpy(), display_labels=list(class_names))
    disp.plot(ax=ax, cmap="Blues", colorbar=False, xticks_rotation=60, values_format="d",
              text_kw={"fontsize": 7})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return fig

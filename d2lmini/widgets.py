"""Live explorers: sliders that retrain a small model and redraw its curves (ipywidgets).

Three pieces, each usable on its own:

* ``train_fn(**values)``: *your* function.  It retrains a small model with the slider values and returns a
  :class:`~d2lmini.History` (what :func:`d2lmini.fit` returns), a :class:`FitResult` (a History plus, for
  regression, the inputs, targets and predictions to draw the fitted function), or a dict
  ``{label: History or FitResult}`` to overlay several runs (e.g. one per optimizer).
* :func:`render` draws such a result as a matplotlib Figure: the fitted function (if any), the loss and,
  if logged, the accuracy.  A run whose loss became NaN/inf shows "diverged at step N" on the plot.
  :func:`render_grid` draws several results, one row each: the static figure for readers with no kernel.
* :class:`Explorer` ties them together: sliders (``continuous_update=False``), a Run button, a status line
  that says "training…" while it works, and one output area that is redrawn in place (never stacked).

Usage (chapter 03 fits a function; chapter 10 can pass a Fashion-MNIST ``train_fn`` the same way)::

    import d2lmini as d2l
    from d2lmini.widgets import Explorer, FitResult, dropdown, int_slider, lr_slider

    def train(lr: float, epochs: int, opt: str) -> d2l.History:
        torch.manual_seed(0)
        net = make_net()
        opt_cls = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}[opt]
        return d2l.fit(net, loaders.train, epochs=epochs, lr=lr, opt=opt_cls, val_data=loaders.val,
                       verbose=False)

    explorer = Explorer(train, {"lr": lr_slider(0.1), "epochs": int_slider(3, 1, 10),
                                "opt": dropdown(["SGD", "Adam"])})
    explorer                                  # shows the sliders; press Run (or move a slider: auto=True)
    history = explorer.run(lr=0.5)            # the same callback as the button, callable from code/tests
    d2l.widgets.render(history)               # a plain Figure: what the output area shows

Nothing waits for input, so a notebook holding an Explorer runs headless (nbclient, nbval) unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt
from torch import Tensor

from .train import History

__all__ = ["Explorer", "FitResult", "dropdown", "float_slider", "int_slider", "lr_slider", "render",
           "render_grid"]


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


Result = History | FitResult | Mapping[str, History | FitResult]


def _runs(result: Result) -> list[tuple[str, FitResult]]:
    """Any accepted result as a list of ``(label, FitResult)``."""
    if isinstance(result, History):
        return [("", FitResult(result))]
    if isinstance(result, FitResult):
        return [(result.label, result)]
    if isinstance(result, Mapping):
        return [(str(k), v if isinstance(v, FitResult) else FitResult(v)) for k, v in result.items()]
    raise TypeError(f"render() takes a History, a FitResult or a dict of them, not {type(result).__name__}")


def _panels(runs: list[tuple[str, FitResult]]) -> list[str]:
    panels = ["fit"] if any(r.x is not None for _, r in runs) else []
    panels.append("loss")
    if any("accuracy" in r.history.history for _, r in runs):
        panels.append("accuracy")
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
            finite = all(math.isfinite(v) for v in yp)
            if finite:
                ax.plot(xs, [yp[j] for j in order], "-", color=f"C{i}", lw=2,
                        label=f"model {label}".strip() if len(runs) > 1 else "model")
    if data:  # keep the data in view even when a bad model predicts 1e30
        pad = 0.15 * (max(data) - min(data) + 1e-9)
        ax.set_ylim(min(data) - pad, max(data) + pad)
    ax.set_xlabel("x")
    ax.set_title("fitted function")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _draw_curves(ax: plt.Axes, runs: list[tuple[str, FitResult]], key: str, x_axis: str) -> None:
    """Training (solid) and validation (dashed) ``key`` per epoch, or per step for short runs."""
    many = len(runs) > 1
    use_steps = key == "loss" and (x_axis == "step" or (
        x_axis == "auto" and all(r.history.epochs < 5 and r.history.step_loss for _, r in runs)))
    for i, (label, r) in enumerate(runs):
        h, color = r.history, f"C{i}"
        name = f"{label} " if many else ""
        if use_steps:
            ax.plot(range(1, len(h.step_loss) + 1), h.step_loss, "-", color=color, lw=1,
                    label=f"{name}train (per step)")
            val = h.history.get(f"val_{key}", [])
            if val and h.diverged_at is None and h.epochs:
                per_epoch = len(h.step_loss) / h.epochs
                ax.plot([per_epoch * (e + 1) for e in range(len(val))], val, "o--", color=color, ms=4,
                        label=f"{name}validation")
        else:
            for k, style in ((key, "-"), (f"val_{key}", "--")):
                ys = h.history.get(k, [])
                if ys:
                    ax.plot(range(1, len(ys) + 1), ys, style, color=color,
                            marker="o" if len(ys) <= 30 else None, ms=3,
                            label=f"{name}{'validation' if k.startswith('val_') else 'train'}")
    ax.set_xlabel("step" if use_steps else "epoch")
    ax.set_ylabel(key)
    ax.set_title(key)
    ys = [v for line in ax.lines for v in line.get_ydata()]
    finite = [v for v in ys if math.isfinite(v)]
    if key == "loss" and finite and min(finite) > 0 and max(finite) / min(finite) > 50:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8, loc="lower left" if key == "loss" else "best")


def _annotate_stops(ax: plt.Axes, runs: list[tuple[str, FitResult]]) -> list[str]:
    """Write "diverged at step N" (and other stop reasons) on ``ax``; return the lines written."""
    lines = []
    for label, r in runs:
        who = f"{label}: " if label and len(runs) > 1 else ""
        if r.history.diverged_at is not None:
            lines.append(f"{who}diverged at step {r.history.diverged_at}\n(loss became NaN/inf)")
    if lines:
        ax.text(0.5, 0.85, "\n".join(lines), transform=ax.transAxes, ha="center", va="top", fontsize=12,
                color="#b00020", fontweight="bold",
                bbox={"boxstyle": "round", "facecolor": "#fde7e9", "edgecolor": "#b00020"})
    return lines


def render(result: Result, axes: Sequence[plt.Axes] | None = None, title: str | None = None,
           x_axis: str = "auto") -> plt.Figure:
    """Draw a training result: the fitted function (when ``x`` is given), the loss and, if logged, the
    accuracy, training solid and validation dashed.  A run that diverged shows "diverged at step N" on the
    loss panel (and on the fit panel).  ``result`` is a History, a :class:`FitResult`, or a dict of them
    (overlaid, one colour each).  ``x_axis``: ``'epoch'``, ``'step'``, or ``'auto'`` (per step when every
    run has fewer than 5 epochs).  Returns the Figure (drawn into ``axes`` if given, one per panel)."""
    runs = _runs(result)
    panels = _panels(runs)
    if axes is None:
        fig, axs = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
        axes = list(axs[0])
    elif len(axes) < len(panels):
        raise ValueError(f"render() needs {len(panels)} axes ({', '.join(panels)}), got {len(axes)}")
    fig = axes[0].figure
    for ax, panel in zip(axes, panels, strict=False):
        if panel == "fit":
            _draw_fit(ax, runs)
            if any(r.history.diverged_at is not None for _, r in runs) and len(runs) == 1:
                ax.text(0.5, 0.5, "diverged:\nno usable model", transform=ax.transAxes, ha="center",
                        va="center", color="#b00020", fontsize=11,
                        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#b00020"})
        else:
            _draw_curves(ax, runs, panel, x_axis)
        if panel == "loss":
            _annotate_stops(ax, runs)
    label = title if title is not None else (runs[0][0] if len(runs) == 1 else "")
    if label:
        fig.suptitle(label)
    fig.tight_layout()
    return fig


def render_grid(results: Mapping[str, Result], x_axis: str = "auto") -> plt.Figure:
    """Several results, one row each, titled by their key: the static version of an :class:`Explorer`,
    e.g. ``render_grid({f"lr={lr}": train(lr=lr, epochs=500) for lr in (0.01, 0.1, 1)})``."""
    if not results:
        raise ValueError("render_grid() needs at least one result")
    all_runs = [_runs(r) for r in results.values()]
    ncols = max(len(_panels(r)) for r in all_runs)
    fig, axs = plt.subplots(len(results), ncols, figsize=(3.6 * ncols, 2.7 * len(results)), squeeze=False)
    for row, (name, runs) in zip(axs, zip(results, all_runs, strict=True), strict=True):
        render(dict(runs) if len(runs) > 1 else runs[0][1], axes=list(row), title="", x_axis=x_axis)
        row[0].set_title(f"{name}: {row[0].get_title()}", fontsize=10)
        for ax in row[len(_panels(runs)):]:
            ax.axis("off")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- sliders

def lr_slider(value: float = 0.1, min: float = 1e-4, max: float = 10.0,
              description: str = "lr") -> W.FloatLogSlider:
    """A log-scale learning-rate slider from ``min`` to ``max`` (default 1e-4 to 10)."""
    if not min <= value <= max:
        raise ValueError(f"lr_slider: value {value} is outside [{min}, {max}]")
    return W.FloatLogSlider(value=value, base=10, min=math.log10(min), max=math.log10(max), step=0.1,
                            description=description, continuous_update=False, readout_format=".4g")


def int_slider(value: int, min: int, max: int, step: int = 1, description: str = "") -> W.IntSlider:
    """An integer slider (epochs, batch size, hidden units) that reports only when released."""
    return W.IntSlider(value=value, min=min, max=max, step=step, description=description,
                       continuous_update=False)


def float_slider(value: float, min: float, max: float, step: float = 0.01,
                 description: str = "") -> W.FloatSlider:
    """A linear float slider (momentum, weight decay, dropout) that reports only when released."""
    return W.FloatSlider(value=value, min=min, max=max, step=step, description=description,
                         continuous_update=False)


def dropdown(options: Sequence[str], value: str | None = None, description: str = "") -> W.Dropdown:
    """A choice among names, e.g. optimizers ``["SGD", "Momentum", "Adam"]``."""
    return W.Dropdown(options=list(options), value=value if value is not None else options[0],
                      description=description)


# ---------------------------------------------------------------------------------------------- explorer

def _png_output(fig: plt.Figure) -> dict[str, Any]:
    """A figure as one notebook ``display_data`` output (PNG), for an Output widget's ``outputs``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                     "text/plain": f"<Figure: {len(fig.axes)} panels>"}}


def _text_output(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


class Explorer:
    """Sliders + a Run button that retrain with ``train_fn(**slider_values)`` and redraw with
    ``render_fn(result)`` in one output area.

    ``sliders`` maps ``train_fn``'s argument names to widgets (see :func:`lr_slider`, :func:`int_slider`,
    :func:`float_slider`, :func:`dropdown`).  With ``auto=True`` releasing a slider retrains at once;
    otherwise the Run button does.  ``run_now=True`` trains once with the initial values so the output area
    is not empty.  :meth:`run` is the callback itself: a plain method, callable from code and tests.
    While training, the button reads "Training…" and is disabled; afterwards the status line shows the
    time taken, or the error message (training errors never escape into the kernel).
    """

    def __init__(
        self,
        train_fn: Callable[..., Result],
        sliders: Mapping[str, W.ValueWidget],
        render_fn: Callable[[Result], plt.Figure] = render,
        auto: bool = False,
        run_now: bool = False,
        title: str = "",
    ) -> None:
        if not sliders:
            raise ValueError("Explorer needs at least one slider, e.g. {'lr': lr_slider(0.1)}")
        self.train_fn, self.render_fn, self.auto = train_fn, render_fn, auto
        self.sliders = dict(sliders)
        for name, w in self.sliders.items():
            if not isinstance(w, W.ValueWidget):
                raise TypeError(f"slider {name!r} must be an ipywidgets widget (e.g. lr_slider()), "
                                f"not {type(w).__name__}")
            if not w.description:
                w.description = name
            if hasattr(w, "continuous_update"):
                w.continuous_update = False  # retrain when released, not on every pixel of a drag
            if auto:
                w.observe(self._on_change, names="value")
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _button: self.run())
        self.status = W.HTML(value="Move the sliders, then press <b>Run</b>." if not auto
                             else "Release a slider to retrain.")
        self.out = W.Output(layout=W.Layout(min_height="260px"))
        header = [W.HTML(f"<b>{title}</b>")] if title else []
        controls = [W.HBox(list(self.sliders.values())), W.HBox([self.button, self.status])]
        self.widget = W.VBox([*header, *controls, self.out])
        self.result: Result | None = None
        self.runs = 0
        self.last_seconds: float | None = None  # how long the last retrain took
        if run_now:
            self.run()

    @property
    def values(self) -> dict[str, Any]:
        """The current slider values, as ``train_fn`` receives them."""
        return {name: w.value for name, w in self.sliders.items()}

    def _on_change(self, change: dict[str, Any]) -> None:
        self.run()

    def run(self, **overrides: Any) -> Result | None:
        """Retrain with the slider values (``overrides`` replace some of them, and move those sliders),
        redraw the output area in place, and return ``train_fn``'s result (``None`` if it raised)."""
        if overrides:
            unknown = set(overrides) - set(self.sliders)
            if unknown:
                raise ValueError(f"no slider named {sorted(unknown)}; sliders: {sorted(self.sliders)}")
            for name, v in overrides.items():  # move the sliders without triggering auto runs
                w = self.sliders[name]
                if self.auto:
                    w.unobserve(self._on_change, names="value")
                w.value = v
                if self.auto:
                    w.observe(self._on_change, names="value")
        values = self.values
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        self.button.disabled, self.button.description, self.button.icon = True, "Training…", "hourglass"
        self.status.value = f"<i>training… ({shown})</i>"
        start = time.perf_counter()
        printed = io.StringIO()
        figs_before = set(plt.get_fignums())
        try:
            with contextlib.redirect_stdout(printed):
                result = self.train_fn(**values)
                fig = self.render_fn(result)
        except Exception as e:  # a lesson, not a crash: show it and keep the sliders working
            for num in set(plt.get_fignums()) - figs_before:  # a half-drawn figure must not pop up later
                plt.close(num)
            msg = "".join(traceback.format_exception_only(type(e), e)).strip()
            self.out.outputs = (_text_output(f"Training failed with {shown}:\n{msg}\n"),)
            self.status.value = f"<span style='color:#b00020'>error: {msg[:200]}</span>"
            self.result = None
            return None
        finally:
            self.button.disabled, self.button.description, self.button.icon = False, "Run", "play"
        secs = time.perf_counter() - start
        outputs = [_png_output(fig)]
        plt.close(fig)  # drawn once, into the output area; never again by the inline backend
        text = printed.getvalue().strip()
        if text:
            outputs.append(_text_output(text[-2000:] + "\n"))
        self.out.outputs = tuple(outputs)
        self.status.value = f"done in {secs:.1f} s ({shown})"
        self.result, self.runs, self.last_seconds = result, self.runs + 1, secs
        return result

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return f"Explorer({getattr(self.train_fn, '__name__', 'train_fn')}, sliders={list(self.sliders)})"

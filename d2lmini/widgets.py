"""Live explorers: sliders that retrain a small model (or recompute a picture) and redraw it in place.

An :class:`Explorer` ties three things together:

* ``train_fn(**values)``: *your* function of the slider values.  It retrains or recomputes and returns a
  result: a :class:`~d2lmini.History`, a :class:`~d2lmini.FitResult`, a dict of them, or anything your
  ``render_fn`` draws.
* ``render_fn(result) -> Figure``: how to draw it, by default :func:`d2lmini.plot_history` (which marks a
  diverged run with "diverged at step N").
* the widget: sliders that report only when released (``continuous_update=False``), a Run button, a status
  line that says "training…" and then how many seconds the run took, and one output area redrawn in place.

:meth:`Explorer.show` displays the widget and, for readers with no kernel (the website, a notebook viewer,
the committed notebook), a :class:`~d2lmini.replay.Replay`: the same ``train_fn`` and ``render_fn`` run on a
small grid of slider values while the chapter runs, embedded as a plain HTML range input::

    explorer = Explorer(train, {"lr": lr_slider(0.1), "epochs": int_slider(5, 1, 20)})
    explorer.show(replay={"lr": [0.01, 0.03, 0.1, 0.3, 1.0]})

Errors are never hidden.  In the notebook an exception in ``train_fn`` or ``render_fn`` is shown in red in
the status line and the output area; in smoke mode, under pytest, or with ``D2LMINI_STRICT=1`` it also
propagates, so that CI fails.  Nothing waits for input, so a notebook holding an Explorer runs headless.
"""

from __future__ import annotations

import contextlib
import html
import io
import itertools
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt

from .config import is_smoke
from .plot import plot_history
from .replay import Replay, figure_png, format_value

__all__ = ["Explorer", "dropdown", "float_slider", "int_slider", "lr_slider", "strict_errors"]


def strict_errors() -> bool:
    """True when an explorer's errors must propagate: smoke mode (CI), a pytest run, or
    ``D2LMINI_STRICT=1``."""
    flag = os.environ.get("D2LMINI_STRICT", "").strip().lower() in {"1", "true", "yes", "on"}
    return flag or is_smoke() or "PYTEST_CURRENT_TEST" in os.environ


# ---------------------------------------------------------------------------------------------- sliders

def lr_slider(value: float = 0.1, min: float = 1e-4, max: float = 10.0,
              description: str = "lr") -> W.FloatLogSlider:
    """A log-scale learning-rate slider from ``min`` to ``max`` (default 1e-4 to 10)."""
    import math

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

def _png_output(png: bytes, n_panels: int) -> dict[str, Any]:
    """A PNG as one notebook ``display_data`` output, for an Output widget's ``outputs``."""
    import base64

    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(png).decode("ascii"),
                     "text/plain": f"<Figure: {n_panels} panels>"}}


def _text_output(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in values.items())


class Explorer:
    """Sliders + a Run button that rerun ``train_fn(**slider_values)`` and redraw ``render_fn(result)``
    in one output area.

    ``sliders`` maps ``train_fn``'s argument names to widgets (see :func:`lr_slider`, :func:`int_slider`,
    :func:`float_slider`, :func:`dropdown`).  With ``auto=True`` releasing a slider reruns at once;
    otherwise the Run button does.  :meth:`run` is the button's callback, callable from code and tests;
    :meth:`show` displays the widget and its replay.
    """

    def __init__(
        self,
        train_fn: Callable[..., Any],
        sliders: Mapping[str, W.ValueWidget],
        render_fn: Callable[[Any], plt.Figure] = plot_history,
        auto: bool = False,
        title: str = "",
    ) -> None:
        if not sliders:
            raise ValueError("Explorer needs at least one slider, e.g. {'lr': lr_slider(0.1)}")
        self.train_fn, self.render_fn, self.auto, self.title = train_fn, render_fn, auto, title
        self.sliders = dict(sliders)
        for name, w in self.sliders.items():
            if not isinstance(w, W.ValueWidget):
                raise TypeError(f"slider {name!r} must be an ipywidgets widget (e.g. lr_slider()), "
                                f"not {type(w).__name__}")
            if not w.description:
                w.description = name
            if hasattr(w, "continuous_update"):
                w.continuous_update = False  # rerun when released, not on every pixel of a drag
            if auto:
                w.observe(self._on_change, names="value")
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _button: self.run())
        self.status = W.HTML(value="Move the sliders, then press <b>Run</b>." if not auto
                             else "Release a slider to rerun.")
        self.status.add_class("d2l-explorer-status")
        self.out = W.Output(layout=W.Layout(min_height="260px"))
        self.out.add_class("d2l-explorer-out")
        header = [W.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        controls = [W.HBox(list(self.sliders.values())), W.HBox([self.button, self.status])]
        self.widget = W.VBox([*header, *controls, self.out])
        self.widget.add_class("d2l-explorer")
        self.result: Any = None
        self.runs = 0
        self.last_seconds: float | None = None  # how long the last run took (train_fn + render_fn)
        self.replay: Replay | None = None

    @property
    def values(self) -> dict[str, Any]:
        """The current slider values, as ``train_fn`` receives them."""
        return {name: w.value for name, w in self.sliders.items()}

    def _on_change(self, change: dict[str, Any]) -> None:
        self.run()

    def _set_values(self, overrides: Mapping[str, Any]) -> None:
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

    def compute(self, **values: Any) -> tuple[Any, bytes, int, float]:
        """Run ``train_fn(**values)`` and ``render_fn`` once: (result, PNG, panels, seconds).  Whatever the
        run prints is kept out of the notebook (it is shown under the picture in the live widget)."""
        start = time.perf_counter()
        figs_before = set(plt.get_fignums())
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                result = self.train_fn(**values)
                fig = self.render_fn(result)
            png = figure_png(fig)
            n_panels = len(fig.axes)
        finally:
            for num in set(plt.get_fignums()) - figs_before:  # drawn once, never again by the inline backend
                plt.close(num)
        self._printed = printed.getvalue().strip()
        return result, png, n_panels, time.perf_counter() - start

    def run(self, **overrides: Any) -> Any:
        """Rerun with the slider values (``overrides`` replace some of them and move those sliders), redraw
        the output area in place, and return the result.  On an error the message is shown in red; it also
        propagates in smoke mode, under pytest and with ``D2LMINI_STRICT=1`` (see :func:`strict_errors`),
        and otherwise ``None`` is returned."""
        if overrides:
            self._set_values(overrides)
        values = self.values
        shown = html.escape(_describe(values))
        self.button.disabled, self.button.description, self.button.icon = True, "Running…", "hourglass"
        self.status.value = f"<i>running… ({shown})</i>"
        try:
            result, png, n_panels, secs = self.compute(**values)
        except Exception as e:
            msg = "".join(traceback.format_exception_only(type(e), e)).strip()
            self.out.outputs = (_text_output(f"The run failed with {_describe(values)}:\n{msg}\n"),)
            self.status.value = f"<span style='color:#b00020'>error: {html.escape(msg[:300])}</span>"
            self.result = None
            if strict_errors():
                raise
            return None
        finally:
            self.button.disabled, self.button.description, self.button.icon = False, "Run", "play"
        outputs = [_png_output(png, n_panels)]
        if self._printed:
            outputs.append(_text_output(self._printed[-2000:] + "\n"))
        self.out.outputs = tuple(outputs)
        self.status.value = f"done in {secs:.1f} s ({shown})"
        self.result, self.runs, self.last_seconds = result, self.runs + 1, secs
        return result

    def precompute(self, grid: Mapping[str, Sequence[Any]]) -> Replay:
        """Run every combination of ``grid``'s values (the other sliders at their current values) and
        return the :class:`~d2lmini.replay.Replay` of the pictures.  Errors always propagate."""
        if not grid:
            raise ValueError("replay= needs at least one slider name with a list of values")
        unknown = set(grid) - set(self.sliders)
        if unknown:
            raise ValueError(f"replay: no slider named {sorted(unknown)}; sliders: {sorted(self.sliders)}")
        base = self.values
        frames, captions, seconds = {}, {}, []
        for combo in itertools.product(*grid.values()):
            values = {**base, **dict(zip(grid, combo, strict=True))}
            _, png, _, secs = self.compute(**values)
            frames[combo] = png
            captions[combo] = f"{_describe(dict(zip(grid, combo, strict=True)))}: computed in {secs:.1f} s"
            seconds.append(secs)
        initial = tuple(base[k] for k in grid)
        if initial not in frames:
            initial = next(iter(frames))
        note = (f"Precomputed when this chapter ran: {len(frames)} runs, {sum(seconds) / len(seconds):.1f} s "
                f"each on average (at most {max(seconds):.1f} s). Drag the slider to replay them; in "
                f"Jupyter with a kernel, the live explorer above reruns any setting.")
        fixed = {k: v for k, v in base.items() if k not in grid}
        if fixed:
            note += f" Other settings: {_describe(fixed)}."
        return Replay({k: list(v) for k, v in grid.items()}, frames, captions, initial,
                      title=f"Replay: {self.title}" if self.title else "Replay", note=note)

    def show(self, replay: Mapping[str, Sequence[Any]] | None = None) -> None:
        """Display the live widget, then (with ``replay``) precompute and display its replay (kept in
        ``self.replay``).  The live output area starts with the picture for the current slider values."""
        from IPython.display import display

        display(self.widget)
        if replay is None:
            self.run()
            return
        self.replay = self.precompute(replay)
        current = tuple(self.values[k] for k in replay)
        if current in self.replay.frames:
            self.out.outputs = (_png_output(self.replay.frames[current], 0),)
            self.status.value = "Move the sliders, then press <b>Run</b>."
        else:
            self.run()
        display(self.replay)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return f"Explorer({getattr(self.train_fn, '__name__', 'train_fn')}, sliders={list(self.sliders)})"

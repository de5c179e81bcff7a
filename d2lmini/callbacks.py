"""Callbacks: everything the training loop does besides the five steps of training.

A callback is an object with methods named after the :class:`~d2lmini.Learner`'s events; each gets the
Learner.  The events, in order::

    before_fit
      before_epoch                                         once per epoch
        before_batch, after_loss, before_step, after_batch     every training batch
        before_validate, after_validate                    when there is validation data
      after_epoch                                          learn.history holds the epoch's numbers
    after_fit                                              always, even after an error or Ctrl-C

``learn.epoch`` counts from 1: it is the epoch running in every event from ``before_epoch`` to
``after_epoch``, and the number of epochs completed in ``before_fit`` and ``after_fit``; ``learn.step`` is
the number of training batches done so far (the current one from ``after_loss`` on).

Callbacks run in the order of their ``order`` attribute (smaller first).  A callback controls the loop
by raising one of three exceptions:

* :class:`CancelStep` in a batch event: skip the rest of this batch (raised in ``before_step`` it skips
  only ``opt.step()``, which a gradient scaler does itself); the gradients are zeroed all the same;
* :class:`CancelEpoch` in ``before_epoch`` or a batch event: skip the rest of this epoch's training
  batches; validation and ``after_epoch`` still run;
* :class:`CancelFit` anywhere: stop training (raised in ``after_epoch``, the other callbacks still see
  that epoch first).

This module imports neither matplotlib nor the training loop: :class:`LivePlot` imports the plotting
module only when it draws.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .messages import msg, wrap

if TYPE_CHECKING:  # only for type hints: the Learner imports this module, not the other way round
    from .train import Learner

EVENTS = ("before_fit", "before_epoch", "before_batch", "after_loss", "before_step", "after_batch",
          "before_validate", "after_validate", "after_epoch", "after_fit")


class CancelFit(Exception):
    """Raised by a callback to end training early (caught by :meth:`Learner.fit`, which prints it)."""


class CancelEpoch(Exception):
    """Raised in ``before_epoch`` or a batch event to skip the rest of this epoch's training batches."""


class CancelStep(Exception):
    """Raised in a batch event to skip the rest of this batch (in ``before_step``: only ``opt.step()``)."""


class Callback:
    """Base class: override any of the event methods (:data:`EVENTS`); each gets the :class:`Learner`."""

    order: int = 0

    def before_fit(self, learn: Learner) -> None: ...
    def before_epoch(self, learn: Learner) -> None: ...
    def before_batch(self, learn: Learner) -> None: ...
    def after_loss(self, learn: Learner) -> None: ...
    def before_step(self, learn: Learner) -> None: ...
    def after_batch(self, learn: Learner) -> None: ...
    def before_validate(self, learn: Learner) -> None: ...
    def after_validate(self, learn: Learner) -> None: ...
    def after_epoch(self, learn: Learner) -> None: ...
    def after_fit(self, learn: Learner) -> None: ...


# Event names of other libraries (Keras, fastai, Lightning) and the d2lmini event that does the job.
_SIMILAR = {
    "on_train_begin": "before_fit", "on_fit_start": "before_fit", "on_train_end": "after_fit",
    "on_fit_end": "after_fit", "on_epoch_begin": "before_epoch", "on_train_epoch_start": "before_epoch",
    "on_epoch_end": "after_epoch", "on_train_epoch_end": "after_epoch",
    "on_batch_begin": "before_batch", "on_train_batch_begin": "before_batch", "on_train_batch_start":
    "before_batch", "on_batch_end": "after_batch", "on_train_batch_end": "after_batch",
    "after_pred": "after_loss (learn.preds is set)", "before_backward": "after_loss",
    "after_backward": "before_step", "after_step": "after_batch", "before_train": "before_epoch",
    "after_train": "before_validate", "before_validation": "before_validate",
    "after_validation": "after_validate", "on_validation_end": "after_validate",
    "before_loss": "before_batch", "begin_fit": "before_fit", "begin_epoch": "before_epoch",
    "begin_batch": "before_batch",
}
_warned: set[tuple[type, str]] = set()


def unknown_events(cb: object) -> list[str]:
    """Public methods of ``cb`` named like an event (``on_*``, ``before_*``, ``after_*``, ``begin_*``)
    that are not one of :data:`EVENTS`, so the Learner would never call them."""
    names = [n for n in dir(type(cb)) if n.startswith(("on_", "before_", "after_", "begin_"))]
    return [n for n in names if n not in EVENTS and callable(getattr(type(cb), n, None))]


def warn_unknown_events(cb: object) -> None:
    """Warn once per class and method about :func:`unknown_events`, naming the real events."""
    for name in unknown_events(cb):
        if (type(cb), name) in _warned:
            continue
        _warned.add((type(cb), name))
        hint = f" Did you mean {_SIMILAR[name]}?" if name in _SIMILAR else ""
        warnings.warn(
            f"{type(cb).__name__}.{name} looks like a training event but is not one, so the Learner never "
            f"calls it.{hint} The events are {', '.join(EVENTS)}; each gets one argument, the Learner.",
            UserWarning, stacklevel=4)


# ------------------------------------------------------------------------------------ monitoring a value
#: A monitored name containing one of these words is better when larger (``val_accuracy``, ``val_iou``).
MAX_WORDS = ("acc", "iou", "dice", "f1", "auc", "precision", "recall")


def default_mode(monitor: str) -> str:
    """``'max'`` if ``monitor`` contains acc, iou, dice, f1, auc, precision or recall (any case), else
    ``'min'`` (losses and errors)."""
    return "max" if any(w in monitor.lower() for w in MAX_WORDS) else "min"


class Best:
    """The best value of ``monitor`` seen so far; shared by :class:`EarlyStopping` and :class:`Checkpoint`.

    ``mode`` is ``'min'`` or ``'max'`` (default :func:`default_mode`); a new value counts as better only if
    it beats the best by more than ``min_delta``.
    """

    def __init__(self, monitor: str, mode: str | None = None, min_delta: float = 0.0) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must name a logged value such as 'val_loss', got {monitor!r}")
        mode = default_mode(monitor) if mode is None else mode
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max' (or None to guess from the name), got {mode!r}")
        if not (isinstance(min_delta, int | float) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.best: float | None = None

    def value(self, learn: Learner) -> float:
        """The monitored value of the epoch that just ended (a clear error if it is not logged)."""
        h = learn.history.history
        if not h.get(self.monitor):
            raise ValueError(f"{self.monitor!r} is not logged; the history holds {', '.join(h)}. "
                             f"Monitor one of these (validation values need val_data).")
        return h[self.monitor][-1]

    def reset(self, values: list[float] = ()) -> None:
        """Forget the best value, or start from the best of ``values`` (e.g. the epochs already logged)."""
        self.best = None
        for v in values:
            self.update(v)

    def update(self, value: float) -> bool:
        """True (and remember ``value``) if it is better than the best so far by more than ``min_delta``."""
        if self.best is None and not math.isnan(value):
            better = True
        elif self.best is None:
            better = False
        elif self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better

    def __repr__(self) -> str:
        return f"Best({self.monitor!r}, mode={self.mode!r}, min_delta={self.min_delta:g})"


# ---------------------------------------------------------------------------------------------- callbacks
class PrintMetrics(Callback):
    """Print a table with one row per epoch: the epoch, every metric of the history, the seconds::

        epoch    loss  accuracy  val_loss  val_accuracy   time
          1/5  0.8064    0.7416    0.6102        0.7800  2.1 s
    """

    order = 10

    def before_fit(self, learn: Learner) -> None:
        self.header = False

    def after_epoch(self, learn: Learner) -> None:
        h = learn.history.history
        names = [k for k in h if k not in ("lr", "time")]
        widths = [max(len(k), 7) for k in names]
        span = max(5, 2 * len(str(learn.epochs)) + 1)
        if not self.header:
            cols = "  ".join(f"{k:>{w}}" for k, w in zip(names, widths, strict=True))
            print(f"{'epoch':>{span}}  {cols}  {'time':>6}")
            self.header = True
        vals = "  ".join(f"{h[k][-1]:>{w}.4f}" for k, w in zip(names, widths, strict=True))
        epoch = f"{learn.epoch}/{learn.epochs}"
        print(f"{epoch:>{span}}  {vals}  {h['time'][-1]:>4.1f} s")


class ProgressBar(Callback):
    """A ``tqdm.auto`` progress bar over the training batches of each epoch, with the loss every
    ``every`` batches (reading the loss waits for a GPU, so not at every batch)."""

    def __init__(self, every: int = 10) -> None:
        self.every, self.bar = every, None

    def before_epoch(self, learn: Learner) -> None:
        from tqdm.auto import tqdm

        total = len(learn.train_data) if hasattr(learn.train_data, "__len__") else None
        self.bar = tqdm(total=total, desc=f"epoch {learn.epoch}/{learn.epochs}", leave=False)

    def after_batch(self, learn: Learner) -> None:
        self.bar.update(1)
        if self.bar.n % self.every == 0 and getattr(learn, "last_loss", None) is not None:
            self.bar.set_postfix(loss=f"{float(learn.last_loss):.3f}", refresh=False)

    def after_epoch(self, learn: Learner) -> None:
        self.bar.close()

    def after_fit(self, learn: Learner) -> None:
        if self.bar is not None:
            self.bar.close()


class EarlyStopping(Callback):
    """Stop when ``monitor`` (default ``val_loss``) has not improved by more than ``min_delta`` for
    ``patience`` epochs.  With ``restore_best`` the weights of the best epoch are put back whenever
    training ends with other weights: after the stop, after the last epoch, and after an interruption
    in the middle of an epoch (a NaN loss, Ctrl-C, another callback's ``CancelFit``), so the model stays
    usable.  ``mode``: ``'min'``/``'max'``, default from the name (:func:`default_mode`)."""

    order = 20

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 restore_best: bool = True, mode: str | None = None) -> None:
        self.tracker = Best(monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a whole number of epochs >= 0, got {patience!r}")
        self.monitor, self.mode, self.patience = monitor, self.tracker.mode, patience
        self.min_delta, self.restore_best = self.tracker.min_delta, restore_best

    def before_fit(self, learn: Learner) -> None:  # patience and the best weights count within one fit
        self.tracker.reset()
        self.best_epoch, self.best_state, self.best_step = 0, None, None

    @property
    def best(self) -> float | None:
        return self.tracker.best

    def after_epoch(self, learn: Learner) -> None:
        if self.tracker.update(self.tracker.value(learn)):
            self.best_epoch, self.best_step = learn.epoch, learn.step
            if self.restore_best:
                self.best_state = {k: v.detach().clone() for k, v in learn.model.state_dict().items()}
        elif learn.epoch - self.best_epoch >= self.patience:
            raise CancelFit(msg("early_stop", epoch=learn.epoch, monitor=self.monitor, patience=self.patience,
                                best=self.best, best_epoch=self.best_epoch))

    def after_fit(self, learn: Learner) -> None:
        # learn.step counts the batches trained: if it moved since the best epoch, so did the weights
        if self.restore_best and self.best_state is not None and learn.step != self.best_step:
            learn.model.load_state_dict(self.best_state)
            print(wrap(msg("restored_best", epoch=self.best_epoch)))


class Checkpoint(Callback):
    """Save everything :meth:`Learner.resume` needs (model, optimizer, scheduler, grad scaler, random
    states, epoch, step, history) to ``path`` after every epoch, or, with ``save_best_only``, only when
    ``monitor`` improves by more than ``min_delta`` (``mode`` as in :class:`EarlyStopping`).
    Load the weights back with :func:`d2lmini.load_checkpoint`."""

    order = 30

    def __init__(self, path: str | Path, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str | None = None, min_delta: float = 0.0) -> None:
        self.path, self.save_best_only = Path(path), save_best_only
        self.tracker = Best(monitor, mode, min_delta)
        self.monitor, self.mode = monitor, self.tracker.mode

    def before_fit(self, learn: Learner) -> None:
        # a resumed or continued run keeps the best so far: the file is not overwritten by a worse epoch
        self.tracker.reset(learn.history.history.get(self.monitor, []))

    @property
    def best(self) -> float | None:
        return self.tracker.best

    def after_epoch(self, learn: Learner) -> None:
        if self.save_best_only and not self.tracker.update(self.tracker.value(learn)):
            return
        learn.save(self.path)


class LRScheduler(Callback):
    """Step a learning-rate scheduler after every batch (``every='batch'``, e.g. OneCycleLR) or every
    epoch (``every='epoch'``, e.g. StepLR); ``ReduceLROnPlateau`` is stepped with the epoch's ``monitor``.

    ``scheduler`` is a ready scheduler built on the Learner's optimizer, or a function ``make(optimizer)``
    that builds one (``lambda opt: StepLR(opt, 10)``); it is built once per Learner, so a second ``fit``
    continues the schedule.  The Learner holds it as ``learn.scheduler`` (checkpoints save its state).
    """

    def __init__(self, scheduler: Any, every: str = "epoch", monitor: str = "val_loss") -> None:
        if every not in ("batch", "epoch"):
            raise ValueError(f"every must be 'batch' or 'epoch', got {every!r}")
        is_instance = hasattr(scheduler, "step") and hasattr(scheduler, "state_dict")
        if not is_instance and not callable(scheduler):
            raise ValueError("LRScheduler needs a scheduler (e.g. StepLR(opt, 10)) or a function "
                             f"make(optimizer) -> scheduler, got {scheduler!r}")
        self.make: Callable[[torch.optim.Optimizer], Any] | None = None if is_instance else scheduler
        self.scheduler = scheduler if is_instance else None
        self.every, self.monitor = every, monitor

    def before_fit(self, learn: Learner) -> None:
        if self.make is not None and getattr(self.scheduler, "optimizer", None) is not learn.opt:
            self.scheduler = self.make(learn.opt)
        if getattr(self.scheduler, "optimizer", learn.opt) is not learn.opt:
            raise ValueError("the scheduler steps another optimizer than the Learner's: build it on "
                             "learn.opt, or pass a function make(optimizer) instead")
        learn.scheduler = self.scheduler

    def after_batch(self, learn: Learner) -> None:
        if self.every == "batch":
            self.scheduler.step()

    def after_epoch(self, learn: Learner) -> None:
        if self.every == "epoch":
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(learn.history.last(self.monitor))
            else:
                self.scheduler.step()


class LivePlot(Callback):
    """Redraw the training curves after every epoch, in place (one figure, updated, never stacked).

    In JupyterLab the figure updates while training runs; executed headless (nbval, nbconvert) the saved
    notebook keeps the final figure.  Outside IPython nothing is drawn until :func:`d2lmini.plot_history`.
    """

    order = 15  # before EarlyStopping (20)

    def before_fit(self, learn: Learner) -> None:
        self.fig = self.handle = None
        if not _in_ipython():
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.fig = plt.figure(figsize=(8.4, 3.2))
        self.handle = display(self.fig, display_id=True)
        plt.close(self.fig)  # drawn through the display handle only

    def after_epoch(self, learn: Learner) -> None:
        if self.handle is None:
            return
        from .plot import metric_panels, plot_history

        self.fig.clear()
        h = learn.history.history
        n = len(metric_panels(h)) or 1
        axes = [self.fig.add_subplot(1, n, i + 1) for i in range(n)]
        plot_history(h, axes, title=f"epoch {learn.epoch}/{learn.epochs}")
        self.handle.update(self.fig)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    return get_ipython() is not None

"""A small training loop that grows by callbacks.

``Learner.fit`` runs the five steps of training (forward, loss, backward, step, zero_grad) for every
batch, and calls its callbacks at fixed events::

    before_fit
      before_epoch                       (once per epoch)
        before_batch / after_loss / before_step / after_batch   (training batches)
      after_epoch                        (after validation; learn.history has the epoch's numbers)
    after_fit

Everything else (printing, a live plot, early stopping, checkpoints, LR schedules) is a callback.
A callback stops training by raising :class:`CancelFit`, and skips the optimizer step of one batch by
raising :class:`CancelStep` in ``before_step`` (a gradient scaler for mixed precision does the step itself).
:func:`fit` is the one-line version.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from .device import get_device

Metric = Callable[[Tensor, Tensor], Tensor]


class CancelFit(Exception):
    """Raised by a callback to end training early (caught by :meth:`Learner.fit`)."""


class CancelStep(Exception):
    """Raised in ``before_step`` to skip ``opt.step()`` for this batch (the gradients are still zeroed)."""


def accuracy(preds: Tensor, y: Tensor) -> Tensor:
    """Fraction of rows of ``preds`` (logits or probabilities) whose arg-max equals the label ``y``."""
    return (preds.argmax(dim=1) == y).float().mean()


METRICS: dict[str, Metric] = {"accuracy": accuracy}


@dataclass
class History:
    """What :meth:`Learner.fit` returns: ``history.history`` maps a name (``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``, ``lr``, ``time``) to a list with one value per epoch, as in Keras.
    ``step_loss`` holds every training batch's loss; ``stop_reason`` says why training ended early, and
    ``diverged_at`` at which step (counted from 1) the loss became NaN/inf."""

    history: dict[str, list[float]] = field(default_factory=dict)
    step_loss: list[float] = field(default_factory=list)
    stop_reason: str | None = None
    diverged_at: int | None = None

    def log(self, **values: float) -> None:
        for k, v in values.items():
            self.history.setdefault(k, []).append(float(v))

    @property
    def epochs(self) -> int:
        return len(self.history.get("loss", []))

    def last(self, name: str) -> float:
        """The last logged value of ``name`` (e.g. ``history.last('val_accuracy')``)."""
        return self.history[name][-1]

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v)
        return f"History({self.epochs} epochs: {last})"


class Callback:
    """Base class: override any of the event methods; each gets the :class:`Learner`."""

    order: int = 0

    def before_fit(self, learn: Learner) -> None: ...
    def before_epoch(self, learn: Learner) -> None: ...
    def before_batch(self, learn: Learner) -> None: ...
    def after_loss(self, learn: Learner) -> None: ...
    def before_step(self, learn: Learner) -> None: ...
    def after_batch(self, learn: Learner) -> None: ...
    def after_epoch(self, learn: Learner) -> None: ...
    def after_fit(self, learn: Learner) -> None: ...


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Iterable[tuple[Tensor, Tensor]],
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    metrics: Sequence[str | Metric] = ("accuracy",),
    device: torch.device | None = None,
) -> dict[str, float]:
    """Average loss and metrics of ``model`` over ``data`` in eval mode: ``{'loss': .., 'accuracy': ..}``."""
    device = device or next(model.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    fns = _metric_fns(metrics)
    was_training = model.training
    model.eval()
    totals, n = dict.fromkeys(["loss", *fns], 0.0), 0
    for xb, yb in data:
        xb, yb = xb.to(device), yb.to(device)
        preds = model(xb)
        totals["loss"] += loss_fn(preds, yb).item() * len(yb)
        for name, fn in fns.items():
            totals[name] += fn(preds, yb).item() * len(yb)
        n += len(yb)
    model.train(was_training)
    return {k: v / max(n, 1) for k, v in totals.items()}


@torch.no_grad()
def predict(model: nn.Module, data: Iterable[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Model outputs and labels for every batch of ``data``, concatenated (on the CPU)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs, ys = [], []
    for xb, yb in data:
        outs.append(model(xb.to(device)).cpu())
        ys.append(yb)
    model.train(was_training)
    return torch.cat(outs), torch.cat(ys)


def _metric_fns(metrics: Sequence[str | Metric]) -> dict[str, Metric]:
    """``["accuracy", my_fn]`` -> ``{"accuracy": accuracy, "my_fn": my_fn}``."""
    fns = {}
    for m in metrics:
        if isinstance(m, str):
            fns[m] = METRICS[m]
        else:
            fns[m.__name__] = m
    return fns


class Learner:
    """Model + data + loss + optimizer, and :meth:`fit` to train them.

    ``opt`` is an optimizer class (default ``torch.optim.SGD``), called as ``opt(model.parameters(), lr=lr)``,
    or a ready optimizer instance.  ``metrics`` are names from ``METRICS`` or functions ``f(preds, y)``.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Iterable[tuple[Tensor, Tensor]],
        val_data: Iterable[tuple[Tensor, Tensor]] | None = None,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        opt: type[torch.optim.Optimizer] | torch.optim.Optimizer = torch.optim.SGD,
        lr: float = 0.1,
        metrics: Sequence[str | Metric] = ("accuracy",),
        callbacks: Sequence[Callback] = (),
        device: torch.device | None = None,
    ) -> None:
        self.device = device or get_device()
        self.model = model.to(self.device)
        self.train_data, self.val_data = train_data, val_data
        self.loss_fn = loss_fn or nn.CrossEntropyLoss()
        self.opt = opt if isinstance(opt, torch.optim.Optimizer) else opt(self.model.parameters(), lr=lr)
        self.lr = lr
        self.metrics = _metric_fns(metrics)
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        self.history = History()
        self.epoch = self.step = 0
        self.epochs = 0

    def _event(self, name: str) -> None:
        for cb in self.callbacks:
            getattr(cb, name)(self)

    def _train_epoch(self) -> None:
        self.model.train()
        totals, n = dict.fromkeys(["loss", *self.metrics], 0.0), 0
        if hasattr(self.train_data, "set_epoch"):  # same shuffle order for the same epoch, resumed or not
            self.train_data.set_epoch(self.epoch)
        for xb, yb in self.train_data:
            self.xb, self.yb = xb.to(self.device), yb.to(self.device)
            self._event("before_batch")
            self.preds = self.model(self.xb)                  # 1. forward
            self.loss = self.loss_fn(self.preds, self.yb)     # 2. loss
            loss = self.loss.item()
            if not math.isfinite(loss):
                self._diverged(loss)
            self._event("after_loss")
            self.loss.backward()                              # 3. backward
            try:
                self._event("before_step")
                self.opt.step()                               # 4. step
            except CancelStep:
                pass
            self.opt.zero_grad()                              # 5. zero the gradients
            self.step += 1
            self.history.step_loss.append(loss)
            k = len(self.yb)
            totals["loss"] += loss * k
            with torch.no_grad():
                for name, fn in self.metrics.items():
                    totals[name] += fn(self.preds, self.yb).item() * k
            n += k
            self._event("after_batch")
        self._epoch_train = {k: v / max(n, 1) for k, v in totals.items()}

    def _diverged(self, loss: float) -> None:
        self.history.diverged_at = self.step + 1  # counted from 1, like epochs: the first step is step 1
        lr = self.opt.param_groups[0]["lr"]
        raise CancelFit(
            f"Training stopped: the loss became {loss} at step {self.step + 1} (epoch {self.epoch + 1}). "
            f"The learning rate (lr={lr:g}) is probably too high: try a smaller one."
        )

    def resume(self, path: str | Path) -> None:
        """Load a checkpoint saved by :class:`Checkpoint` (model, optimizer, epoch, history) so that the
        next :meth:`fit` continues where that run stopped."""
        from .checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, self.model, self.opt)
        self.epoch = int(ckpt.get("epoch", 0))
        self.history.history = {k: list(v) for k, v in ckpt.get("history", {}).items()}

    def fit(self, epochs: int) -> History:
        """Train for ``epochs`` epochs (continuing from where a previous ``fit`` stopped); return the
        :class:`History`.  If the loss becomes NaN/inf, training stops with a message, and the model and
        kernel stay usable."""
        self.epochs = self.epoch + epochs
        try:
            self._event("before_fit")
            while self.epoch < self.epochs:
                start = time.perf_counter()
                self._event("before_epoch")
                lr = self.opt.param_groups[0]["lr"]
                self._train_epoch()
                logs = dict(self._epoch_train)
                if self.val_data is not None:
                    val = evaluate(self.model, self.val_data, self.loss_fn, list(self.metrics.values()),
                                   self.device)
                    logs.update({f"val_{k}": v for k, v in val.items()})
                self.history.log(**logs, lr=lr, time=time.perf_counter() - start)
                self.epoch += 1
                self._event("after_epoch")
        except CancelFit as e:
            self.history.stop_reason = str(e) or "stopped by a callback"
            print(self.history.stop_reason)
        finally:
            self._event("after_fit")
        return self.history


def fit(
    model: nn.Module,
    train_data: Iterable[tuple[Tensor, Tensor]],
    epochs: int = 10,
    lr: float = 0.1,
    val_data: Iterable[tuple[Tensor, Tensor]] | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    opt: type[torch.optim.Optimizer] | torch.optim.Optimizer = torch.optim.SGD,
    metrics: Sequence[str | Metric] = ("accuracy",),
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    plot: bool = False,
    device: torch.device | None = None,
) -> History:
    """Train ``model`` and return its :class:`History`, Keras style::

        history = fit(net, loaders.train, epochs=10, lr=0.1, val_data=loaders.val, plot=True)

    ``verbose`` prints one line per epoch; ``plot`` draws live loss/accuracy curves (:class:`LivePlot`).
    """
    from .plot import LivePlot

    cbs = list(callbacks)
    if verbose:
        cbs.append(PrintMetrics())
    if plot:
        cbs.append(LivePlot())
    learn = Learner(model, train_data, val_data, loss_fn, opt, lr, metrics, cbs, device)
    return learn.fit(epochs)


class PrintMetrics(Callback):
    """Print one line per epoch: ``epoch 3/10  loss 0.412  accuracy 0.851  val_loss ...  (4.1 s)``."""

    order = 10

    def after_epoch(self, learn: Learner) -> None:
        h = learn.history.history
        parts = [f"{k} {v[-1]:.4f}" for k, v in h.items() if k not in ("lr", "time")]
        print(f"epoch {learn.epoch}/{learn.epochs}  " + "  ".join(parts) + f"  ({h['time'][-1]:.1f} s)")


class ProgressBar(Callback):
    """A ``tqdm.auto`` progress bar over the training batches of each epoch."""

    def before_epoch(self, learn: Learner) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=len(learn.train_data), desc=f"epoch {learn.epoch + 1}", leave=False)

    def after_batch(self, learn: Learner) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{learn.history.step_loss[-1]:.3f}", refresh=False)

    def after_epoch(self, learn: Learner) -> None:
        self.bar.close()

    def after_fit(self, learn: Learner) -> None:
        if hasattr(self, "bar"):
            self.bar.close()


class EarlyStopping(Callback):
    """Stop when ``monitor`` (default ``val_loss``) has not improved for ``patience`` epochs; with
    ``restore_best`` put back the weights of the best epoch."""

    order = 20

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 restore_best: bool = True) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = restore_best
        self.mode = "max" if "acc" in monitor else "min"

    def before_fit(self, learn: Learner) -> None:
        self.best, self.best_epoch, self.best_state = None, 0, None

    def after_epoch(self, learn: Learner) -> None:
        value = learn.history.last(self.monitor)
        better = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if better:
            self.best, self.best_epoch = value, learn.epoch
            if self.restore_best:
                self.best_state = {k: v.detach().clone() for k, v in learn.model.state_dict().items()}
        elif learn.epoch - self.best_epoch >= self.patience:
            raise CancelFit(
                f"Early stopping after epoch {learn.epoch}: {self.monitor} has not improved for "
                f"{self.patience} epochs (best {self.best:.4f} at epoch {self.best_epoch})."
            )

    def after_fit(self, learn: Learner) -> None:
        if self.restore_best and self.best_state is not None and self.best_epoch != learn.epoch:
            learn.model.load_state_dict(self.best_state)
            print(f"Restored the weights of epoch {self.best_epoch}.")


class Checkpoint(Callback):
    """Save a checkpoint (model, optimizer, epoch, history) to ``path`` after each epoch, or only when
    ``monitor`` improves if ``save_best_only``.  Load it back with :func:`d2lmini.load_checkpoint`."""

    order = 30

    def __init__(self, path: str | Path, monitor: str = "val_loss", save_best_only: bool = False) -> None:
        self.path, self.monitor, self.save_best_only = Path(path), monitor, save_best_only
        self.mode = "max" if "acc" in monitor else "min"
        self.best: float | None = None

    def after_epoch(self, learn: Learner) -> None:
        from .checkpoint import save_checkpoint

        if self.save_best_only:
            value = learn.history.last(self.monitor)
            if self.best is not None and (value >= self.best if self.mode == "min" else value <= self.best):
                return
            self.best = value
        save_checkpoint(self.path, learn.model, learn.opt, epoch=learn.epoch, history=learn.history.history)


class LRScheduler(Callback):
    """Step a ``torch.optim.lr_scheduler`` built by ``make(optimizer)`` after every batch
    (``every='batch'``, e.g. OneCycleLR) or every epoch (``every='epoch'``, e.g. StepLR).
    ``ReduceLROnPlateau`` is stepped with the epoch's ``monitor`` value."""

    def __init__(self, make: Callable[[torch.optim.Optimizer], object], every: str = "epoch",
                 monitor: str = "val_loss") -> None:
        if every not in ("batch", "epoch"):
            raise ValueError("every must be 'batch' or 'epoch'")
        self.make, self.every, self.monitor = make, every, monitor

    def before_fit(self, learn: Learner) -> None:
        self.scheduler = self.make(learn.opt)
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

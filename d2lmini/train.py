"""The training loop: :class:`Learner` and its one-line version :func:`fit`, plus :func:`evaluate`,
:func:`predict`, the metrics and :func:`eval_mode`.

``Learner.fit`` runs the five steps of training (forward, loss, backward, step, zero_grad) for every
batch and calls its callbacks at fixed events (listed in :mod:`d2lmini.callbacks`).  Everything else
(printing, a live plot, early stopping, checkpoints, LR schedules) is a callback.

Epochs and steps are counted from 1: ``learn.epoch`` is the number of the epoch running in every event
from ``before_epoch`` to ``after_epoch`` (1 in the first epoch); in ``before_fit`` and ``after_fit`` it is
the number of epochs completed.  ``learn.step`` counts the training batches whose loss was computed,
over all fits (the divergence message and ``history.diverged_at`` use the same count).

On the CPU each batch's loss is read at once (free there).  On a GPU the loss and the metrics are summed
on the device, so the loop waits for the GPU once per epoch and every ``check_every`` steps (a NaN/inf
check), instead of once per number read; a :class:`~d2lmini.TensorLoader` is moved to the GPU once.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .callbacks import EVENTS, Callback, CancelEpoch, CancelFit, CancelStep, PrintMetrics, warn_unknown_events
from .data import Loaders, TensorLoader
from .device import get_device
from .history import History
from .messages import msg, wrap

Metric = Callable[[Tensor, Tensor], Tensor]
Batches = Iterable[tuple[Tensor, Tensor]]


def accuracy(preds: Tensor, y: Tensor) -> Tensor:
    """Fraction of rows of ``preds`` (logits or probabilities) whose arg-max equals the label ``y``."""
    return (preds.argmax(dim=1) == y).float().mean()


METRICS: dict[str, Metric] = {"accuracy": accuracy}


class Learner:
    """Model + data + loss + optimizer, and :meth:`fit` to train them.

    ``opt`` is an optimizer class or function (default ``torch.optim.SGD``), called as
    ``opt(model.parameters(), lr=lr)``, or a ready optimizer.  ``metrics`` are names from ``METRICS``,
    functions ``f(preds, y) -> tensor``, or a dict ``{name: function}``.  ``check_every``: how often (in
    steps) the loss is checked for NaN/inf; default every step on the CPU and every 50 on a GPU.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Batches,
        val_data: Batches | None = None,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        opt: Callable[..., torch.optim.Optimizer] | torch.optim.Optimizer = torch.optim.SGD,
        lr: float = 0.1,
        metrics: Sequence[str | Metric] | Mapping[str, Metric] = ("accuracy",),
        callbacks: Sequence[Callback] = (),
        device: torch.device | str | None = None,
        check_every: int | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else get_device()
        self.model = model.to(self.device)
        self.train_data, self.val_data = train_data, val_data
        self.loss_fn = loss_fn or nn.CrossEntropyLoss()
        self.lr = _check_lr(lr)
        self.opt = opt if isinstance(opt, torch.optim.Optimizer) else opt(self.model.parameters(), lr=lr)
        self.metrics = metric_fns(metrics)
        self.callbacks = sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))
        for cb in self.callbacks:
            warn_unknown_events(cb)
        default_every = 1 if self.device.type == "cpu" else 50
        self.check_every = _positive_int("check_every", default_every if check_every is None else check_every)
        self.history = History()
        self.epoch = self.step = self.epochs = 0
        self.scheduler: Any = None  # set by an LRScheduler callback
        self.scaler: Any = None  # a GradScaler, if a callback uses one
        self.last_loss: Tensor | float | None = None  # the last batch's loss (a tensor on a GPU)
        self._resumed: dict[str, Any] | None = None

    # ------------------------------------------------------------------------------------- the loop
    def fit(self, epochs: int) -> History:
        """Train ``epochs`` more epochs and return the :class:`History`.  If the loss becomes NaN/inf,
        training stops with a message, and the model and kernel stay usable."""
        self.epochs = self.epoch + _positive_int("epochs", epochs)
        self._prepare()
        try:
            self._event("before_fit")
            self._restore_resumed()
            while self.epoch < self.epochs:
                self._one_epoch()
        except CancelFit as e:
            self.history.stop_reason = str(e) or msg("stopped_by_callback")
            print(wrap(self.history.stop_reason))
        finally:
            self._event("after_fit")
        return self.history

    def _one_epoch(self) -> None:
        start, self.epoch = time.perf_counter(), self.epoch + 1
        lr = self.opt.param_groups[0]["lr"]
        stats = _Stats(["loss", *self.metrics], self.check_every > 1, self.device, lr)
        try:
            try:
                self._event("before_epoch")
                stats.lr = self.opt.param_groups[0]["lr"]
                self.model.train()
                if hasattr(self.train_data, "set_epoch"):  # the same batches for epoch e, resumed or not
                    self.train_data.set_epoch(self.epoch - 1)
                for xb, yb in self.train_data:
                    self._one_batch(xb, yb, stats)
            except CancelEpoch:                             # a callback skipped the rest of the epoch
                stats.cancelled = True
            logs = self._epoch_means(stats)                 # waits for the GPU once per epoch
            if self.val_data is not None:
                logs.update(self._validate())
            self.history.log(**logs, lr=stats.lr, time=time.perf_counter() - start)
        except BaseException:
            self.epoch -= 1                                 # an epoch that did not end is not counted
            raise
        self._event("after_epoch")

    def _one_batch(self, xb: Tensor, yb: Tensor, stats: _Stats) -> None:
        self.xb, self.yb = _to(xb, self.device), _to(yb, self.device)
        stats.batches += 1
        try:
            self._event("before_batch")
            self.preds = _forward(self.model, self.xb)      # 1. forward
            self.loss = self.loss_fn(self.preds, self.yb)   # 2. loss
            self._record(stats)                             #    summed; NaN/inf checked
            self._event("after_loss")
            self.loss.backward()                            # 3. backward
            self._event("before_step")
            self.opt.step()                                 # 4. step
        except CancelStep:                                  # a callback skipped the rest of this batch
            pass
        self.opt.zero_grad()                                # 5. zero the gradients
        try:
            self._event("after_batch")
        except CancelStep:                                  # nothing left to skip
            pass

    # ------------------------------------------------------------------------------- loop helpers
    def _event(self, name: str) -> None:
        stop = None
        for handler in self._handlers[name]:
            try:
                handler(self)
            except CancelFit as e:
                if name != "after_epoch":
                    raise
                stop = stop or e  # every callback sees the finished epoch (saves it, logs it) first
        if stop is not None:
            raise stop

    def _prepare(self) -> None:
        """Sort the callbacks, look up their event methods, check the data, move a TensorLoader to a GPU."""
        self.callbacks.sort(key=lambda cb: getattr(cb, "order", 0))
        for cb in self.callbacks:  # also those added to learn.callbacks after __init__
            warn_unknown_events(cb)
        self._handlers = {e: [getattr(cb, e) for cb in self.callbacks if hasattr(cb, e)] for e in EVENTS}
        for name, data in (("train_data", self.train_data), ("val_data", self.val_data)):
            _check_batches(name, data)
            if data is not None and hasattr(data, "__len__") and len(data) == 0:
                raise ValueError(f"{name} has no batches (len 0): give it at least one item.")
            if isinstance(data, TensorLoader) and self.device.type != "cpu":
                data.to(self.device)

    def _record(self, stats: _Stats) -> None:
        """Add this batch's loss and metrics to the epoch's sums; count the step; check for NaN/inf."""
        k = len(self.yb)
        if self.loss.numel() != 1:
            raise ValueError(
                f"loss_fn gave {self.loss.numel()} values (shape {tuple(self.loss.shape)}) for one batch, "
                f"but training needs one number: use the default reduction='mean', or end with .mean()")
        if stats.lazy:  # a GPU: nothing is read back here
            self.last_loss = self.loss.detach()
            stats.pending.append(self.last_loss)
            stats.add("loss", self.last_loss, k)
        else:  # the CPU: reading the loss costs nothing
            self.last_loss = value = self.loss.item()
            if not math.isfinite(value):
                self._diverged(value, self.step + 1)
            self.history.step_loss.append(value)
            stats.sums["loss"] += value * k
        with torch.no_grad():
            for name, fn in self.metrics.items():
                stats.add(name, fn(self.preds, self.yb), k)
        stats.n += k
        self.step += 1
        if stats.lazy and self.step % self.check_every == 0:
            self._read_pending(stats)

    def _read_pending(self, stats: _Stats) -> None:
        """Read the step losses not yet read (one wait for the GPU) into ``history.step_loss``."""
        if not stats.pending:
            return
        values, stats.pending = torch.stack(stats.pending).tolist(), []
        first = self.step - len(values) + 1
        for i, v in enumerate(values):
            if not math.isfinite(v):
                self.history.step_loss.extend(values[:i])
                self._diverged(v, first + i)
        self.history.step_loss.extend(values)

    def _epoch_means(self, stats: _Stats) -> dict[str, float]:
        if stats.lazy:
            self._read_pending(stats)
        if stats.batches == 0 and not stats.cancelled:
            raise ValueError(
                f"train_data gave no batches in epoch {self.epoch}. An iterator or generator can be used "
                f"only once: pass a loader that can be iterated every epoch (d2l.TensorLoader, DataLoader).")
        return stats.means()

    def _validate(self) -> dict[str, float]:
        self._event("before_validate")
        self.val_results = evaluate(self.model, self.val_data, self.loss_fn, self.metrics, self.device)
        self._event("after_validate")
        return {f"val_{k}": v for k, v in self.val_results.items()}

    def _diverged(self, loss: float, step: int) -> None:
        self.history.diverged_at = step
        lr = float(self.opt.param_groups[0]["lr"])
        raise CancelFit(msg("diverged", loss=loss, step=step, epoch=self.epoch, lr=lr))

    # ------------------------------------------------------------------------- saving and resuming
    def save(self, path: str | Path) -> Path:
        """Save everything :meth:`resume` restores: model, optimizer, scheduler, grad scaler, random
        states, epoch, step, history and the data order (see :func:`d2lmini.save_checkpoint`)."""
        from .checkpoint import save_checkpoint

        data_state = self.train_data.state_dict() if hasattr(self.train_data, "state_dict") else None
        return save_checkpoint(path, self.model, self.opt, scheduler=self.scheduler,
                               scaler=self._grad_scaler(), epoch=self.epoch, step=self.step,
                               history=self.history.history, step_loss=self.history.step_loss,
                               data=data_state)

    def resume(self, path: str | Path) -> dict[str, Any]:
        """Load a checkpoint saved by :meth:`save` (or the :class:`~d2lmini.Checkpoint` callback) so that
        the next :meth:`fit` continues exactly where that run stopped: the model and optimizer now, and
        the scheduler, grad scaler, random-number states and data order when ``fit`` starts (after the
        callbacks' ``before_fit`` has built them).  Returns the checkpoint dict."""
        from .checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, self.model, self.opt)
        self.epoch = int(ckpt.get("epoch", 0))
        self.step = int(ckpt.get("step", len(ckpt.get("step_loss", []))))
        self.history.history = {k: list(v) for k, v in ckpt.get("history", {}).items()}
        self.history.step_loss = list(ckpt.get("step_loss", []))
        self._resumed = ckpt
        return ckpt

    def _restore_resumed(self) -> None:
        from .checkpoint import restore_rng_state

        ckpt, self._resumed = self._resumed, None
        if ckpt is None:
            return
        for key, owner in (("scheduler", self.scheduler), ("scaler", self._grad_scaler())):
            if key in ckpt and owner is None:
                raise ValueError(f"the checkpoint holds a {key}'s state but this Learner has no {key}: add "
                                 f"the same callback (LRScheduler / MixedPrecision) as the run that saved it")
            if key in ckpt:
                owner.load_state_dict(ckpt[key])
        if "optimizer" in ckpt:  # again: building a scheduler (OneCycleLR) may have reset the LR
            self.opt.load_state_dict(ckpt["optimizer"])
        if ckpt.get("data") is not None and hasattr(self.train_data, "load_state_dict"):
            self.train_data.load_state_dict(ckpt["data"])
        restore_rng_state(ckpt)

    def _grad_scaler(self) -> Any:
        """``learn.scaler``, else the ``scaler`` of a callback (e.g. MixedPrecision), else None."""
        for owner in (self, *self.callbacks):
            scaler = getattr(owner, "scaler", None)
            if scaler is not None and hasattr(scaler, "state_dict"):
                return scaler
        return None


class _Stats:
    """One pass's sums of the loss and metrics, weighted by batch size.  ``lazy`` (on a GPU): float64
    tensors on the device (float32 on Apple's MPS, which has no float64) and the step losses not yet
    read (``pending``); else Python floats."""

    def __init__(self, names: Sequence[str], lazy: bool, device: torch.device, lr: float = 0.0) -> None:
        self.sums: dict[str, Any] = dict.fromkeys(names, 0.0)
        self.lazy, self.lr, self.n, self.batches, self.cancelled = lazy, lr, 0, 0, False
        self.device, self.dtype = device, torch.float32 if device.type == "mps" else torch.float64
        self.pending: list[Tensor] = []

    def add(self, name: str, value: Tensor | float, k: int) -> None:
        if not isinstance(value, Tensor):  # a metric may return a Python number (e.g. from scikit-learn)
            value = torch.tensor(float(value))
        if value.numel() != 1:
            raise ValueError(f"{name!r} gave {value.numel()} values (shape {tuple(value.shape)}) for one "
                             f"batch; the loss and each metric must give one number, e.g. a mean")
        if self.lazy:
            self.sums[name] += value.detach().to(self.device, self.dtype) * k
        else:
            self.sums[name] += value.item() * k

    def means(self) -> dict[str, float]:
        if self.n == 0:
            return dict.fromkeys(self.sums, math.nan)
        values = torch.stack(list(self.sums.values())).tolist() if self.lazy else list(self.sums.values())
        return {k: v / self.n for k, v in zip(self.sums, values, strict=True)}


def fit(
    model: nn.Module,
    train_data: Batches,
    epochs: int = 10,
    lr: float = 0.1,
    val_data: Batches | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    opt: Callable[..., torch.optim.Optimizer] | torch.optim.Optimizer = torch.optim.SGD,
    metrics: Sequence[str | Metric] | Mapping[str, Metric] = ("accuracy",),
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    plot: bool = False,
    device: torch.device | str | None = None,
) -> History:
    """Train ``model`` and return its :class:`History`, Keras style::

        history = fit(net, loaders.train, epochs=10, lr=0.1, val_data=loaders.val, plot=True)

    ``verbose`` prints a table, one row per epoch (:class:`PrintMetrics`); ``plot`` draws live
    loss/accuracy curves (:class:`LivePlot`).
    """
    from .callbacks import LivePlot

    cbs = [*callbacks, *([PrintMetrics()] if verbose else []), *([LivePlot()] if plot else [])]
    return Learner(model, train_data, val_data, loss_fn, opt, lr, metrics, cbs, device).fit(epochs)


# ------------------------------------------------------------------------------------ evaluation
@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` runs the block with every submodule in eval mode (dropout off,
    batch-norm running statistics used and left alone) and afterwards puts back each submodule's own
    mode, even after an error (a frozen part kept in eval mode stays there)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Batches,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    metrics: Sequence[str | Metric] | Mapping[str, Metric] = ("accuracy",),
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Average loss and metrics of ``model`` over ``data`` in eval mode: ``{'loss': .., 'accuracy': ..}``."""
    device = torch.device(device) if device is not None else _model_device(model)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    fns = metric_fns(metrics)
    _check_batches("data", data)
    stats = _Stats(["loss", *fns], device.type != "cpu", device)
    with eval_mode(model):
        for xb, yb in data:
            xb, yb = _to(xb, device), _to(yb, device)
            preds = _forward(model, xb)
            stats.add("loss", loss_fn(preds, yb), len(yb))
            for name, fn in fns.items():
                stats.add(name, fn(preds, yb), len(yb))
            stats.n += len(yb)
    if stats.n == 0:
        raise ValueError("evaluate: the data gave no batches (an empty loader, or an iterator used up).")
    return stats.means()


@torch.no_grad()
def predict(model: nn.Module, data: Batches) -> tuple[Tensor, Tensor]:
    """Model outputs and labels for every batch of ``data`` in eval mode, concatenated, on the CPU."""
    device = _model_device(model)
    _check_batches("data", data)
    outs, ys = [], []
    with eval_mode(model):
        for xb, yb in data:
            outs.append(_forward(model, _to(xb, device)))
            ys.append(yb)
    if not outs:
        raise ValueError("predict: the data gave no batches (an empty loader, or an iterator used up).")
    return torch.cat(outs).cpu(), torch.cat([y.cpu() for y in ys])


def metric_fns(metrics: Sequence[str | Metric] | Mapping[str, Metric]) -> dict[str, Metric]:
    """``["accuracy", my_fn, lambda p, y: ...]`` -> ``{"accuracy": .., "my_fn": .., "metric3": ..}``.

    A function is named by its ``name`` attribute, else its ``__name__``; a ``functools.partial`` by its
    function and keywords (``topk_k5``); a lambda by its position (``metric1``, ``metric2``, ...).
    Pass a dict ``{name: function}`` to choose the names yourself."""
    if isinstance(metrics, str):
        metrics = [metrics]
    items = metrics.items() if isinstance(metrics, Mapping) else [(_name(m, i + 1), m) for i, m in
                                                                   enumerate(metrics)]
    fns: dict[str, Metric] = {}
    for name, m in items:
        if isinstance(m, str):
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r}: the known metric names are {', '.join(METRICS)}; "
                                 f"or pass a function f(preds, y) -> tensor")
            m = METRICS[m]
        elif not callable(m):
            raise ValueError(f"a metric must be a name ({', '.join(METRICS)}) or a function f(preds, y), "
                             f"got {m!r}")
        if name in fns or name == "loss":
            raise ValueError(f"two values would be logged as {name!r}: pass a dict {{name: function}} to "
                             f"give each metric its own name")
        fns[name] = m
    return fns


def _name(m: str | Metric, position: int) -> str:
    if isinstance(m, str):
        return m
    if isinstance(m, functools.partial):
        base = _name(m.func, position)
        return "_".join([base, *(f"{k}{v}" for k, v in m.keywords.items())])
    name = getattr(m, "name", None) or getattr(m, "__name__", None) or type(m).__name__
    return f"metric{position}" if name == "<lambda>" else str(name)


def _check_batches(name: str, data: Any) -> None:
    """Refuse the two look-alikes of a loader a newcomer passes: all three loaders, or a pair of tensors."""
    if isinstance(data, Loaders):
        raise ValueError(f"{name} got all three loaders (train, val, test): pass one of them, e.g. "
                         f"fit(net, loaders.train, val_data=loaders.val)")
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        raise ValueError(f"{name} got a pair of tensors (X, y); serve them in mini-batches: "
                         f"d2l.TensorLoader(X, y, batch_size=256)")


def _forward(model: nn.Module, xb: Tensor) -> Tensor:
    """``model(xb)``, with a clear message when the batch holds raw integers (e.g. uint8 pixels)."""
    try:
        return model(xb)
    except RuntimeError as e:
        if xb.dtype == torch.uint8 or (not xb.is_floating_point() and "type" in str(e)):
            raise ValueError(
                f"the model got a batch of dtype {xb.dtype} (shape {tuple(xb.shape)}), but its layers "
                f"compute in floating point: convert it first, e.g. xb.float() / 255 for uint8 pixels "
                f"(d2l.TensorLoader does this for uint8 images)") from e
        raise


def _to(t: Tensor, device: torch.device) -> Tensor:
    """``t`` on ``device``: without blocking when copying to an accelerator; a copy back to the CPU
    blocks, since reading a tensor whose non-blocking copy has not finished gives wrong numbers."""
    return t.to(device, non_blocking=device.type != "cpu")


def _model_device(model: nn.Module) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        hint = " (a whole number: epochs are not split)" if isinstance(value, float) else ""
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}{hint}")
    return int(value)


def _check_lr(lr: Any) -> float:
    try:
        ok = math.isfinite(float(lr)) and float(lr) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"lr must be a finite number >= 0 (e.g. 0.1), got {lr!r}")
    return lr

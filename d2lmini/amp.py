"""Mixed precision (混合精度) as a :class:`~d2lmini.train.Learner` callback.

``MixedPrecision`` runs the forward pass and the loss under ``torch.autocast``: matrix products and
convolutions run in a 16-bit type while the weights (and the optimizer's state) stay in float32.

* The default 16-bit type is autocast's own default for the device type,
  ``torch.get_autocast_dtype(device_type)``: float16 for ``"cuda"``, bfloat16 for ``"cpu"``.
* With float16 a ``torch.amp.GradScaler`` is used: the (float32) loss is multiplied by a large scale
  before ``backward`` so that small gradients do not underflow to zero in float16; the scaler un-scales
  the gradients, skips the step if any of them is inf/NaN, and adapts the scale.  bfloat16 has
  float32's range, so it needs no scaler.
* ``max_grad_norm`` clips the gradients' total norm; with a scaler it un-scales them first
  (``scaler.unscale_(opt)``), so the threshold applies to the true gradients, not the scaled ones.

How it hooks into the Learner's five steps::

    before_batch   enter autocast
    (forward, loss run in 16 bits)
    after_loss     leave autocast; with a scaler, learn.loss = scaler.scale(learn.loss)
    (backward on the scaled loss)
    before_step    with a scaler: unscale_, clip, scaler.step(opt), scaler.update(), raise CancelStep;
                   without: clip (if asked), and the Learner steps

The scaler is ``self.scaler``, which :meth:`Learner.save` / :meth:`Learner.resume` save and restore.
"""

from __future__ import annotations

from typing import Any

import torch

from .callbacks import Callback, CancelStep
from .train import Learner


def _default_dtype(device_type: str) -> torch.dtype:
    """The 16-bit type ``torch.autocast(device_type)`` uses when given none: float16 on ``"cuda"``,
    bfloat16 on ``"cpu"`` (PyTorch's own defaults, read from ``torch.get_autocast_dtype``)."""
    try:
        return torch.get_autocast_dtype(device_type)
    except (RuntimeError, AttributeError):  # an older torch, or a device type autocast does not know
        return torch.float16 if device_type == "cuda" else torch.bfloat16


class MixedPrecision(Callback):
    """Train with ``torch.autocast`` (and a ``GradScaler`` for float16).

    ``dtype``: the 16-bit type autocast uses; default :func:`_default_dtype` of the Learner's device.
    ``use_scaler``: default True exactly when ``dtype`` is float16 (bfloat16 has float32's range).
    ``init_scale``, ``growth_interval``: the scaler's first scale factor and how many steps without an
    inf/NaN gradient it waits before doubling the scale (PyTorch's defaults: ``2**16`` and 2000).
    ``max_grad_norm``: clip the total gradient norm to this value (after un-scaling).
    After ``fit``, ``self.scaler`` (or None) holds the scaler, ``self.skipped_steps`` counts the steps it
    skipped because a gradient was inf/NaN, and ``self.scales`` lists the scale used at every step.
    """

    order = -10  # before other callbacks, so they see the batch inside autocast

    def __init__(self, dtype: torch.dtype | None = None, use_scaler: bool | None = None,
                 init_scale: float = 2.0**16, growth_interval: int = 2000,
                 max_grad_norm: float | None = None) -> None:
        if dtype is not None and dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"MixedPrecision needs dtype torch.float16 or torch.bfloat16, got {dtype}.")
        self.dtype, self.use_scaler = dtype, use_scaler
        self.init_scale, self.growth_interval, self.max_grad_norm = init_scale, growth_interval, max_grad_norm
        self.scaler: torch.amp.GradScaler | None = None
        self.skipped_steps = 0
        self.scales: list[float] = []
        self._autocast: Any = None

    def before_fit(self, learn: Learner) -> None:
        self.device_type = learn.device.type
        if self.dtype is None:
            self.dtype = _default_dtype(self.device_type)
        use_scaler = self.dtype == torch.float16 if self.use_scaler is None else self.use_scaler
        if use_scaler and self.scaler is None:
            self.scaler = torch.amp.GradScaler(self.device_type, init_scale=self.init_scale,
                                               growth_interval=self.growth_interval)

    def before_batch(self, learn: Learner) -> None:
        self._autocast = torch.autocast(self.device_type, dtype=self.dtype)
        self._autocast.__enter__()

    def _leave_autocast(self) -> None:
        if self._autocast is not None:
            self._autocast.__exit__(None, None, None)
            self._autocast = None

    def after_loss(self, learn: Learner) -> None:
        # backward runs outside autocast (it uses the forward's dtypes anyway)
        self._leave_autocast()
        if self.scaler is not None:  # float32 loss * scale, still float32
            learn.loss = self.scaler.scale(learn.loss)

    def _clip(self, learn: Learner) -> None:
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(learn.model.parameters(), self.max_grad_norm)

    def before_step(self, learn: Learner) -> None:
        if self.scaler is None:
            self._clip(learn)
            return
        scale = self.scaler.get_scale()
        self.scales.append(scale)
        if self.max_grad_norm is not None:
            # the true gradients, so that the threshold means what it says
            self.scaler.unscale_(learn.opt)
            self._clip(learn)
        # un-scales (unless done above); skips the step on an inf/NaN
        self.scaler.step(learn.opt)
        # halves the scale after a skip, doubles it after many good steps
        self.scaler.update()
        if self.scaler.get_scale() < scale:
            self.skipped_steps += 1
        raise CancelStep  # done: the Learner just zeroes the gradients

    def after_fit(self, learn: Learner) -> None:
        self._leave_autocast()  # e.g. training stopped (CancelFit) between forward and after_loss

    def __repr__(self) -> str:
        dtype = str(self.dtype).replace("torch.", "") if self.dtype is not None else "default"
        return f"MixedPrecision(dtype={dtype}, scaler={'on' if self.scaler else 'off'})"

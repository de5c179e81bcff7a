"""Mixed precision (混合精度) as a :class:`~d2lmini.train.Learner` callback.

``MixedPrecision`` runs the forward pass and the loss under ``torch.autocast``: matrix products and
convolutions run in a 16-bit type while the weights (and the optimizer's state) stay in float32.

* On a CUDA GPU the default is float16 with a ``torch.amp.GradScaler``: the loss is multiplied by a large
  scale before ``backward`` so that small gradients do not underflow to zero in float16; the scaler
  un-scales the gradients, skips the step if any of them is inf/NaN, and adapts the scale.
* Elsewhere (the CPU) the default is bfloat16, which has float32's range, so no scaler is needed.

How it hooks into the Learner's five steps::

    before_batch   enter autocast
    (forward, loss run in 16 bits)
    after_loss     leave autocast; with a scaler, learn.loss = scaler.scale(learn.loss)
    (backward on the scaled loss)
    before_step    with a scaler: scaler.step(opt); scaler.update(); raise CancelStep
"""

from __future__ import annotations

from typing import Any

import torch

from .train import Callback, CancelStep, Learner


class MixedPrecision(Callback):
    """Train with ``torch.autocast`` (and a ``GradScaler`` for float16).

    ``dtype``: the 16-bit type autocast uses; default float16 on CUDA and bfloat16 on other devices.
    ``use_scaler``: default True exactly when ``dtype`` is float16 (bfloat16 has float32's range).
    ``init_scale``: the scaler's first scale factor (``2**16`` as in PyTorch).
    After ``fit``, ``self.scaler`` (or None) holds the scaler and ``self.skipped_steps`` counts the steps it
    skipped because a gradient was inf/NaN.
    """

    order = -10  # before other callbacks, so they see the batch inside autocast

    def __init__(self, dtype: torch.dtype | None = None, use_scaler: bool | None = None,
                 init_scale: float = 2.0**16) -> None:
        if dtype is not None and dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"MixedPrecision needs dtype torch.float16 or torch.bfloat16, got {dtype}.")
        self.dtype, self.use_scaler, self.init_scale = dtype, use_scaler, init_scale
        self.scaler: torch.amp.GradScaler | None = None
        self.skipped_steps = 0
        self._autocast: Any = None

    def before_fit(self, learn: Learner) -> None:
        self.device_type = learn.device.type
        if self.dtype is None:
            self.dtype = torch.float16 if self.device_type == "cuda" else torch.bfloat16
        use_scaler = self.dtype == torch.float16 if self.use_scaler is None else self.use_scaler
        if use_scaler and self.scaler is None:
            self.scaler = torch.amp.GradScaler(self.device_type, init_scale=self.init_scale)

    def before_batch(self, learn: Learner) -> None:
        self._autocast = torch.autocast(self.device_type, dtype=self.dtype)
        self._autocast.__enter__()

    def _leave_autocast(self) -> None:
        if self._autocast is not None:
            self._autocast.__exit__(None, None, None)
            self._autocast = None

    def after_loss(self, learn: Learner) -> None:
        self._leave_autocast()  # backward runs outside autocast (it uses the forward's dtypes anyway)
        if self.scaler is not None:
            learn.loss = self.scaler.scale(learn.loss)

    def before_step(self, learn: Learner) -> None:
        if self.scaler is None:
            return
        scale = self.scaler.get_scale()
        self.scaler.step(learn.opt)  # un-scales the gradients; skips the step if one is inf/NaN
        self.scaler.update()  # halves the scale after a skipped step, grows it after many good ones
        if self.scaler.get_scale() < scale:
            self.skipped_steps += 1
        raise CancelStep  # the step is done: the Learner only zeroes the gradients

    def after_fit(self, learn: Learner) -> None:
        self._leave_autocast()  # e.g. training stopped (CancelFit) between forward and after_loss

    def __repr__(self) -> str:
        return f"MixedPrecision(dtype={self.dtype}, scaler={'on' if self.scaler else 'off'})"

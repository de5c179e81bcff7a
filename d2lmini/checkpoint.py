"""Saving and loading checkpoints: plain dicts of ``state_dict`` s, loaded with ``weights_only=True``.

The book never pickles whole models: a pickle can run any code when it is loaded, and it ties the file
to the exact class and module layout that saved it.  A checkpoint here is a dict of tensors and numbers.

Two uses, two calls:

* **load weights** (inference, fine-tuning): ``load_checkpoint(path, model)`` restores the model (and
  what else is passed) and leaves the random-number generators alone;
* **resume training**: :meth:`d2lmini.Learner.resume` restores everything, random states included, so
  the resumed run takes exactly the steps the uninterrupted one would have.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError
from .messages import msg

_RESERVED = ("model", "optimizer", "scheduler", "scaler", "rng_state", "cuda_rng_state", "mps_rng_state",
             "python_rng_state")


def rng_state() -> dict[str, Any]:
    """The random-number states a training run draws from: PyTorch's CPU generator, every CUDA
    device's (when CUDA is available), Apple's MPS (when available) and Python's ``random``."""
    state: dict[str, Any] = {"rng_state": torch.get_rng_state(), "python_rng_state": random.getstate()}
    if torch.cuda.is_available():
        state["cuda_rng_state"] = torch.cuda.get_rng_state_all()
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        state["mps_rng_state"] = torch.mps.get_rng_state()
    return state


def restore_rng_state(ckpt: dict[str, Any]) -> None:
    """Put back the random-number states saved by :func:`rng_state` (those this machine has)."""
    if "rng_state" in ckpt:
        torch.set_rng_state(ckpt["rng_state"])
    if "python_rng_state" in ckpt:
        version, internal, gauss = ckpt["python_rng_state"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda_rng_state" in ckpt and torch.cuda.is_available():
        states = list(ckpt["cuda_rng_state"])[: torch.cuda.device_count()]
        for i, s in enumerate(states):
            torch.cuda.set_rng_state(s, i)
    mps = getattr(torch.backends, "mps", None)
    if "mps_rng_state" in ckpt and mps is not None and mps.is_available():
        torch.mps.set_rng_state(ckpt["mps_rng_state"])


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    **extra: Any,
) -> Path:
    """Save ``{'model', 'optimizer', 'scheduler', 'scaler' (a GradScaler), the random states, **extra}`` to
    ``path`` (``extra``: epoch, step, history, metrics … plain numbers, strings, lists and dicts).
    Written to a temporary file first and renamed, so an interrupted save leaves the old file intact."""
    clash = [k for k in extra if k in _RESERVED]
    if clash:
        raise ValueError(f"{', '.join(clash)}: reserved checkpoint key(s); pass them as arguments")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt: dict[str, Any] = {"model": model.state_dict(), **rng_state(), **extra}
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is not None:
            ckpt[key] = obj.state_dict()
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    restore_rng: bool = False,
) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` and restore what is given (model,
    optimizer, scheduler, grad scaler).  Returns the whole dict (epoch, history, …).

    The random-number generators are left alone unless ``restore_rng=True`` (loading weights for
    inference must not reseed the notebook); :meth:`d2lmini.Learner.resume` restores them to continue
    a training run exactly.

    Raises :class:`CheckpointError` with one clear message if the file is missing, truncated, not a
    weights-only checkpoint (e.g. a pickle of arbitrary objects), or saved for a different architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(msg("ckpt_missing", path=path))
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else "")
        why = why.split("error: ")[-1].split(". Please")[0]  # the reason, not torch's advice to allow it
        raise CheckpointError(msg("ckpt_unsafe", path=path, why=why[:160])) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        error = f"{type(e).__name__}: {str(e)[:120]}".replace("\n", " ")
        raise CheckpointError(msg("ckpt_corrupt", path=path, error=error)) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(msg("ckpt_no_model", path=path))
    if model is not None:
        _load_state(model, ckpt["model"], path)
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is not None and key in ckpt:
            obj.load_state_dict(ckpt[key])
    if restore_rng:
        restore_rng_state(ckpt)
    return ckpt


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
             for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        lines = [msg("ckpt_arch", path=path, model=type(model).__name__)]
        if wrong:
            lines.append(msg("ckpt_shapes", items="; ".join(wrong[:3]) + (" …" if len(wrong) > 3 else "")))
        if missing:
            lines.append(msg("ckpt_missing_keys", items=", ".join(missing[:5])))
        if unexpected:
            lines.append(msg("ckpt_unexpected_keys", items=", ".join(unexpected[:5])))
        lines.append(msg("ckpt_arch_fix"))
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state)

"""Saving and loading checkpoints: plain dicts of ``state_dict`` s, loaded with ``weights_only=True``.

The book never pickles whole models: a pickle can run any code when it is loaded, and it ties the file
to the exact class and module layout that saved it.  A checkpoint here is a dict of tensors and numbers.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    **extra: Any,
) -> Path:
    """Save ``{'model': ..., 'optimizer': ..., 'scheduler': ..., 'rng_state': ..., **extra}`` to ``path``
    (``extra``: epoch, history, metrics … plain numbers, strings, lists and dicts).  Written to a
    temporary file first, so an interrupted save never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt: dict[str, Any] = {"model": model.state_dict(), "rng_state": torch.get_rng_state(), **extra}
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        ckpt["scheduler"] = scheduler.state_dict()
    tmp = path.with_name(path.name + ".partial")
    torch.save(ckpt, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` and restore what is given (model,
    optimizer, scheduler, and the random-number state).  Returns the whole dict (epoch, history, …).

    Raises :class:`CheckpointError` with one clear message if the file is missing, truncated, not a
    weights-only checkpoint (e.g. a pickle of arbitrary objects), or saved for a different architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}: train the model first (or check the path).")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else "")
        why = why.split("error: ")[-1].split(". Please")[0]  # the reason, not torch's advice to allow it
        raise CheckpointError(
            f"{path} is not a weights-only checkpoint: it asks to unpickle arbitrary Python objects "
            f"({why[:160]}). Loading it could run code, so d2lmini refuses. "
            f"Only load checkpoints saved with save_checkpoint (state_dicts) from a source you trust."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(
            f"{path} is truncated or corrupt ({type(e).__name__}: {str(e)[:120]}). "
            f"Delete it and save it again."
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} holds no 'model' state_dict; it was not saved by save_checkpoint.")
    if model is not None:
        _load_state(model, ckpt["model"], path)
    if optimizer is not None and "optimizer" in ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and "scheduler" in ckpt:
        scheduler.load_state_dict(ckpt["scheduler"])
    if restore_rng and "rng_state" in ckpt:
        torch.set_rng_state(ckpt["rng_state"])
    return ckpt


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
             for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        lines = [f"{path} was saved for a different architecture than {type(model).__name__}:"]
        if wrong:
            lines.append("  shapes differ: " + "; ".join(wrong[:3]) + (" …" if len(wrong) > 3 else ""))
        if missing:
            lines.append("  missing in the checkpoint: " + ", ".join(missing[:5]))
        if unexpected:
            lines.append("  not in the model: " + ", ".join(unexpected[:5]))
        lines.append("Build the same model that was saved (or train this one from scratch).")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state)

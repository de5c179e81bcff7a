"""Downloaded pretrained weights (torchvision / torch.hub), with one clear message when offline.

:func:`load_pretrained` is ``builder(weights=weights)`` (e.g. ``torchvision.models.resnet18`` with
``ResNet18_Weights.DEFAULT``) that waits at most a few seconds for the network and, when the weights are
neither cached nor downloadable, raises :class:`WeightsUnavailableError` with one message saying what to
do instead of a long traceback.  Paths in the message are shown relative to the home folder (``~``).
"""

from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import D2LMiniError

__all__ = ["WeightsUnavailableError", "load_pretrained"]


class WeightsUnavailableError(D2LMiniError):
    """Pretrained weights could not be downloaded (no internet) and are not in the local cache."""


def _hub_checkpoints() -> str:
    """Where torch.hub keeps downloaded weights, written with ``~`` for the home folder (no machine path
    in a printed message): usually ``~/.cache/torch/hub/checkpoints``."""
    path = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except ValueError:
        return f"torch.hub.get_dir()/checkpoints ({path.name})"


def load_pretrained(builder: Callable[..., nn.Module], weights: Any, timeout: float = 10.0) -> nn.Module:
    """``builder(weights=weights)``, e.g. ``load_pretrained(torchvision.models.resnet18,
    ResNet18_Weights.DEFAULT)``: the model with its pretrained weights (downloaded once to torch's cache).

    If the weights are neither cached nor downloadable (offline, a firewall, a half-written file), raises
    :class:`WeightsUnavailableError` with one message saying what to do, after at most about ``timeout``
    seconds of waiting for the network.  (torch.hub's download messages are not shown.)"""
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        quiet = io.StringIO()  # torch.hub's "Downloading: ..." line and progress bar
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            return builder(weights=weights)
    except Exception as e:  # URLError/HTTPError/timeout (OSError), RuntimeError for a corrupt file, ...
        url = getattr(weights, "url", "?")
        size = getattr(weights, "meta", {}).get("_file_size")
        hub = _hub_checkpoints()
        reason = str(e)[:100].replace(str(Path.home()), "~")
        raise WeightsUnavailableError(
            f"Could not get the pretrained weights {weights} ({type(e).__name__}: {reason}). "
            f"They are downloaded once from {url}{f' ({size:.0f} MB)' if size else ''} and kept in {hub}. "
            f"This computer seems to be offline: continue with a model pretrained here "
            f"(d2l.source_model()), or connect once, or copy that file into {hub}."
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)

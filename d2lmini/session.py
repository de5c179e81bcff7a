"""The first call of every chapter: :func:`setup` (banner, device, seeds) and :func:`seed_everything`."""

from __future__ import annotations

import random

import torch

from .config import is_smoke, mode_banner
from .device import device_info, get_device
from .messages import msg


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, and PyTorch's (CPU and GPU) random number generators."""
    random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0) -> torch.device:
    """Call at the top of a chapter: shows the mode banner (loud in smoke mode), the device, and seeds
    the random number generators.  Returns the device to train on."""
    seed_everything(seed)
    device = get_device()
    banner = mode_banner()
    if is_smoke():
        try:
            from IPython import get_ipython
            from IPython.display import HTML, display

            if get_ipython() is not None:
                display(HTML(f'<div style="background:#fff3cd;border:2px solid #e0a800;padding:8px;'
                             f'font-weight:bold">{banner}</div>'))
        except ImportError:  # pragma: no cover
            pass
    print(banner)
    print(msg("device", device=device_info(device)))
    return device

"""Pick the best available device (CUDA, then Apple's MPS, then the CPU) and describe it in one line."""

from __future__ import annotations

import platform

import torch


def get_device() -> torch.device:
    """The device to train on: ``cuda`` if a GPU is visible, else ``mps`` on Apple silicon, else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_info(device: torch.device | None = None) -> str:
    """A one-line description of ``device`` (default :func:`get_device`), e.g. ``cpu (2 threads, x86_64)``."""
    device = device or get_device()
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "mps: Apple GPU"
    return f"cpu: {torch.get_num_threads()} threads, {platform.machine()}"

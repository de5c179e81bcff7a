"""d2lmini: the small helper package behind the d2lmini deep-learning textbook.

One module per concern; this file only re-exports the public API::

    import d2lmini as d2l
    device = d2l.setup()                       # banner (reader or smoke mode), device, seed
    loaders = d2l.fashion_mnist_loaders(batch_size=256)
    history = d2l.fit(net, loaders.train, epochs=10, lr=0.1, val_data=loaders.val, plot=True)
"""

from __future__ import annotations

import random

import torch

from . import distributed, losses, models, optim, segmentation, widgets
from .amp import MixedPrecision
from .checkpoint import load_checkpoint, save_checkpoint
from .config import by_mode, data_root, is_smoke, mode_banner
from .conv import Conv2D, conv_output_size, corr2d, corr2d_multi_in, corr2d_multi_in_out, pool2d
from .data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    Loaders,
    RandomFlipShift,
    TensorLoader,
    digits_tensors,
    fashion_mnist_loaders,
    fashion_mnist_tensors,
    load_fashion_mnist,
    prepare_fashion_mnist,
    torchvision_loader,
)
from .device import device_info, get_device
from .errors import CheckpointError, D2LMiniError, DatasetCorruptError, DatasetUnavailableError
from .layers import CenteredLayer, Dense
from .plot import LivePlot, confusion_matrix, plot_confusion_matrix, plot_history, show_images
from .saliency import grad_cam, saliency_map
from .tboard import NoEventFilesError, TensorBoard, read_scalars, read_tags
from .train import (
    Callback,
    CancelFit,
    CancelStep,
    Checkpoint,
    EarlyStopping,
    History,
    Learner,
    LRScheduler,
    PrintMetrics,
    ProgressBar,
    accuracy,
    evaluate,
    fit,
    predict,
)
from .transfer import (
    WeightsUnavailableError,
    class_subset,
    count_trainable,
    freeze,
    load_pretrained,
    source_model,
)
from .widgets import Explorer, FitResult

__version__ = "0.1.0"


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
    print(f"Device: {device_info(device)}")
    return device


__all__ = [
    "FASHION_MNIST_CLASSES", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "Callback", "CancelFit", "CancelStep",
    "Checkpoint", "CheckpointError", "D2LMiniError", "DatasetCorruptError", "DatasetUnavailableError",
    "EarlyStopping", "History", "LRScheduler", "Learner", "LivePlot", "Loaders", "PrintMetrics",
    "ProgressBar", "RandomFlipShift", "TensorLoader", "accuracy", "by_mode", "confusion_matrix",
    "data_root", "device_info", "digits_tensors", "evaluate", "fashion_mnist_loaders",
    "fashion_mnist_tensors", "fit", "get_device", "is_smoke", "load_checkpoint", "load_fashion_mnist",
    "losses", "distributed", "mode_banner", "models", "plot_confusion_matrix", "plot_history", "predict",
    "prepare_fashion_mnist", "optim",
    "save_checkpoint", "seed_everything", "setup", "show_images", "torchvision_loader",
    "Conv2D", "conv_output_size", "corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "pool2d",
    "MixedPrecision", "WeightsUnavailableError", "class_subset", "count_trainable", "freeze",
    "load_pretrained", "source_model",
    "CenteredLayer", "Dense", "NoEventFilesError", "TensorBoard", "grad_cam", "read_scalars", "read_tags",
    "saliency_map",
    "widgets", "Explorer", "FitResult",
    "segmentation",
]

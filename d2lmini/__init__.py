"""d2lmini: the small helper package behind the d2lmini deep-learning textbook.

One module per concern; this file only re-exports the public API::

    import d2lmini as d2l
    device = d2l.setup()                       # banner (reader or smoke mode), device, seed
    loaders = d2l.fashion_mnist_loaders(batch_size=256)
    history = d2l.fit(net, loaders.train, epochs=10, lr=0.1, val_data=loaders.val, plot=True)

``import d2lmini`` loads neither matplotlib nor ipywidgets: the names that need them (``plot_history``,
``show_images``, ``Explorer``, the ``widgets`` and ``exercises`` modules, ...) are imported the first time
they are used (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from . import distributed, losses, models, optim, segmentation
from .amp import MixedPrecision
from .callbacks import Callback, Checkpoint, EarlyStopping, LRScheduler, PrintMetrics
from .checkpoint import load_checkpoint, save_checkpoint
from .config import book_file, by_mode, data_root
from .conv import conv_output_size
from .data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    RandomFlipShift,
    TensorLoader,
    digits_tensors,
    fashion_mnist_loaders,
    fashion_mnist_tensors,
    load_fashion_mnist,
    torchvision_loader,
)
from .device import device_info
from .errors import CheckpointError, D2LMiniError, DatasetUnavailableError
from .history import History
from .hub import WeightsUnavailableError, load_pretrained
from .layers import CenteredLayer, Dense
from .pretrained import source_model
from .saliency import grad_cam, saliency_map
from .session import seed_everything, setup
from .subsets import class_subset
from .tboard import TensorBoard, read_scalars, read_tags
from .train import Learner, evaluate, fit, predict

__version__ = "0.1.0"

#: Names imported on first use: name -> module (a submodule itself when the name is the module's).
_LAZY = {
    "plot_history": "plot", "show_images": "plot", "confusion_matrix": "plot",
    "plot_confusion_matrix": "plot",
    "Explorer": "widgets", "FitResult": "plot",
    "widgets": "widgets", "exercises": "exercises",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:  # d2l.cifar: the module cifar.py
            raise AttributeError(f"module 'd2lmini' has no attribute {name!r}")
        _LAZY[name] = name
    module = importlib.import_module(f".{_LAZY[name]}", __name__)
    value = module if name == _LAZY[name] else getattr(module, name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Callback", "CenteredLayer", "Checkpoint", "CheckpointError", "D2LMiniError",
    "DatasetUnavailableError", "Dense", "EarlyStopping", "Explorer", "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "FitResult", "History", "Learner", "LRScheduler",
    "MixedPrecision", "PrintMetrics", "RandomFlipShift", "TensorBoard", "TensorLoader",
    "WeightsUnavailableError", "book_file", "by_mode", "class_subset", "confusion_matrix",
    "conv_output_size", "data_root", "device_info", "digits_tensors", "distributed", "evaluate",
    "exercises", "fashion_mnist_loaders", "fashion_mnist_tensors", "fit", "grad_cam", "load_checkpoint",
    "load_fashion_mnist", "load_pretrained", "losses", "models", "optim", "plot_confusion_matrix",
    "plot_history", "predict", "read_scalars", "read_tags", "saliency_map", "save_checkpoint",
    "seed_everything", "segmentation", "setup", "show_images", "source_model", "torchvision_loader",
    "widgets",
]

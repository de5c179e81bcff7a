"""The book's own pretrained models: trained once, saved under :func:`~d2lmini.data_root`, then loaded.

Chapter 11 needs a pretrained *source* model and cannot download one (the book runs offline), so
:func:`source_model` trains a :class:`~d2lmini.models.ModernLeNet` on some Fashion-MNIST classes, saves it
with :func:`~d2lmini.save_checkpoint` and loads that checkpoint on every later call.  It trains only on
the first ``n_images`` training images, so the remaining ones can serve as the target task's labelled
pool without the source ever having seen them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .callbacks import PrintMetrics
from .checkpoint import load_checkpoint, save_checkpoint
from .config import by_mode, data_root
from .data import TensorLoader, fashion_mnist_tensors
from .errors import CheckpointError
from .models import ModernLeNet
from .subsets import class_subset
from .train import Learner, evaluate

__all__ = ["source_model"]


def _shown_path(path: str | Path) -> str:
    """``path`` as a printed message shows it: relative to the data folder (``data_root()/...``) when
    it lies inside it, else just the file name, never the machine's absolute path."""
    path = Path(path)
    try:
        return "data_root()/" + path.resolve().relative_to(data_root().resolve()).as_posix()
    except ValueError:
        return path.name


def source_model(
    classes: Sequence[int] = tuple(range(10)),
    n_images: int = 50_000,
    epochs: int | None = None,
    path: str | Path | None = None,
    retrain: bool = False,
    verbose: bool = True,
) -> nn.Module:
    """A ModernLeNet trained on the Fashion-MNIST ``classes``, using only the first ``n_images`` images
    of the training set (the rest stay unseen, for a target task).

    Loaded from ``path`` (default ``data_root()/pretrained/lenet_fmnist_c<classes>_n<n_images>.pt``)
    when that checkpoint exists and was trained the same way (classes, images, epochs); otherwise trained
    here with Adam (lr 1e-3, batches of 128, ``epochs`` default 4, or 1 on at most 400 images per class in
    smoke mode), on the CPU with seed 0 so every machine gets the same model, saved, and returned in
    ``eval()`` mode.  Its ``classifier[-1]`` is its output layer; the global random state is left as it
    was.  A corrupt or mismatched checkpoint is trained again, not a crash."""
    with torch.random.fork_rng(devices=[]):  # building and training must not move the caller's RNG
        return _source_model(classes, n_images, epochs, path, retrain, verbose)


def _source_model(classes: Sequence[int], n_images: int, epochs: int | None, path: str | Path | None,
                  retrain: bool, verbose: bool) -> nn.Module:
    epochs = epochs if epochs is not None else by_mode(4, 1)
    n_per_class = by_mode(None, 400)
    tag = "c" + "".join(str(c) for c in classes) + f"_n{n_images}" + ("" if n_per_class is None
                                                                     else f"_smoke{n_per_class}")
    path = Path(path) if path is not None else data_root() / "pretrained" / f"lenet_fmnist_{tag}.pt"
    meta = {"classes": list(classes), "n_images": n_images, "epochs": epochs}
    model = ModernLeNet(num_classes=len(classes))
    if path.is_file() and not retrain:
        try:
            ckpt = load_checkpoint(path, model, restore_rng=False)
            if all(ckpt.get(k) == v for k, v in meta.items()):
                if verbose:
                    print(f"Loaded the source model ({ckpt['n_trained']:,d} images of {len(classes)} "
                          f"classes, test accuracy {ckpt['test_accuracy']:.3f})\n"
                          f"  from {_shown_path(path)}")
                return model.eval()
        except CheckpointError as e:
            print(f"{e}\nTraining the source model again.")
    X_all, y_all = fashion_mnist_tensors(True)
    X, y = class_subset(X_all[:n_images], y_all[:n_images], classes, n_per_class)
    Xt, yt = class_subset(*fashion_mnist_tensors(False), classes)
    torch.manual_seed(0)  # the same source model on every machine
    model = ModernLeNet(num_classes=len(classes))
    start = time.perf_counter()
    learn = Learner(model, TensorLoader(X, y, batch_size=128, shuffle=True), opt=torch.optim.Adam, lr=1e-3,
                    callbacks=[PrintMetrics()] if verbose else [], device=torch.device("cpu"))
    learn.fit(epochs)
    acc = evaluate(model, TensorLoader(Xt, yt, batch_size=1000), device=torch.device("cpu"))["accuracy"]
    save_checkpoint(path, model, **meta, n_trained=len(X), test_accuracy=acc)
    if verbose:
        print(f"Trained the source model in {time.perf_counter() - start:.0f} s on {len(X):,d} images "
              f"of {len(classes)} classes\n  test accuracy on its classes: {acc:.3f}\n"
              f"  saved to {_shown_path(path)}")
    return model.eval()

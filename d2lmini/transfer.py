"""Helpers for fine-tuning (微调) and transfer learning (迁移学习), offline.

* :func:`class_subset` picks some classes of a labelled set (optionally only ``n_per_class`` images of
  each) and renumbers their labels 0, 1, ...
* :func:`source_model` is the book's own pretrained model: a :class:`~d2lmini.models.ModernLeNet` trained
  on five Fashion-MNIST classes, saved with :func:`~d2lmini.save_checkpoint` under :func:`~d2lmini.data_root`
  and trained again in place when the file is missing.
* :func:`freeze` and :func:`count_trainable` switch ``requires_grad`` and count what an optimizer will update.
* :func:`load_pretrained` builds a torchvision model with downloadable weights (e.g. ImageNet) and, when the
  weights cannot be fetched (offline), raises :class:`WeightsUnavailableError` with one clear message.
"""

from __future__ import annotations

import contextlib
import io
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .checkpoint import load_checkpoint, save_checkpoint
from .config import by_mode, data_root
from .data import TensorLoader, fashion_mnist_tensors
from .errors import CheckpointError, D2LMiniError
from .models import ModernLeNet
from .train import Learner, PrintMetrics, evaluate


class WeightsUnavailableError(D2LMiniError):
    """Pretrained weights could not be downloaded (no internet) and are not in the local cache."""


def class_subset(
    X: Tensor, y: Tensor, classes: Sequence[int], n_per_class: int | None = None, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """The items of ``(X, y)`` whose label is in ``classes``, labels renumbered ``classes[i] -> i``.

    With ``n_per_class``, keep a random sample (fixed by ``seed``) of that many items of each class, as a
    small labelled budget would give.  Raises ValueError if a class has fewer items than asked for."""
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in classes:
        idx = (y == c).nonzero().flatten()
        if len(idx) == 0:
            raise ValueError(f"class {c} does not occur in y (labels present: {y.unique().tolist()}).")
        if n_per_class is not None:
            if n_per_class > len(idx):
                raise ValueError(f"class {c} has only {len(idx)} items, fewer than "
                                 f"n_per_class={n_per_class}.")
            idx = idx[torch.randperm(len(idx), generator=g)[:n_per_class]]
        keep.append(idx)
    keep_idx = torch.cat(keep).sort().values
    relabel = torch.full((int(y.max()) + 1,), -1, dtype=torch.int64)
    relabel[torch.as_tensor(list(classes))] = torch.arange(len(classes))
    return X[keep_idx], relabel[y[keep_idx]]


def freeze(module: nn.Module, frozen: bool = True) -> nn.Module:
    """Set ``requires_grad = not frozen`` on every parameter of ``module`` (returns it, for chaining).

    Frozen parameters get no gradient, so no optimizer changes them.  BatchNorm's running statistics are
    buffers, not parameters: keep a frozen part in ``eval()`` mode if they must not move either."""
    for p in module.parameters():
        p.requires_grad_(not frozen)
    return module


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters (scalars) of ``model``."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def source_model(
    classes: Sequence[int] = (0, 1, 2, 3, 4),
    epochs: int | None = None,
    path: str | Path | None = None,
    retrain: bool = False,
    verbose: bool = True,
) -> nn.Module:
    """The book's pretrained source model: a ModernLeNet trained on the Fashion-MNIST ``classes``.

    Loaded from ``path`` (default ``data_root()/pretrained/modern_lenet_fmnist_<classes>.pt``) when that
    checkpoint exists and was trained on the same classes for the same number of epochs; otherwise it is
    trained here (``epochs`` default: 3, or 1 on less data in the fast CI mode), saved with
    :func:`save_checkpoint`, and returned.  The model's ``classifier[-1]`` is its output layer."""
    epochs = epochs if epochs is not None else by_mode(3, 1)
    n_per_class = by_mode(None, 400)
    tag = "-".join(str(c) for c in classes) + ("" if n_per_class is None else f"_n{n_per_class}")
    path = Path(path) if path is not None else data_root() / "pretrained" / f"modern_lenet_fmnist_{tag}.pt"
    model = ModernLeNet(num_classes=len(classes))
    if path.is_file() and not retrain:
        try:
            ckpt = load_checkpoint(path, model, restore_rng=False)
            if ckpt.get("classes") == list(classes) and ckpt.get("epochs") == epochs:
                if verbose:
                    print(f"Loaded the source model from {path} "
                          f"(test accuracy on its {len(classes)} classes: {ckpt['test_accuracy']:.3f}).")
                return model.eval()
        except CheckpointError as e:
            print(f"{e}\nTraining the source model again.")
    X, y = class_subset(*fashion_mnist_tensors(True), classes, n_per_class)
    Xt, yt = class_subset(*fashion_mnist_tensors(False), classes)
    rng_state = torch.get_rng_state()
    torch.manual_seed(0)  # the same source model on every machine
    model = ModernLeNet(num_classes=len(classes))
    train = TensorLoader(X, y, batch_size=128, shuffle=True)
    start = time.perf_counter()
    learn = Learner(model, train, opt=torch.optim.Adam, lr=1e-3,
                    callbacks=[PrintMetrics()] if verbose else [], device=torch.device("cpu"))
    learn.fit(epochs)
    acc = evaluate(model, TensorLoader(Xt, yt, batch_size=1000))["accuracy"]
    torch.set_rng_state(rng_state)
    save_checkpoint(path, model, classes=list(classes), epochs=epochs, test_accuracy=acc)
    if verbose:
        print(f"Trained the source model in {time.perf_counter() - start:.0f} s "
              f"(test accuracy on its {len(classes)} classes: {acc:.3f}); saved to {path}.")
    return model.eval()


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
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        raise WeightsUnavailableError(
            f"Could not get the pretrained weights {weights} ({type(e).__name__}: {str(e)[:100]}). "
            f"They are downloaded once from {url}{f' ({size:.0f} MB)' if size else ''} and kept in {hub}. "
            f"This computer seems to be offline: continue with a model pretrained here "
            f"(d2l.source_model()), or connect once, or copy that file into {hub}."
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)

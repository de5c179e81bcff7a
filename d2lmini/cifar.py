"""CIFAR-10 for chapter 08, served the way Fashion-MNIST is: all of it in memory, as tensors.

``torchvision.datasets.CIFAR10(download=True)`` fetches ``cifar-10-python.tar.gz`` (163 MB) into the data
folder and unpacks it into ``<root>/cifar-10-batches-py/``: five training batches ``data_batch_1`` …
``data_batch_5`` of 10,000 images each, ``test_batch`` and ``batches.meta`` (the "python version" of
CIFAR-10: pickled dicts with ``data``, a ``uint8 [10000, 3072]`` array, and ``labels``).  torchvision
checks every file's MD5 checksum before it reads it.

The 60,000 images take 184 MB as ``uint8 [N, 3, 32, 32]``, so :class:`~d2lmini.TensorLoader` serves
batches straight from tensors (scaled to [0, 1] one batch at a time).  Augmentation is done on the
batch, per image: :class:`~d2lmini.RandomFlipShift` flips and shifts (pads with zeros and crops back to
32×32), and the batch is normalised with CIFAR-10's channel means and standard deviations.

Without the files and without a network, :func:`load_cifar10` raises
:class:`~d2lmini.DatasetUnavailableError` whose first line says so in one sentence (a chapter can then
fall back to Fashion-MNIST); a truncated or altered file gives :class:`~d2lmini.errors.DatasetCorruptError`
naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from .config import by_mode, data_root
from .data import Loaders, _split_loaders
from .errors import DatasetCorruptError, DatasetUnavailableError

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
#: Per-channel (R, G, B) mean and standard deviation of CIFAR-10's training pixels (scaled to [0, 1]).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

FOLDER = "cifar-10-batches-py"
URL_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"


def _files() -> list[tuple[str, str]]:
    """``(file name, MD5)`` of every file torchvision reads, from torchvision's own table."""
    from torchvision.datasets import CIFAR10

    meta = CIFAR10.meta
    return [*map(tuple, CIFAR10.train_list), *map(tuple, CIFAR10.test_list), (meta["filename"], meta["md5"])]


def check_cifar10(root: str | Path | None = None) -> bool:
    """True when ``<root>/cifar-10-batches-py/`` holds every CIFAR-10 file with its right checksum;
    False when the folder is not there (nothing downloaded yet).  Raises :class:`DatasetCorruptError`
    naming the first file that is missing or altered when the folder exists but is incomplete."""
    from torchvision.datasets.utils import check_integrity

    folder = (Path(root) if root is not None else data_root()) / FOLDER
    if not folder.is_dir():
        return False
    for name, md5 in _files():
        path = folder / name
        if not check_integrity(str(path), md5):
            what = ("is missing" if not path.exists()
                    else "is truncated or corrupt (its MD5 checksum is wrong)")
            raise DatasetCorruptError(
                f"The CIFAR-10 file {FOLDER}/{name} {what}. Delete the folder {folder} and run again: "
                f"torchvision then downloads and checks CIFAR-10 anew."
            )
    return True


def load_cifar10(train: bool = True, root: str | Path | None = None, transform: Callable | None = None):
    """The torchvision ``CIFAR10`` dataset (files already in ``<root>`` first, else ``download=True``).

    Raises :class:`DatasetUnavailableError` when CIFAR-10 is neither there nor downloadable: its first
    line is one sentence ("CIFAR-10 could not be downloaded (...)."), the next ones say what to do.
    Raises :class:`DatasetCorruptError` naming a truncated or altered file.
    """
    from torchvision.datasets import CIFAR10

    root = Path(root) if root is not None else data_root()
    root.mkdir(parents=True, exist_ok=True)
    if check_cifar10(root):
        return CIFAR10(str(root), train=train, download=False, transform=transform)
    before = set(root.iterdir())
    try:
        ds = CIFAR10(str(root), train=train, download=True, transform=transform)
    except Exception as e:  # noqa: BLE001 - torchvision raises URLError, RuntimeError, OSError...
        for leftover in set(root.iterdir()) - before:  # nothing half-downloaded left behind
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
        detail = re.sub(r"^\[Errno -?\d+\] ", "", str(getattr(e, "reason", e)))  # URLError: its reason
        error = f"{type(e).__name__}: {detail[:100]}".replace("\n", " ")
        raise DatasetUnavailableError(
            f"CIFAR-10 could not be downloaded ({error}).\n"
            f"It is not in {root / FOLDER}. To get it, do one of:\n"
            f"  * connect to the internet and run the cell again (torchvision downloads 163 MB), or\n"
            f"  * download cifar-10-python.tar.gz (the python version, {URL_PAGE}) and put it in {root}: "
            f"it is checked and unpacked for you."
        ) from None
    check_cifar10(root)
    return ds


@lru_cache(maxsize=4)
def _cifar_tensors(train: bool, root: str) -> tuple[Tensor, Tensor]:
    ds = load_cifar10(train, root)
    X = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # [N, 32, 32, 3] -> [N, 3, 32, 32]
    return X, torch.tensor(ds.targets, dtype=torch.int64)


def cifar10_tensors(train: bool = True, root: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """All of CIFAR-10's training (or test) set as tensors: images ``uint8 [N, 3, 32, 32]``, labels
    ``int64 [N]``.  Cached, so a second call costs nothing."""
    root = Path(root) if root is not None else data_root()
    return _cifar_tensors(train, str(root))


class Normalize:
    """``(x - mean) / std`` per channel of a float batch ``[B, C, H, W]`` (after any augmentation)."""

    def __init__(self, mean: tuple[float, ...] = CIFAR10_MEAN, std: tuple[float, ...] = CIFAR10_STD) -> None:
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __call__(self, xb: Tensor) -> Tensor:
        return (xb - self.mean.to(xb.device)) / self.std.to(xb.device)

    def __repr__(self) -> str:
        mean, std = tuple(self.mean.flatten().tolist()), tuple(self.std.flatten().tolist())
        return f"Normalize(mean={mean}, std={std})"


class _Then:
    """``first`` then ``second`` on a batch; passes ``state_dict`` through to ``first`` (the augmentation),
    so a checkpoint of the loader restores its random state."""

    def __init__(self, first: Callable[[Tensor], Tensor], second: Callable[[Tensor], Tensor]) -> None:
        self.first, self.second = first, second

    def __call__(self, xb: Tensor) -> Tensor:
        return self.second(self.first(xb))

    def state_dict(self) -> dict:
        return self.first.state_dict() if hasattr(self.first, "state_dict") else {}

    def load_state_dict(self, state: dict) -> None:
        if hasattr(self.first, "load_state_dict"):
            self.first.load_state_dict(state)

    def __repr__(self) -> str:
        return f"{self.first!r} then {self.second!r}"


def cifar10_loaders(
    batch_size: int = 128,
    val_size: int = 5000,
    n_train: int | None = None,
    n_test: int | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
    normalize: bool = True,
    seed: int = 0,
    device: torch.device | str | None = None,
    root: str | Path | None = None,
) -> Loaders:
    """CIFAR-10 as three :class:`~d2lmini.TensorLoader` s, like :func:`~d2lmini.fashion_mnist_loaders`:
    train (shuffled), validation (the last ``val_size`` images of a fixed shuffle of the 50,000 training
    images; ``val_size=0`` keeps them all for training, as the ResNet exercise does) and test (the
    official 10,000).

    ``n_train`` / ``n_test`` keep only that many images (default: all; in smoke mode 2,000 / 1,000 and a
    validation set of at most 500).  ``transform`` (augmentation, e.g. ``RandomFlipShift(max_shift=4)``)
    is applied to training batches only; with ``normalize`` every batch is then normalised with
    :data:`CIFAR10_MEAN` and :data:`CIFAR10_STD`.
    """
    X, y = cifar10_tensors(True, root)
    Xt, yt = cifar10_tensors(False, root)
    if not 0 <= val_size < len(X):
        raise ValueError(f"val_size must be from 0 to {len(X) - 1:,}, got {val_size!r}")
    val_size = by_mode(val_size, min(val_size, 500))
    n_train = n_train if n_train is not None else by_mode(len(X) - val_size, 2000)
    n_test = n_test if n_test is not None else by_mode(len(Xt), 1000)
    if not 1 <= n_train <= len(X) - val_size:
        raise ValueError(f"n_train must be from 1 to {len(X) - val_size:,} (the training images left after "
                         f"val_size={val_size:,}), got {n_train!r}")
    if not 1 <= n_test <= len(Xt):
        raise ValueError(f"n_test must be from 1 to {len(Xt):,}, got {n_test!r}")
    norm = Normalize() if normalize else None
    train_tf = transform
    if norm is not None:
        train_tf = norm if transform is None else _Then(transform, norm)
    return _split_loaders(X, y, Xt, yt, batch_size, val_size, n_train, n_test, seed, train_tf, norm, device)

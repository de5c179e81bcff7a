"""Datasets for the book, served fast.

Fashion-MNIST comes through ``torchvision.datasets.FashionMNIST(download=True)``.  Before torchvision
downloads anything, :func:`prepare_fashion_mnist` looks for a local mirror (``$D2LMINI_FASHION_MNIST_MIRROR``
or Debian's ``/usr/share/datasets/fashion-mnist``) and decompresses it into ``<root>/FashionMNIST/raw/``.

The whole dataset fits in memory (47 MB as ``uint8``), so :class:`TensorLoader` serves batches straight
from tensors, converting ``uint8`` to ``float`` one batch at a time, instead of turning every image into a
PIL image and back (what ``DataLoader`` + ``ToTensor`` does).  Training on a GPU, the Learner moves a
TensorLoader's tensors there once (:meth:`TensorLoader.to`), so batches are cut and converted on the GPU.
"""

from __future__ import annotations

import gzip
import numbers
import shutil
import struct
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .config import by_mode, data_root, mirror_dirs
from .errors import DatasetCorruptError, DatasetUnavailableError
from .messages import msg

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
#: Mean and standard deviation of the Fashion-MNIST training pixels (scaled to [0, 1]).
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530

# file name -> (idx magic number, number of items); images are 28x28.
_FILES = {
    "train-images-idx3-ubyte": (2051, 60000),
    "train-labels-idx1-ubyte": (2049, 60000),
    "t10k-images-idx3-ubyte": (2051, 10000),
    "t10k-labels-idx1-ubyte": (2049, 10000),
}


def _expected_size(name: str) -> int:
    magic, n = _FILES[name]
    return 16 + n * 28 * 28 if magic == 2051 else 8 + n


def _check_idx(path: Path, name: str) -> None:
    """Raise :class:`DatasetCorruptError` unless ``path`` is the complete idx file ``name``."""
    magic, n = _FILES[name]
    with open(path, "rb") as f:
        header = f.read(8)
    size = path.stat().st_size
    ok = len(header) == 8 and struct.unpack(">II", header) == (magic, n) and size == _expected_size(name)
    if not ok:
        raise DatasetCorruptError(msg("dataset_file_corrupt", path=path, name=name, size=size,
                                      expected=_expected_size(name)))


def _copy_from_mirror(name: str, raw: Path) -> bool:
    """Copy ``name`` from the first mirror that has it into ``raw`` (decompressing ``.gz``); True if found."""
    for mirror in mirror_dirs():
        for src in (mirror / name, mirror / f"{name}.gz"):
            if not src.is_file():
                continue
            tmp = raw / f".{name}.partial"
            try:
                opener = gzip.open if src.suffix == ".gz" else open
                with opener(src, "rb") as fin, open(tmp, "wb") as fout:
                    shutil.copyfileobj(fin, fout, length=1 << 20)
                _check_idx(tmp, name)
            except (OSError, EOFError, gzip.BadGzipFile, DatasetCorruptError) as e:
                tmp.unlink(missing_ok=True)
                error = e.__class__.__name__
                raise DatasetCorruptError(msg("mirror_corrupt", src=src, error=error)) from None
            tmp.replace(raw / name)
            return True
    return False


def prepare_fashion_mnist(root: str | Path | None = None) -> Path:
    """Make sure ``<root>/FashionMNIST/raw/`` holds the four decompressed files if a mirror has them.

    Files already there are checked (size and header); missing ones are copied from the first local
    mirror that has them.  Returns ``root``.  Files no mirror has are left for torchvision to download.
    """
    root = Path(root) if root is not None else data_root()
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        if (raw / name).exists():
            _check_idx(raw / name, name)
        else:
            _copy_from_mirror(name, raw)
    return root


def load_fashion_mnist(train: bool = True, root: str | Path | None = None, transform: Callable | None = None):
    """The torchvision ``FashionMNIST`` dataset (local mirror first, then ``download=True``).

    Raises :class:`DatasetUnavailableError` with what to do when neither works.
    """
    from torchvision.datasets import FashionMNIST

    root = prepare_fashion_mnist(root)
    raw = root / "FashionMNIST" / "raw"
    before = set(raw.iterdir())
    try:
        ds = FashionMNIST(str(root), train=train, download=True, transform=transform)
    except Exception as e:  # noqa: BLE001 - torchvision raises URLError, RuntimeError, OSError...
        for leftover in set(raw.iterdir()) - before:  # nothing half-downloaded left behind
            leftover.unlink(missing_ok=True)
        error = f"{e.__class__.__name__}: {str(e)[:120]}".replace("\n", " ")
        raise DatasetUnavailableError(msg("dataset_unavailable", raw=raw, error=error)) from None
    for name in _FILES:
        _check_idx(raw / name, name)
    return ds


@lru_cache(maxsize=4)
def _fashion_tensors(train: bool, root: str) -> tuple[Tensor, Tensor]:
    ds = load_fashion_mnist(train, root)
    return ds.data, ds.targets


def fashion_mnist_tensors(train: bool = True, root: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """All of Fashion-MNIST's training (or test) set as tensors: images ``uint8 [N, 28, 28]``, labels
    ``int64 [N]``.  Cached, so a second call costs nothing."""
    root = Path(root) if root is not None else data_root()
    return _fashion_tensors(train, str(root))


def digits_tensors() -> tuple[Tensor, Tensor]:
    """scikit-learn's 8x8 handwritten digits (1,797 images, ships with scikit-learn, no download):
    images ``float32 [N, 1, 8, 8]`` scaled to [0, 1], labels ``int64 [N]``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return X, torch.tensor(d.target, dtype=torch.int64)


class TensorLoader:
    """Mini-batches from in-memory tensors: a drop-in for ``DataLoader`` when the data fits in memory.

    ``X`` may be ``uint8`` images ``[N, H, W]`` (scaled to ``float`` in [0, 1] and given a channel axis
    one batch at a time) or any float tensor ``[N, ...]``.  ``transform`` is applied to each float batch
    (e.g. :class:`RandomFlipShift` or ``Normalize``).  With ``shuffle=True`` every epoch draws a new order;
    the order of epoch ``e`` depends only on ``(seed, e)``, so runs repeat exactly and a resumed run
    continues with the same batches (like ``DistributedSampler``, call :meth:`set_epoch` to choose ``e``).
    """

    def __init__(
        self,
        X: Tensor,
        y: Tensor,
        batch_size: int = 256,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = 0,
        transform: Callable[[Tensor], Tensor] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} items but y has {len(y)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        self.X, self.y = (X.to(device), y.to(device)) if device is not None else (X, y)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.transform, self.seed, self.epoch = transform, seed, 0
        self.send_to: torch.device | None = None  # set by .to() when the data stays in CPU memory

    @property
    def dataset(self) -> torch.utils.data.TensorDataset:
        """The data as a ``TensorDataset`` (so ``len(loader.dataset)`` works as with a ``DataLoader``)."""
        return torch.utils.data.TensorDataset(self.X, self.y)

    @property
    def nbytes(self) -> int:
        """Memory the data takes (images and labels)."""
        return self.X.nelement() * self.X.element_size() + self.y.nelement() * self.y.element_size()

    def to(self, device: torch.device | str) -> TensorLoader:
        """Serve batches on ``device``; returns the loader.  The tensors move there once when they take
        at most a quarter of the device's free memory (:func:`placement`); otherwise they stay in CPU
        memory, and each batch is copied as it is stored (``uint8`` images: a quarter of the float bytes)
        from pinned memory without blocking, and converted to float on the device."""
        device = torch.device(device)
        if device.type == "cpu":  # back from an accelerator, if the data was there
            self.X, self.y, self.send_to = self.X.cpu(), self.y.cpu(), None
        elif self.X.device == device or (device.type == self.X.device.type and device.index is None):
            self.send_to = None
        elif placement(self.nbytes, device, _free_memory(device)) == "device":
            self.X, self.y, self.send_to = self.X.to(device), self.y.to(device), None
        else:
            self.send_to = device
        return self

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use the shuffle order of epoch ``epoch`` (the Learner calls this)."""
        self.epoch = epoch

    def state_dict(self) -> dict[str, Any]:
        """The loader's position (epoch) and its transform's random state, for exact resumes."""
        state: dict[str, Any] = {"epoch": self.epoch}
        if hasattr(self.transform, "state_dict"):
            state["transform"] = self.transform.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state.get("epoch", self.epoch))
        if "transform" in state and hasattr(self.transform, "load_state_dict"):
            self.transform.load_state_dict(state["transform"])

    def __len__(self) -> int:
        n, b = len(self.X), self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    def _to_float(self, xb: Tensor) -> Tensor:
        if xb.dtype == torch.uint8:
            xb = xb.float().div_(255)
            if xb.ndim == 3:
                xb = xb.unsqueeze(1)
        return xb

    def _send(self, t: Tensor) -> Tensor:
        """Copy a CPU batch to ``send_to`` without blocking (from pinned memory on CUDA)."""
        if self.send_to.type == "cuda" and not t.is_pinned():
            t = t.pin_memory()
        return t.to(self.send_to, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.X)
        order = None
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 1_000_003 + self.epoch) if self.seed is not None else g.seed()
            order = torch.randperm(n, generator=g).to(self.X.device)
        self.epoch += 1
        stop = n - n % self.batch_size if self.drop_last else n
        for i in range(0, stop, self.batch_size):
            if order is None:
                xb, yb = self.X[i : i + self.batch_size], self.y[i : i + self.batch_size]
            else:
                idx = order[i : i + self.batch_size]
                xb, yb = self.X[idx], self.y[idx]
            if self.send_to is not None:  # sent as stored (uint8), converted on the device
                xb, yb = self._send(xb), self._send(yb)
            xb = self._to_float(xb)
            if self.transform is not None:
                xb = self.transform(xb)
            yield xb, yb

    def __repr__(self) -> str:
        return (f"TensorLoader({len(self.X)} items, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, batches={len(self)})")


def placement(nbytes: int, device: torch.device | str, free_bytes: int | None) -> str:
    """Where a :class:`TensorLoader` keeps data of ``nbytes`` bytes that trains on ``device``:
    ``'device'`` (copied there once) if the device is not the CPU and the data takes at most a quarter of
    its ``free_bytes`` (at most 1 GiB when the free memory is unknown), else ``'cpu'`` (batches are sent)."""
    if torch.device(device).type == "cpu":
        return "cpu"
    limit = (1 << 30) if free_bytes is None else free_bytes // 4
    return "device" if nbytes <= limit else "cpu"


def _free_memory(device: torch.device) -> int | None:
    """Free bytes on ``device`` where PyTorch can tell (CUDA), else None."""
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.cuda.mem_get_info()[0]
    return None


class RandomFlipShift:
    """Data augmentation on a float batch ``[B, C, H, W]``, each image drawn on its own: a horizontal
    flip with probability ``p_flip`` and a shift of up to ``max_shift`` pixels in x and y (zero padded)."""

    def __init__(self, p_flip: float = 0.5, max_shift: int = 2, seed: int | None = None) -> None:
        self.p_flip, self.max_shift = p_flip, max_shift
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def __call__(self, xb: Tensor) -> Tensor:
        B, _, H, W = xb.shape
        g = self.generator
        flip = (torch.rand(B, generator=g) < self.p_flip).to(xb.device)
        xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
        s = self.max_shift
        if s == 0:
            return xb
        padded = torch.nn.functional.pad(xb, (s, s, s, s))
        dx = torch.randint(0, 2 * s + 1, (B,), generator=g).to(xb.device)
        dy = torch.randint(0, 2 * s + 1, (B,), generator=g).to(xb.device)
        rows = (dy[:, None] + torch.arange(H, device=xb.device))[:, None, :, None]  # [B,1,H,1]
        cols = (dx[:, None] + torch.arange(W, device=xb.device))[:, None, None, :]  # [B,1,1,W]
        b = torch.arange(B, device=xb.device)[:, None, None, None]
        c = torch.arange(xb.shape[1], device=xb.device)[None, :, None, None]
        return padded[b, c, rows, cols]

    def state_dict(self) -> dict[str, Tensor]:
        """The random state, so that a resumed run draws the same augmentations."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return f"RandomFlipShift(p_flip={self.p_flip}, max_shift={self.max_shift})"


class Loaders(NamedTuple):
    """Training, validation and test loaders."""

    train: TensorLoader
    val: TensorLoader
    test: TensorLoader


def fashion_mnist_loaders(
    batch_size: int = 256,
    val_size: int = 5000,
    n_train: int | None = None,
    n_test: int | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    root: str | Path | None = None,
) -> Loaders:
    """Fashion-MNIST as three :class:`TensorLoader` s: train (shuffled), validation (the last
    ``val_size`` images of a fixed shuffle of the training set) and test (the official 10,000).

    ``n_train`` / ``n_test`` keep only that many images (default: all; in smoke mode 2,000 / 1,000 and a
    validation set of 500).  ``transform`` (augmentation) is applied to training batches only.
    """
    N, N_test = _FILES["train-labels-idx1-ubyte"][1], _FILES["t10k-labels-idx1-ubyte"][1]
    _check_size("val_size", val_size, 1, N - 1, f"of the {N:,} training images")
    val_size = by_mode(val_size, min(val_size, 500))
    n_train = n_train if n_train is not None else by_mode(N - val_size, 2000)
    _check_size("n_train", n_train, 1, N - val_size,
                f"= {N:,} training images - val_size={val_size:,}; more would overlap validation")
    n_test = n_test if n_test is not None else by_mode(N_test, 1000)
    _check_size("n_test", n_test, 1, N_test, "test images in the official test set")
    X, y = fashion_mnist_tensors(True, root)   # checked before loading: a wrong size fails at once
    Xt, yt = fashion_mnist_tensors(False, root)
    return _split_loaders(X, y, Xt, yt, batch_size, val_size, n_train, n_test, seed, transform, None, device)


def _split_loaders(X: Tensor, y: Tensor, Xt: Tensor, yt: Tensor, batch_size: int, val_size: int,
                   n_train: int, n_test: int, seed: int, train_transform: Callable[[Tensor], Tensor] | None,
                   eval_transform: Callable[[Tensor], Tensor] | None,
                   device: torch.device | str | None) -> Loaders:
    """The book's split of checked sizes, shared by every ``*_loaders``: validation is the last
    ``val_size`` images of a fixed shuffle (``seed``) of the training set, training its first ``n_train``,
    test the first ``n_test`` of the official test set."""
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[len(X) - val_size :], perm[:n_train]
    return Loaders(
        TensorLoader(X[train_idx], y[train_idx], batch_size, shuffle=True, seed=seed,
                     transform=train_transform, device=device),
        TensorLoader(X[val_idx], y[val_idx], batch_size, transform=eval_transform, device=device),
        TensorLoader(Xt[:n_test], yt[:n_test], batch_size, transform=eval_transform, device=device),
    )


def _check_size(name: str, value: object, low: int, high: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low:,} to {high:,} ({high:,} {what}), "
                         f"got {value!r}")


def torchvision_loader(
    train: bool = True, batch_size: int = 256, shuffle: bool = True, num_workers: int = 0,
    root: str | Path | None = None,
) -> torch.utils.data.DataLoader:
    """The textbook path, kept for comparison: ``DataLoader(FashionMNIST(transform=ToTensor()))``,
    which converts every image to PIL and back to a tensor, one image at a time."""
    from torchvision.transforms import ToTensor

    ds = load_fashion_mnist(train, root, transform=ToTensor())
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)

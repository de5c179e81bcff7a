"""Checks for the exercises of chapter 02, datasets and data loaders.

Expected values are computed here (batch counts with a real ``DataLoader``, the flattened images from the
Fashion-MNIST tensors, a reference padding) or compared through salted digests (which augmentations are
safe), never stored as plain answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader

from . import Feedback, correct, exercise, matches_digest, wrong

# ----------------------------------------------------------------------------------------- 02.1 batches

N_EXAMPLES, BATCH = 1234, 100


def batch_counts(n: int = N_EXAMPLES, batch_size: int = BATCH) -> tuple[int, int, int]:
    """(batches, batches with drop_last=True, size of the last batch) of a DataLoader over n items."""
    data = list(range(n))
    last = list(DataLoader(data, batch_size=batch_size))[-1]
    return (len(DataLoader(data, batch_size=batch_size)),
            len(DataLoader(data, batch_size=batch_size, drop_last=True)), len(last))


@exercise("02.1", title="counting batches", where="section 2.2")
def _batches(answer: Any) -> Feedback:
    try:
        given = tuple(int(v) for v in answer)
    except (TypeError, ValueError):
        return wrong("give three whole numbers, e.g. (n_batches, n_batches_drop_last, last_batch_size).")
    if len(given) != 3:
        return wrong(f"give three numbers, not {len(given)}.")
    truth = batch_counts()
    if given == truth:
        return correct("full batches first; the rest forms one short batch, which drop_last throws away.")
    what = ("the number of batches with drop_last=False", "the number with drop_last=True",
            "the size of the last batch")
    off = [w for w, g, t in zip(what, given, truth, strict=True) if g != t]
    return wrong("not right: " + "; ".join(off) + ". Count the full batches of 100 first, then what is "
                 "left over.")


# ----------------------------------------------------------------------------------------- 02.2 FlatFashion

@exercise("02.2", title="a dataset of flat images", where="sections 2.1 and 2.7")
def _flat_fashion(cls: type) -> Feedback:
    from ..data import fashion_mnist_tensors

    X, y = fashion_mnist_tensors(train=True)
    X, y = X[:100], y[:100]
    ds = cls(X, y)
    if len(ds) != 100:
        return wrong(f"len() of a FlatFashion over 100 images should be 100, not {len(ds)}.")
    xi, yi = ds[7]
    if not isinstance(xi, torch.Tensor) or tuple(xi.shape) != (784,):
        shape = tuple(xi.shape) if isinstance(xi, torch.Tensor) else type(xi).__name__
        return wrong(f"an image should be a tensor of shape (784,), not {shape}: flatten the 28x28 image.")
    if xi.dtype != torch.float32:
        return wrong(f"an image should be float32, not {xi.dtype}.")
    expected = X[7].flatten().float() / 255
    if not torch.allclose(xi, expected, atol=1e-6):
        if torch.allclose(xi, X[7].flatten().float()):
            return wrong("the values should be in [0, 1]: divide the uint8 pixels by 255.")
        return wrong("the pixel values differ from image 7 of X: return the i-th image.")
    if int(yi) != int(y[7]):
        return wrong("the label of example 7 should be y[7].")
    xb, yb = next(iter(DataLoader(ds, batch_size=100)))
    if not (torch.allclose(xb, X.reshape(100, -1).float() / 255, atol=1e-6) and torch.equal(yb, y)):
        return wrong("single examples are right, but a batch of all 100 is not: does __getitem__ use i?")
    return correct("a DataLoader batches your examples into [100, 784] floats and [100] labels.")


# ----------------------------------------------------------------------------------------- 02.3 split

@exercise("02.3", title="a reproducible three-way split", where="section 2.5")
def _split(fn: Callable[[Any, int], Any]) -> Feedback:
    data = list(range(1000))
    parts = fn(data, 0)
    if parts is None:
        return wrong("three_way_split returns None: return the three subsets (train, val, test).")
    parts = list(parts)
    if len(parts) != 3:
        return wrong(f"return three subsets (train, val, test), not {len(parts)}.")
    if not all(hasattr(p, "indices") for p in parts):
        return wrong("return the Subsets that random_split gives (they have .indices).")
    sizes = [len(p) for p in parts]
    if sizes != [700, 150, 150]:
        return wrong(f"the sizes should be 70 %, 15 % and 15 % of 1,000, not {sizes}.")
    sets = [set(p.indices) for p in parts]
    if sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2] or set.union(*sets) != set(data):
        return wrong("the three parts must not overlap and must together hold every item once.")
    if [list(p.indices) for p in fn(data, 0)] != [list(p.indices) for p in parts]:
        return wrong("the same seed must give the same split: pass generator=torch.Generator()"
                     ".manual_seed(seed) to random_split.")
    if [list(p.indices) for p in fn(data, 1)] == [list(p.indices) for p in parts]:
        return wrong("a different seed should give a different split: use the seed argument.")
    return correct("sizes 700/150/150, no overlap, and the seed decides the split.")


# ----------------------------------------------------------------------------------------- 02.4 safe?

DATASETS = ("Fashion-MNIST", "MNIST digits")
TRANSFORMS = ("horizontal flip", "vertical flip", "rotation up to 10°", "rotation by 180°")
#: Salted digests of "dataset|transform|<the right True/False>" (see d2lmini.exercises.digest).
_SAFE = {
    ("fashion-mnist", "horizontal flip"): "a463a0ad34083629",
    ("fashion-mnist", "vertical flip"): "7ad4beff66304829",
    ("fashion-mnist", "rotation up to 10°"): "b54b4c87a1c27a91",
    ("fashion-mnist", "rotation by 180°"): "473abe124584f620",
    ("mnist digits", "horizontal flip"): "9a929bad4b1223e0",
    ("mnist digits", "vertical flip"): "9efd95f07e1bc4f4",
    ("mnist digits", "rotation up to 10°"): "3073a5880cd21edc",
    ("mnist digits", "rotation by 180°"): "0bb1350c48363de9",
}


@exercise("02.4", title="which augmentations are safe", where="section 2.4",
          discuss=["whether the transformed image still carries its label",
                   "whether the test set could contain such an image",
                   "what training on images the test set never shows costs the model"])
def _safe(answer: Any) -> Feedback:
    if not isinstance(answer, dict):
        return wrong("give the dictionary of the exercise cell, with True or False in each place.")
    lowered = {str(k).strip().lower(): v for k, v in answer.items()}
    off, missing = [], []
    for dataset in DATASETS:
        row = lowered.get(dataset.lower())
        if not isinstance(row, dict):
            return wrong(f"the dictionary needs a key {dataset!r} with the four transforms in it.")
        row = {str(k).strip().lower(): v for k, v in row.items()}
        for tf in TRANSFORMS:
            value = row.get(tf)
            if not isinstance(value, bool):
                missing.append(f"{dataset}: {tf}")
            elif not matches_digest("02.4", f"{dataset.lower()}|{tf}|{value}", _SAFE[dataset.lower(), tf]):
                off.append(f"{dataset}: {tf}")
    if missing:
        return wrong("write True or False for every entry; still open: " + ", ".join(missing) + ".")
    if off:
        return wrong(f"{8 - len(off)} of 8 right; think again about " + ", ".join(off)
                     + ". Does the label survive, and could a test image look like that?")
    return correct("all eight right.")


# ----------------------------------------------------------------------------------------- 02.5 speed

BATCH_SIZES = (16, 64, 256, 1024)


def _one_pass_seconds(batch_size: int) -> float:
    from ..data import TensorLoader, fashion_mnist_tensors

    X, y = fashion_mnist_tensors(train=True)
    loader = TensorLoader(X, y, batch_size=batch_size, shuffle=True)
    start = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - start


@exercise("02.5", title="batch size and speed", where="section 2.7",
          discuss=["how often each path pays its Python overhead (per batch or per image), and how many "
                   "batches an epoch has at each batch size",
                   "whether DataLoader(ToTensor)'s time depends on the batch size, and why",
                   "what else the batch size changes when a model trains"])
def _speed(answer: Any) -> Feedback:
    if not isinstance(answer, dict):
        return wrong("give a dictionary {batch_size: seconds} for 16, 64, 256 and 1024.")
    try:
        times = {int(k): float(v) for k, v in answer.items()}
    except (TypeError, ValueError):
        return wrong("the keys should be the batch sizes and the values the seconds, as numbers.")
    if set(times) != set(BATCH_SIZES):
        return wrong(f"time exactly these batch sizes: {list(BATCH_SIZES)}, not {sorted(times)}.")
    if min(times.values()) <= 0:
        return wrong("every time must be a positive number of seconds.")
    if not times[16] > times[1024]:
        return wrong("with batches of 16 a pass should take clearly longer than with 1,024: did you "
                     "time a full pass of TensorLoader(X, y, batch_size=b) for each b?")
    own = min(_one_pass_seconds(256) for _ in range(3))
    if not own / 20 < times[256] < own * 20:
        return wrong(f"your 256 timing is far from one pass over the 60,000 training images here "
                     f"(about {own:.2g} s): time all of X, once per batch size.")
    return correct(f"a pass takes {times[16] / times[1024]:.1f}x as long with batches of 16 as with 1,024: "
                   "the per-batch overhead, paid 64 times as often.")


# ----------------------------------------------------------------------------------------- 02.6 mask

def _names() -> list[tuple[torch.Tensor, int]]:
    from ..data import FASHION_MNIST_CLASSES

    return [(torch.tensor([ord(c) for c in name]), i) for i, name in enumerate(FASHION_MNIST_CLASSES)]


def reference_mask_collate(examples: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    """The batch exercise 6 asks for: padded chars, lengths, labels and the padding mask."""
    seqs = [s for s, _ in examples]
    lengths = torch.tensor([len(s) for s in seqs])
    chars = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    mask = torch.arange(chars.shape[1])[None, :] < lengths[:, None]
    return {"chars": chars, "lengths": lengths, "label": torch.tensor([i for _, i in examples]),
            "mask": mask}


@exercise("02.6", title="a collate function with a mask", where="section 2.2")
def _mask_collate(fn: Callable[[list], dict]) -> Feedback:
    names = _names()
    order = [3, 9, 1, 5, 0, 7, 2, 8, 6, 4]
    for batch_idx in ([0, 1, 2, 3], order[:4], order[4:7], [5]):
        examples = [names[i] for i in batch_idx]
        got, want = fn(examples), reference_mask_collate(examples)
        if not isinstance(got, dict):
            return wrong(f"mask_collate should return a dict, not {type(got).__name__}.")
        missing = sorted(set(want) - set(got))
        if missing:
            return wrong("the batch dictionary lacks the key(s) " + ", ".join(map(repr, missing)) + ".")
        for key in ("chars", "lengths", "label"):
            g = torch.as_tensor(got[key])
            if g.shape != want[key].shape or not torch.equal(g.long(), want[key].long()):
                return wrong(f"batch[{key!r}] differs from pad_collate's for classes {batch_idx}: pad with 0 "
                             f"to the longest sequence of the batch.")
        mask = torch.as_tensor(got["mask"])
        if mask.dtype != torch.bool:
            return wrong(f"the mask should be a bool tensor, not {mask.dtype}.")
        if mask.shape != want["mask"].shape:
            return wrong(f"the mask should have the shape of batch['chars'], {tuple(want['mask'].shape)}, "
                         f"not {tuple(mask.shape)}.")
        if not torch.equal(mask, want["mask"]):
            return wrong(f"the mask is wrong for classes {batch_idx}: True where there is a character, "
                         f"False at the padding.")
    return correct("padded, with lengths, labels and a mask that a model can use to ignore the padding.")

"""Labelled subsets: some classes of a data set, optionally only a few labelled items of each.

:func:`class_subset` is how chapter 11 builds its source and target tasks from Fashion-MNIST and how it
draws a small label budget ("10 labelled images per class") with a seed, so that each draw repeats.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["class_subset"]


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

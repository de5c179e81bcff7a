"""Tests for d2lmini.subsets: some classes of a labelled set, and small label budgets."""

from __future__ import annotations

import pytest
import torch

import d2lmini as d2l
from d2lmini.subsets import class_subset


def test_class_subset_relabels_and_samples_per_class():
    X = torch.arange(40).float()
    y = torch.arange(40) % 4  # 10 items of each class 0..3
    Xs, ys = class_subset(X, y, classes=(3, 1))
    assert len(Xs) == 20 and set(ys.tolist()) == {0, 1}
    assert torch.equal(ys, torch.where(y[Xs.long()] == 3, 0, 1))  # 3 -> 0, 1 -> 1
    Xs, ys = class_subset(X, y, classes=(3, 1), n_per_class=4, seed=1)
    assert torch.bincount(ys).tolist() == [4, 4]
    Xs2, _ = class_subset(X, y, classes=(3, 1), n_per_class=4, seed=1)
    assert torch.equal(Xs, Xs2)  # same seed, same sample
    Xs3, _ = class_subset(X, y, classes=(3, 1), n_per_class=4, seed=2)
    assert not torch.equal(Xs, Xs3)  # another seed, another draw


def test_class_subset_bad_inputs():
    y = torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match="only 1 items"):
        class_subset(torch.zeros(3), y, (0, 1), n_per_class=2)
    with pytest.raises(ValueError, match="class 5 does not occur"):
        class_subset(torch.zeros(3), y, (0, 5))


def test_the_package_name_is_the_same_function():
    assert d2l.class_subset is class_subset

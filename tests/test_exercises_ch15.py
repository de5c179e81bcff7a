"""The checkers of chapter 15 (d2lmini/exercises/ch15.py): right answers pass, wrong ones get a hint that
says what is off, and the expected values are computed (by DistributedSampler itself where it can)."""

from __future__ import annotations

import torch
from torch import nn

from d2lmini.exercises import check, exercises_of


def test_six_checked_exercises():
    assert exercises_of(15) == [f"15.{k}" for k in range(1, 7)]


def test_unanswered_never_fails():
    v = check("15.1", None)
    assert not v and v.status == "unanswered"


def test_15_1_batch_arithmetic():
    assert check("15.1", (128, 512))
    assert "per-process" in check("15.1", (512, 512)).message
    assert "effective" in check("15.1", (128, 64)).message
    assert "tuple of two" in check("15.1", 128).message


def test_15_2_padding():
    assert check("15.2", {0: [0, 4, 8], 1: [1, 5, 9], 2: [2, 6, 0], 3: [3, 7, 1]})
    assert "drop_last=True" in check("15.2", {0: [0, 4], 1: [1, 5], 2: [2, 6], 3: [3, 7]}).message
    assert "every 4th position" in check("15.2", {r: [r, r, r] for r in range(4)}).message
    assert "one entry for each" in check("15.2", {0: [0]}).message


def test_15_3_set_epoch():
    assert check("15.3", (1, 3))
    assert "epoch stays 0" in check("15.3", (3, 3)).message
    assert "its own shuffle" in check("15.3", (1, 1)).message


def test_15_4_linear_scaling_with_tolerance():
    assert check("15.4", 0.1)
    assert check("15.4", 0.1 * (1 + 1e-8))
    assert "half as many steps" in check("15.4", 0.05).message
    assert "raises the learning rate" in check("15.4", 0.025).message
    assert not check("15.4", 0.2)


def _accumulate_right(model, x, y, k):
    for xb, yb in zip(x.chunk(k), y.chunk(k), strict=True):
        (nn.functional.cross_entropy(model(xb), yb) / k).backward()


def _accumulate_unscaled(model, x, y, k):
    for xb, yb in zip(x.chunk(k), y.chunk(k), strict=True):
        nn.functional.cross_entropy(model(xb), yb).backward()


def _accumulate_zeroing(model, x, y, k):
    for xb, yb in zip(x.chunk(k), y.chunk(k), strict=True):
        model.zero_grad()
        (nn.functional.cross_entropy(model(xb), yb) / k).backward()


def test_15_5_gradient_accumulation():
    assert check("15.5", _accumulate_right)
    assert "times too large" in check("15.5", _accumulate_unscaled).message
    assert "differs from the full batch" in check("15.5", _accumulate_zeroing).message
    assert "no gradients" in check("15.5", lambda model, x, y, k: None).message
    assert "pass your function" in check("15.5", 3).message


def test_15_6_strip_module():
    assert check("15.6", lambda sd: {k.removeprefix("module."): v for k, v in sd.items()})
    assert "does not know the key" in check("15.6", lambda sd: sd).message
    changed = check("15.6", lambda sd: {k.removeprefix("module."): torch.zeros_like(v)
                                        for k, v in sd.items()})
    assert "values changed" in changed.message
    assert "return a dict" in check("15.6", lambda sd: list(sd)).message

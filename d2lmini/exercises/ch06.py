"""Checks for chapter 06, LeNet.  Every expected value is computed here: from a fresh LeNet, from the
reader's own trained models and confusion matrix, or from the history of the reader's run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..config import by_mode, is_smoke
from ..data import FASHION_MNIST_CLASSES
from ..models import LeNet
from . import Feedback, correct, exercise, wrong


@exercise("06.1", title="parameters of the first convolution", where="section 6.1")
def _conv1(answer: int) -> Feedback:
    truth = sum(p.numel() for p in LeNet().features[0].parameters())
    if answer == truth:
        return correct("6 kernels × 5 × 5 weights, plus one bias per kernel: the summary's first row.")
    if answer == truth - 6:
        return wrong("you counted the weights only: each of the 6 kernels also has a bias.")
    return wrong("count 6 × (1 input channel × 5 × 5) weights, plus 6 biases.")


@exercise("06.2", title="the shape after the convolutional blocks", where="section 6.1")
def _shape(answer: Iterable[int]) -> Feedback:
    truth = tuple(LeNet().features(torch.zeros(8, 1, 28, 28)).shape)
    answer = tuple(int(v) for v in answer)
    if answer == truth:
        return correct("[batch, channels, height, width]: 8 images, 16 maps of 5 × 5 each.")
    if len(answer) != 4:
        return wrong(f"give four numbers, [batch, channels, height, width]; you gave {len(answer)}.")
    if answer[0] != 8:
        return wrong("the first axis is the batch: 8 images in, 8 out.")
    return wrong("follow the walk in 6.1 to the last pooling layer of `features` (before Flatten).")


def _accuracy(model: nn.Module, data: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    from ..train import evaluate

    return evaluate(model, data)["accuracy"]


@exercise("06.3", title="the peak of the one-cycle schedule", where="section 6.3",
          discuss=["which peak reached the higher test accuracy in 2 epochs, and by how much",
                   "how the average learning rate of a one-cycle schedule compares with its peak",
                   "what in the modern LeNet lets it train with a large peak learning rate"])
def _peak(answer: float, models: Mapping[float, nn.Module] | None = None,
          data: Any = None) -> Feedback:
    if models is None or data is None:
        return wrong("pass the two trained models and the test data: check('06.3', answer, "
                     "models={0.01: ..., 0.001: ...}, data=loaders.test).")
    if set(models) != {0.01, 0.001}:
        return wrong(f"models must have the keys 0.01 and 0.001 (the two MAX_LR values); "
                     f"got {sorted(models)}.")
    acc = {lr: _accuracy(m, data) for lr, m in models.items()}
    floor = by_mode(0.5, 0.2)
    if min(acc.values()) < floor:
        return wrong(f"a model reaches only {min(acc.values()):.3f} test accuracy: train both for 2 epochs "
                     f"as in 6.3 before comparing.")
    better = max(acc, key=acc.get)
    note = " (smoke mode: tiny data, so the ranking means little)" if is_smoke() else ""
    if abs(acc[0.01] - acc[0.001]) < 0.003:
        return correct(f"the two are within 0.003 ({acc[0.01]:.3f} and {acc[0.001]:.3f}): either answer "
                       f"is fair{note}.")
    if float(answer) == better:
        return correct(f"MAX_LR {better:g} reaches {acc[better]:.3f}, the other "
                       f"{acc[0.001 if better == 0.01 else 0.01]:.3f}{note}.")
    return wrong(f"your models say otherwise: MAX_LR 0.01 reaches {acc[0.01]:.3f}, 0.001 reaches "
                 f"{acc[0.001]:.3f}.")


@exercise("06.4", title="a small learning rate for LeNet-5", where="section 6.6",
          discuss=["which number the loss stays at, and what the network predicts while it does",
                   "why a sigmoid network with a small learning rate stays there (section 6.6)"])
def _small_lr(answer: float, history: Any = None) -> Feedback:
    if history is None:
        return wrong("pass the history of your run: check('06.4', value, history=history_4).")
    lrs, losses = history.history.get("lr", []), history.history.get("loss", [])
    if not losses:
        return wrong("that history has no epochs: train with d2l.fit and pass what it returns.")
    if not math.isclose(lrs[0], 0.1, rel_tol=1e-6):
        return wrong(f"the run used lr={lrs[0]:g}; train with lr=0.1.")
    if len(losses) != by_mode(3, 1):
        return wrong(f"train for {by_mode(3, 1)} epochs; the history has {len(losses)}.")
    if abs(float(answer) - losses[-1]) > 0.02:
        return wrong(f"your run's last epoch averaged a loss of {losses[-1]:.3f}, not {float(answer):.2f}.")
    if not math.isclose(float(answer), math.log(10), abs_tol=by_mode(0.02, 0.3)):
        return wrong(f"the loss is {losses[-1]:.3f}: compare it with the loss of guessing uniformly "
                     f"among 10 classes.")
    note = " (smoke mode: one short epoch, so the tolerance is relaxed)" if is_smoke() else ""
    return correct(f"{float(answer):.2f} ≈ ln 10 = {math.log(10):.3f}: the network still predicts every "
                   f"class with probability 1/10{note}.")


@exercise("06.5", title="the class predicted too often", where="section 6.4")
def _false_alarms(answer: str, cm: torch.Tensor | None = None) -> Feedback:
    if cm is None:
        return wrong("pass the confusion matrix: check('06.5', answer, cm=cm).")
    cm = torch.as_tensor(cm)
    wrong_as = cm.sum(dim=0) - cm.diag()  # column sums without the diagonal
    truth = FASHION_MNIST_CLASSES[int(wrong_as.argmax())]
    name = str(answer).strip().lower()
    if name == truth.lower():
        return correct(f"{truth}: {int(wrong_as.max())} test images of other classes were called {truth}.")
    rows = cm.sum(dim=1) - cm.diag()
    if name == FASHION_MNIST_CLASSES[int(rows.argmax())].lower():
        return wrong("that class is the one most often *mistaken* (a row); the question asks for the "
                     "column with the most off-diagonal counts.")
    return wrong("add up each column without its diagonal entry and take the largest.")

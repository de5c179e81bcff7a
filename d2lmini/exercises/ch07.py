"""Checks for chapter 07, AlexNet.  Every expected value is computed here: from a fresh AlexNet, or by
running the reader's own trained networks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ..config import by_mode, is_smoke
from ..models import AlexNet, MiniAlexNet
from . import Feedback, close, correct, exercise, wrong


@exercise("07.1", title="the first convolution of AlexNet", where="section 7.2")
def _side(answer: int) -> Feedback:
    truth = AlexNet().features[0](torch.zeros(1, 1, 224, 224)).shape[-1]
    if answer == truth:
        return correct(f"⌊(224 + 2 − 11) / 4⌋ + 1 = {truth}, the first row of the walk in 7.2.")
    if isinstance(answer, float) and close(answer, (224 + 2 - 11) / 4 + 1, atol=0.01):
        return wrong("round down before adding 1: a window that would run past the padded edge gives "
                     "no output, hence the floor ⌊·⌋.")
    return wrong("compute ⌊(n + 2p − k) / s⌋ + 1 with n = 224, k = 11, p = 1, s = 4.")


@exercise("07.2", title="the first dense layer's share", where="section 7.2")
def _dense(answer: Sequence[float]) -> Feedback:
    count, fraction = answer
    net = AlexNet()
    truth = sum(p.numel() for p in net.classifier[1].parameters())
    total = sum(p.numel() for p in net.parameters())
    if count != truth:
        if count == 6400 * 4096:
            return wrong("you counted the weights only: add one bias per output unit.")
        return wrong("a dense layer from 6400 to 4096 units has 6400 × 4096 weights and 4096 biases.")
    if fraction > 1:
        return wrong("give the fraction as a number between 0 and 1, not a percentage.")
    if not close(fraction, truth / total, rtol=0.01):
        return wrong(f"the count is right; divide it by the total number of parameters "
                     f"(the summary's total line), which gives a different fraction than {fraction:.3g}.")
    return correct(f"{truth:,} parameters, {truth / total:.0%} of AlexNet: one layer holds more than half.")


def _train_mode_accuracy(net: nn.Module, data: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    device = next(net.parameters()).device
    right = n = 0
    with torch.no_grad():
        for X, y in data:
            right += (net(X.to(device)).argmax(1) == y.to(device)).sum().item()
            n += len(y)
    return right / n


@exercise("07.3", title="dropout left on at evaluation", where="section 7.5",
          discuss=["whether the two training-mode accuracies agree, and how they compare with eval mode",
                   "what dropout does in each of the two modes",
                   "which mode a model should be evaluated in, and why d2l.evaluate switches it"])
def _train_mode(answer: Sequence[float], net: nn.Module | None = None, data: Any = None) -> Feedback:
    if net is None or data is None:
        return wrong("pass the network and the data: check('07.3', answer, net=net_3, data=few.val).")
    t1, t2, e = (float(v) for v in answer)
    from ..train import evaluate

    was_training = net.training
    truth_eval = evaluate(net, data)["accuracy"]
    net.train()
    passes = [_train_mode_accuracy(net, data) for _ in range(5)]
    net.train(was_training)
    if abs(e - truth_eval) > 1e-6:
        return wrong(f"your eval-mode accuracy {e:.4f} is not what the network gives in eval mode: "
                     f"the third number should be d2l.evaluate(net_3, few.val)['accuracy'].")
    low, high = min(passes) - 0.03, max(passes) + 0.03
    if not all(low <= t <= high for t in (t1, t2)):
        return wrong(f"in training mode this network scores between about {min(passes):.3f} and "
                     f"{max(passes):.3f}; yours ({t1:.3f}, {t2:.3f}) are outside that. Call net_3.train() "
                     f"before the loop, and do not call d2l.evaluate in it.")
    if t1 == t2:
        return wrong("your two training-mode accuracies are identical: did the second pass run in train "
                     "mode? Dropout draws new units to drop on every pass.")
    return correct(f"training mode: {t1:.3f} and {t2:.3f}, different each time and below the eval-mode "
                   f"{e:.3f}" if max(t1, t2) < e else
                   f"training mode: {t1:.3f} and {t2:.3f}, different each time; eval mode {e:.3f}.")


@exercise("07.4", title="MiniAlexNet at half the width", where="section 7.4",
          discuss=["which layers lose the most parameters when every channel count is halved, and why",
                   "how the training time and the test accuracy change, compared with the 3 seeds of "
                   "width 16"])
def _width(answer: int, model: nn.Module | None = None, data: Any = None) -> Feedback:
    if model is None or data is None:
        return wrong("pass the trained model and the test data: check('07.4', n, model=model_4, "
                     "data=fair.test).")
    if not isinstance(model, MiniAlexNet) or model.features[0].out_channels != 8:
        return wrong("build the model with d2l.models.MiniAlexNet(width=8, batch_norm=True).")
    if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return wrong("use batch_norm=True, as the width-16 runs of 7.4 do, so that the two compare.")
    truth = sum(p.numel() for p in model.parameters())
    if answer != truth:
        return wrong(f"count again: sum(p.numel() for p in model_4.parameters()); you gave {answer}.")
    from ..train import evaluate

    acc = evaluate(model, data)["accuracy"]
    floor = by_mode(0.6, 0.0)  # smoke mode trains for a few steps only
    if acc < floor:
        return wrong(f"the model reaches only {acc:.3f} on the test set: train it with train_fair as in "
                     f"7.4 before checking.")
    note = " (smoke mode: the accuracy threshold is relaxed)" if is_smoke() else ""
    width16 = sum(p.numel() for p in MiniAlexNet(batch_norm=True).parameters())
    return correct(f"{truth:,} parameters ({truth / width16:.0%} of width 16), test accuracy {acc:.3f}"
                   f"{note}.")

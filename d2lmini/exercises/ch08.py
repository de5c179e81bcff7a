"""Checks for chapter 08, Modern CNNs: batch normalization and residual networks.  Every expected value is
computed here: by rerunning one of the reader's training runs, by simulating ``nn.BatchNorm2d``, from
He et al.'s (2016) training schedule, or by evaluating the reader's model."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..config import by_mode, is_smoke
from . import Feedback, correct, exercise, wrong

DEPTHS = (8, 14, 20)


def _losses(values: Sequence[float]) -> Tensor:
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


def _final(step_losses: Sequence[float]) -> float:
    """The chapter's measure of a short run: the mean training loss of its last 8 steps."""
    return sum(step_losses[-8:]) / len(step_losses[-8:])


def _compare(plain: Tensor, residual: Tensor) -> str:
    gap, noise = (plain.mean() - residual.mean()).item(), 2 * max(plain.std().item(), residual.std().item())
    return "residual better" if gap > noise else "plain better" if -gap > noise else "within noise"


@exercise("08.1", title="depth with and without skips", where="section 8.2",
          discuss=["at which depth the plain network starts to fall behind, and why its gradients explain it",
                   "why the residual networks of every depth start alike",
                   "why three seeds, and what a longer run could change"])
def _depths(answer: Mapping[tuple[int, bool], Sequence[float]],
            train_fn: Callable[[int, bool, int], Sequence[float]] | None = None) -> Feedback:
    need = [(d, s) for d in DEPTHS for s in (False, True)]
    missing = [k for k in need if k not in answer]
    if missing:
        return wrong(f"give a list of final losses for every (depth, skip) with depth 8, 14, 20 and skip "
                     f"False (plain) or True (residual); missing: {missing}.")
    for key in need:
        v = _losses(answer[key])
        if len(v) < 3:
            return wrong(f"{key}: give one final loss per seed, for at least 3 seeds (0, 1, 2).")
        if not torch.isfinite(v).all() or (v <= 0).any() or (v > 20).any():
            return wrong(f"{key}: {v.tolist()} are not training losses (positive numbers, chance is "
                         f"ln 10 = 2.30).")
    if train_fn is not None:  # the reader's numbers must be what the chapter's train_briefly gives
        with torch.random.fork_rng():
            again = _final(train_fn(8, False, 0))
        if not math.isclose(again, float(answer[(8, False)][0]), rel_tol=1e-3, abs_tol=1e-4):
            return wrong(f"train_briefly(8, False, seed=0) gives a final loss of {again:.4f}, but your first "
                         f"value for (8, False) is {float(answer[(8, False)][0]):.4f}: list the seeds in the "
                         f"order 0, 1, 2 and take the mean of the last 8 step losses.")
    rows = []
    for d in DEPTHS:
        plain, residual = _losses(answer[(d, False)]), _losses(answer[(d, True)])
        rows.append(f"depth {d}: plain {plain.mean():.2f}, residual {residual.mean():.2f} "
                    f"({_compare(plain, residual)})")
    table = "; ".join(rows)
    return correct(f"a complete table over three depths and both kinds: {table}.")


@exercise("08.2", title="where to drop the LR", where="section 8.6",
          discuss=["what an early drop gains (a quieter, lower loss sooner) and loses (fewer noisy steps "
                   "that explore)", "why the drop point is chosen on validation data, never on the test set",
                   "why one seed cannot separate two drop points that are close"])
def _drop(answer: Mapping[int, Any]) -> Feedback:
    if not isinstance(answer, Mapping) or len(answer) < 2:
        return wrong("give a dict {drop epoch: history} with at least two drop points, e.g. {3: h3, 7: h7}.")
    if set(answer) <= {5}:
        return wrong("try drop points other than the chapter's 5, e.g. 3 and 7.")
    finals = {}
    for m, run in answer.items():
        h = getattr(run, "history", run)
        lr = [float(v) for v in h.get("lr", [])]
        if len(lr) <= int(m):
            return wrong(f"the run dropping after epoch {m} logged {len(lr)} epochs: train past the drop "
                         f"(10 epochs, as in the chapter).")
        want = [0.1] * int(m) + [0.01] * (len(lr) - int(m))
        if not all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(lr, want, strict=True)):
            used = ", ".join(f"{v:g}" for v in lr)
            return wrong(f"the run for drop point {m} used the LRs {used}: start at 0.1 and "
                         f"use MultiStepLR(opt, milestones=[{m}], gamma=0.1), stepped every epoch.")
        if not h.get("val_accuracy"):
            return wrong("pass the validation loader as val_data: the drop point is chosen on validation "
                         "accuracy, never on the test set.")
        finals[int(m)] = float(h["val_accuracy"][-1])
    best = max(finals, key=finals.get)
    shown = ", ".join(f"after epoch {m}: {a:.3f}" for m, a in sorted(finals.items()))
    return correct(f"final validation accuracy with the drop {shown}; best here: after epoch {best} "
                   f"(one seed each: a small difference is noise).")


def _batches_to_settle(momentum: float, tol: float = 0.01, limit: int = 10_000) -> int:
    """How many training batches nn.BatchNorm2d needs before its running mean is within ``tol`` (relative)
    of a constant batch mean, starting from its initial 0."""
    bn = nn.BatchNorm2d(1, momentum=momentum).double().train()
    x = torch.full((4, 1, 2, 2), 1.0, dtype=torch.float64)
    for k in range(1, limit + 1):
        bn(x)
        if abs(bn.running_mean.item() - 1.0) <= tol:
            return k
    raise RuntimeError("did not settle")


@exercise("08.3", title="BN's momentum", where="section 8.3",
          discuss=["why a model evaluated after only a few training batches (or after the data changed) gets "
                   "poor running estimates", "what momentum=None (a cumulative average) does instead",
                   "why PyTorch's momentum is the weight of the new batch, unlike an optimizer's momentum"])
def _bn_momentum(answer: Mapping[float, int]) -> Feedback:
    if not isinstance(answer, Mapping) or not {0.1, 0.01} <= set(map(float, answer)):
        return wrong("give a dict {0.1: batches, 0.01: batches}.")
    got = {float(m): int(k) for m, k in answer.items()}
    for m in (0.1, 0.01):
        want, k = _batches_to_settle(m), got[m]
        if k == want:
            continue
        if k == _batches_to_settle(1 - m if m < 0.5 else m):
            return wrong(f"momentum={m}: PyTorch's momentum is the weight of the *new* batch, "
                         f"running = (1 - momentum) * running + momentum * batch.")
        if k == round(1 / m):
            return wrong(f"momentum={m}: {k} = 1 / momentum is the time constant; to be within 1 % the old "
                         f"part (1 - momentum)^k must fall to 0.01.")
        if abs(k - want) == 1:
            return wrong(f"momentum={m}: off by one; after k batches the running mean is "
                         f"1 - (1 - momentum)^k of the batch mean (it starts at 0): find the first k with "
                         f"(1 - momentum)^k <= 0.01.")
        return wrong(f"momentum={m}: not {k}. The running mean starts at 0 and moves a fraction momentum of "
                     f"the way to each batch's mean: find the first k with (1 - momentum)^k <= 0.01.")
    return correct(f"{got[0.1]} and {got[0.01]} batches, as nn.BatchNorm2d itself gives: the smaller "
                   f"momentum averages over more batches and needs about ten times as many to settle.")


# He et al. (2016), section 4.2: batch 128, 45k/5k train/val split, LR 0.1 divided by 10 at 32k and 48k
# iterations, training stopped at 64k iterations.
_HE = {"batch": 128, "train": 45_000, "drops": (32_000, 48_000), "stop": 64_000}


@exercise("08.4", title="He et al.'s full recipe", where="section 8.6",
          discuss=["how many of He et al.'s epochs the notes' 10 epochs are, and what that says about the "
                   "70 % target against their 91 %", "what the full recipe costs on a GPU"])
def _full_recipe(answer: Mapping[str, Any], images_per_second: float) -> Feedback:
    if not isinstance(answer, Mapping) or not {"epochs", "milestones", "hours"} <= set(answer):
        return wrong("give a dict with 'epochs', 'milestones' (two epochs) and 'hours'.")
    per_epoch = _HE["train"] / _HE["batch"]
    epochs = _HE["stop"] / per_epoch
    drops = [d / per_epoch for d in _HE["drops"]]
    hours = _HE["stop"] * _HE["batch"] / float(images_per_second) / 3600
    if abs(float(answer["epochs"]) - epochs) > 2:
        return wrong(f"epochs: {answer['epochs']} is off. One epoch is 45,000 / 128 iterations; how many "
                     f"epochs are 64,000 iterations?")
    ms = [float(m) for m in answer["milestones"]]
    if len(ms) != 2 or any(abs(a - b) > 1.01 for a, b in zip(sorted(ms), drops, strict=True)):
        return wrong("milestones: convert the drops at 32,000 and 48,000 iterations into epochs "
                     "(45,000 / 128 iterations per epoch).")
    if not math.isclose(float(answer["hours"]), hours, rel_tol=0.1):
        return wrong(f"hours: {answer['hours']} is off. 64,000 iterations of 128 images, at the "
                     f"{images_per_second:.0f} images/s measured in section 8.6, in hours?")
    return correct(f"about {epochs:.0f} epochs with drops after about {drops[0]:.0f} and {drops[1]:.0f}; "
                   f"{hours:.1f} hours at {images_per_second:.0f} images/s. The notes' 10 epochs are "
                   f"{10 / epochs:.0%} of it.")


def _standin(n_train: int, n_test: int, seed: int = 0):
    """A generated stand-in for CIFAR-10 when it cannot be downloaded: 3x32x32 uint8 images of 10 classes,
    each a class colour under noise (easy: it checks a recipe runs and learns, not the 70 %)."""
    from ..data import Loaders, TensorLoader

    g = torch.Generator().manual_seed(seed)
    levels = torch.tensor([0.0, 0.5, 1.0])
    grid = torch.cartesian_prod(levels, levels, levels)           # 27 colours, at least 0.5 apart
    colours = grid[[0, 2, 6, 8, 13, 18, 20, 24, 26, 4]].view(10, 3, 1, 1)

    def draw(n: int) -> tuple[Tensor, Tensor]:
        y = torch.randint(0, 10, (n,), generator=g)
        x = 0.6 * colours[y] + 0.4 * torch.rand(n, 3, 32, 32, generator=g)
        return (x * 255).to(torch.uint8), y

    (X, y), (Xv, yv), (Xt, yt) = draw(n_train), draw(128), draw(n_test)
    return Loaders(TensorLoader(X, y, 64, shuffle=True, seed=seed), TensorLoader(Xv, yv, 256),
                   TensorLoader(Xt, yt, 256))


@exercise("08.5", title="70 % on CIFAR-10", where="section 8.6",
          discuss=["how the test accuracy after the drop compares with your reader-mode run's",
                   "how close training and test accuracy are after 10 epochs on 45,000 images, and why"])
def _target(train_recipe: Callable[[Any], Any], data: str = "") -> Feedback:
    from ..train import evaluate

    if data == "CIFAR-10":
        from ..cifar import cifar10_loaders
        from ..data import RandomFlipShift

        loaders = cifar10_loaders(batch_size=128, val_size=5000,
                                  transform=RandomFlipShift(max_shift=4, seed=0))
        target = by_mode(0.70, 0.15)
        where = "CIFAR-10's 10,000 test images"
    else:
        loaders, target = _standin(384, 512), 0.5  # chance is 0.1
        where = "a generated stand-in (CIFAR-10 is not available here)"
    result = train_recipe(loaders)
    net, history = result if isinstance(result, tuple) else (result, None)
    if not isinstance(net, nn.Module):
        return wrong("train_recipe(loaders) should return the trained network (or (network, history)).")
    if history is not None:
        lr = [float(v) for v in getattr(history, "history", history).get("lr", [])]
        if len(lr) > 10:
            return wrong(f"the notes allow 10 epochs; your run trained {len(lr)}.")
        if lr and (not math.isclose(lr[0], 0.1) or not math.isclose(lr[-1], 0.01)):
            return wrong(f"the notes' schedule starts at LR 0.1 and ends at 0.01; yours went "
                         f"{lr[0]:g} -> {lr[-1]:g}.")
    device = next(net.parameters()).device
    acc = evaluate(net, loaders.test, device=device)["accuracy"]
    if data != "CIFAR-10":
        if acc < target:
            return wrong(f"on the stand-in your recipe reaches {acc:.3f} (chance is 0.1; it should pass "
                         f"{target:.0%}): does it train on loaders.train with SGD at LR 0.1, then 0.01?")
        return correct(f"your recipe learns {where}: test accuracy {acc:.3f}, chance 0.1. The 70 % target "
                       f"itself is checked only on CIFAR-10: run this cell on an online machine.")
    smoke = " (smoke mode: the threshold is relaxed for the tiny run)" if is_smoke() else ""
    if acc >= target:
        return correct(f"test accuracy {acc:.3f} on {where}, above the notes' {target:.0%}{smoke}.")
    return wrong(f"test accuracy {acc:.3f} on {where}, below {target:.0%}{smoke}: train 10 full epochs "
                 f"(LR 0.1 for 5, then 0.01) with flip-and-crop augmentation, and evaluate in eval mode.")

"""Checks for chapter 09, Loss functions.  Every expected value is computed here, from torch's own losses
or by running what the exercise asks about; nothing is stored as a literal."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import by_mode, is_smoke
from . import Feedback, correct, exercise, wrong


def _smoke_note() -> str:
    return " (smoke mode: the threshold is relaxed for the tiny run)" if is_smoke() else ""


def _number(answer: Any) -> float:
    return float(answer.item() if isinstance(answer, Tensor) else answer)


@exercise("09.1", title="BCE by hand", where="section 9.3")
def _bce_by_hand(answer: float) -> Feedback:
    value = _number(answer)
    p, y = torch.tensor([0.9, 0.2], dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)
    want = nn.BCELoss()(p, y).item()
    if math.isclose(value, want, rel_tol=1e-3):
        return correct("the mean of -log 0.9 and -log 0.8: the negative example's right answer has "
                       "probability 1 - 0.2.")
    if math.isclose(value, 2 * want, rel_tol=1e-3):
        return wrong("that is the sum of the two losses; nn.BCELoss() averages them (reduction='mean').")
    if math.isclose(value, -(math.log(0.9) + math.log(0.2)) / 2, rel_tol=1e-3):
        return wrong("for the negative example (y = 0) the loss is -log(1 - p), not -log p.")
    if value < 0:
        return wrong("a cross-entropy is never negative: it is minus the log of a probability.")
    return wrong("not this value: write out -[y log p + (1 - y) log(1 - p)] for each example and average.")


def _focal_reference(z: Tensor, t: Tensor, gamma: float) -> Tensor:
    from torchvision.ops import sigmoid_focal_loss

    return sigmoid_focal_loss(z, t, alpha=-1, gamma=gamma, reduction="mean")


@exercise("09.2", title="focal loss", where="section 9.3 (log_sigmoid) and exercise 2",
          discuss=["what (1 - p_t)^gamma does to an easy example and to a hard one",
                   "why the loss must be computed from logits, not from sigmoid(z)"])
def _focal(focal_loss: Callable[..., Tensor]) -> Feedback:
    g = torch.Generator().manual_seed(5)
    z = torch.randn(64, generator=g) * 4
    z[:4] = torch.tensor([100.0, -100.0, 100.0, -100.0])     # confident, right and wrong
    t = (torch.rand(64, generator=g) > 0.8).float()
    t[:4] = torch.tensor([1.0, 0.0, 0.0, 1.0])
    for gamma in (0.0, 0.5, 2.0, 5.0):
        got = focal_loss(z, t, gamma=gamma)
        if not isinstance(got, Tensor) or got.numel() != 1:
            return wrong("focal_loss should return one number (a scalar tensor): the mean over all elements.")
        if not torch.isfinite(got):
            return wrong(f"at gamma={gamma:g} the loss is {got.item()} for logits of ±100: compute log p_t "
                         f"with log_sigmoid (log σ(z) and log σ(-z)), never as log(sigmoid(z)).")
        want = _focal_reference(z, t, gamma)
        if not torch.allclose(got.float(), want, rtol=1e-4, atol=1e-5):
            if gamma == 0:
                return wrong("at gamma = 0 the focal loss is plain binary cross-entropy on logits; yours "
                             f"gives {got.item():.4f} instead of {want.item():.4f}.")
            return wrong(f"at gamma={gamma:g} yours differs from torchvision's sigmoid_focal_loss by "
                         f"{(got - want).abs().item():.3g}: check the factor (1 - p_t)**gamma, with "
                         f"p_t = σ(z) for y = 1 and 1 - σ(z) for y = 0.")
    return correct("equal to torchvision's sigmoid_focal_loss for gamma = 0, 0.5, 2 and 5, even at logits "
                   "of ±100; at gamma = 0 it is BCEWithLogitsLoss.")


def _kl(teacher_logits: Tensor, student_logits: Tensor, T: float) -> Tensor:
    """Mean over samples of KL(softmax(t/T) || softmax(s/T)), written out."""
    log_p = F.log_softmax(teacher_logits / T, dim=1)
    log_q = F.log_softmax(student_logits / T, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(1).mean()


@exercise("09.3", title="distillation loss", where="section 9.5",
          discuss=["why the gradients of the softened loss shrink like 1/T², hence the factor T²",
                   "what a high temperature reveals about the teacher's wrong classes"])
def _distill(distill_loss: Callable[..., Tensor]) -> Feedback:
    g = torch.Generator().manual_seed(3)
    s = torch.randn(8, 5, generator=g, dtype=torch.float64) * 3
    t = torch.randn(8, 5, generator=g, dtype=torch.float64) * 3
    for T in (1.0, 2.0, 4.0):
        got = distill_loss(s, t, T=T)
        if not isinstance(got, Tensor) or got.numel() != 1:
            return wrong("distill_loss should return one number: the divergence averaged over the batch.")
        got = got.double()
        want = T**2 * _kl(t, s, T)

        def near(x: Tensor, got: Tensor = got) -> bool:
            return bool(torch.isclose(got, x, rtol=1e-5, atol=1e-9))

        if near(want):
            continue
        if near(want / s.shape[1]):
            return wrong("yours is C times too small: reduction='mean' divides by N·C; the divergence per "
                         "sample is reduction='batchmean'.")
        if near(want * s.shape[0]):
            return wrong("yours is N times too large: average over the batch (reduction='batchmean').")
        if T != 1 and near(want / T**2):
            return wrong(f"at T={T:g} yours is T² times too small: multiply the divergence by T**2.")
        if near(T**2 * _kl(s, t, T)):
            return wrong("yours measures the divergence the wrong way round: KLDivLoss takes the *student's* "
                         "log-probabilities as input and the teacher's as target.")
        if T != 1 and near(T**2 * _kl(t, s, 1.0)):
            return wrong("divide both networks' logits by T before the (log-)softmax.")
        return wrong(f"at T={T:g} yours gives {got.item():.5f}, the expected value is different: input "
                     f"log_softmax(student / T), target log_softmax(teacher / T) with log_target=True, "
                     f"reduction='batchmean', times T**2.")
    return correct("T² times the per-sample KL divergence from the teacher to the student, for T = 1, 2, 4.")


def _collapse(path: str) -> str:
    merged = [s for i, s in enumerate(path) if i == 0 or s != path[i - 1]]
    return "".join(s for s in merged if s != "-")


def _count(label: str, T: int) -> int:
    return sum(_collapse("".join(p)) == label for p in itertools.product("-ab", repeat=T))


@exercise("09.4", title="counting alignments", where="section 9.7")
def _alignments(answer: int) -> Feedback:
    value = _number(answer)
    want = _count("aab", 5)
    if value == want:
        return correct("that many of the 243 paths of length 5 collapse to 'aab'.")
    if value == _count("ab", 5):
        return wrong("that is the count for 'ab'; 'aab' needs a blank between its two a's.")
    if value == _count("aab", 4):
        return wrong("that is the count for T = 4; the exercise asks for paths of length 5.")
    return wrong(("too few" if value < want else "too many") + ": enumerate the paths with "
                 "itertools.product('-ab', repeat=5) and keep those that collapse to 'aab'.")


def _largest_pull(loss: nn.Module) -> float:
    pred = torch.tensor([10.0], requires_grad=True)
    loss(pred, torch.zeros(1)).backward()
    return float(pred.grad.abs().item())


@exercise("09.5", title="the pull of an outlier", where="section 9.2 (the gradient row of the figure)")
def _pull(answer: Any) -> Feedback:
    try:
        huber, smooth = (_number(v) for v in answer)
    except (TypeError, ValueError):
        return wrong("give a pair of numbers: (Huber's largest pull, SmoothL1's largest pull).")
    want_h = _largest_pull(nn.HuberLoss(delta=2.0, reduction="sum"))
    want_s = _largest_pull(nn.SmoothL1Loss(beta=2.0, reduction="sum"))
    ok_h, ok_s = math.isclose(huber, want_h, rel_tol=1e-3), math.isclose(smooth, want_s, rel_tol=1e-3)
    if ok_h and ok_s:
        return correct("Huber's gradient is the residual clipped to ±delta, SmoothL1's (Huber / beta) is "
                       "clipped to ±1, whatever beta is.")
    if not ok_h:
        return wrong("Huber's pull is off: its gradient is the residual d, clipped to [-delta, delta].")
    return wrong("SmoothL1's pull is off: SmoothL1Loss(beta) = HuberLoss(delta=beta) / beta, so divide "
                 "Huber's gradient by beta.")


@exercise("09.6", title="softer class weights", where="section 9.10",
          discuss=["where the rare classes' recall lands between plain and 1/n weighting, and why",
                   "what label smoothing does to the confidence of the predictions",
                   "which of the three models you would ship, given what each mistake costs"])
def _softer_weights(answer: Any, counts: Tensor, recall: Mapping[str, Tensor],
                    acc: Mapping[str, Tensor] | None = None) -> Feedback:
    weights, result = answer
    mine = result[0] if isinstance(result, tuple | list) else result
    weights = torch.as_tensor(weights, dtype=torch.float64).flatten().cpu()
    mine = torch.as_tensor(mine, dtype=torch.float64).flatten().cpu()
    n = torch.as_tensor(counts, dtype=torch.float64).flatten().cpu()
    if weights.shape != n.shape or mine.shape != n.shape:
        return wrong(f"give one weight and one recall per class ({len(n)} each).")
    ratio = weights * n.sqrt()
    if not (weights > 0).all() or not torch.allclose(ratio, ratio.mean(), rtol=1e-3):
        return wrong("the weights are not proportional to 1/sqrt(n_c): compute counts.float() ** -0.5 and "
                     "normalise them any way you like.")
    if not ((mine >= 0) & (mine <= 1)).all():
        return wrong("a recall lies between 0 and 1: pass the first value train_mlp returns.")
    minority = [0, 6]
    rare = mine[minority].mean().item()
    plain, weighted = (torch.as_tensor(recall[k], dtype=torch.float64)[:, minority].mean().item()
                       for k in ("plain CE", "weighted CE"))
    floor = by_mode(0.6, 0.2)
    if mine.mean().item() < floor:
        return wrong(f"the mean recall is only {mine.mean().item():.3f}: train with train_mlp and the "
                     f"default epochs before comparing.{_smoke_note()}")
    place = ("between the two" if min(plain, weighted) <= rare <= max(plain, weighted)
             else "above both" if rare > max(plain, weighted) else "below both")
    return correct(f"rare-class recall {rare:.3f}, {place} runs of section 9.10 (plain {plain:.3f}, 1/n "
                   f"weights {weighted:.3f}); mean recall {mine.mean().item():.3f}.{_smoke_note()}")

"""The checkers of chapters 09 and 10 (d2lmini/exercises/ch09.py, ch10.py): right answers pass, wrong ones
get a hint that says what is off, and the expected values are computed, not stored."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from d2lmini.exercises import check, exercises_of


def test_both_chapters_have_six_checked_exercises():
    assert exercises_of(9) == [f"09.{k}" for k in range(1, 7)]
    assert exercises_of(10) == [f"10.{k}" for k in range(1, 7)]


# ---- chapter 09 -------------------------------------------------------------------------------------------

def test_09_1_bce_by_hand():
    right = -(math.log(0.9) + math.log(0.8)) / 2
    assert check("09.1", right)
    assert "sum" in check("09.1", 2 * right).message
    assert "-log(1 - p)" in check("09.1", -(math.log(0.9) + math.log(0.2)) / 2).message
    assert "never negative" in check("09.1", -0.3).message


def _focal(logits, target, gamma=2.0):
    log_pt = target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits)
    return ((1 - log_pt.exp()) ** gamma * -log_pt).mean()


def test_09_2_focal_loss():
    assert check("09.2", _focal)

    def unstable(logits, target, gamma=2.0):
        p = torch.sigmoid(logits)
        pt = target * p + (1 - target) * (1 - p)
        return ((1 - pt) ** gamma * -torch.log(pt)).mean()

    assert "log_sigmoid" in check("09.2", unstable).message

    def no_factor(logits, target, gamma=2.0):
        return _focal(logits, target, 0.0)

    assert "(1 - p_t)**gamma" in check("09.2", no_factor).message


def _distill(s, t, T=2.0, reduction="batchmean", square=True):
    kl = nn.KLDivLoss(reduction=reduction, log_target=True)
    return (T**2 if square else 1.0) * kl(F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1))


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
def test_09_3_distillation():
    assert check("09.3", _distill)
    assert "batchmean" in check("09.3", lambda s, t, T=2.0: _distill(s, t, T, "mean")).message
    assert "T**2" in check("09.3", lambda s, t, T=2.0: _distill(s, t, T, square=False)).message
    assert "wrong way round" in check("09.3", lambda s, t, T=2.0: _distill(t, s, T)).message


def test_09_4_counting_alignments():
    from d2lmini.exercises.ch09 import _count

    assert check("09.4", _count("aab", 5))
    assert "'ab'" in check("09.4", _count("ab", 5)).message
    assert "T = 4" in check("09.4", _count("aab", 4)).message


def test_09_5_pull_of_an_outlier():
    def pull(loss):
        pred = torch.tensor([10.0], requires_grad=True)
        loss(pred, torch.zeros(1)).backward()
        return pred.grad.item()

    h = pull(nn.HuberLoss(delta=2.0, reduction="sum"))
    s = pull(nn.SmoothL1Loss(beta=2.0, reduction="sum"))
    assert check("09.5", (h, s))
    assert "Huber" in check("09.5", (10.0, s)).message
    assert "SmoothL1" in check("09.5", (h, h)).message
    assert "pair" in check("09.5", 3.0).message


def test_09_6_softer_weights_checks_the_weights_and_the_recall(monkeypatch):
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    counts = torch.tensor([50, 3000, 3000, 3000, 3000, 3000, 50, 3000, 3000, 3000])
    recall = {"plain CE": torch.full((3, 10), 0.8), "weighted CE": torch.full((3, 10), 0.85)}
    recall["plain CE"][:, [0, 6]] = 0.2
    recall["weighted CE"][:, [0, 6]] = 0.6
    mine = torch.full((10,), 0.85)
    mine[[0, 6]] = 0.4
    w = counts.float() ** -0.5
    v = check("09.6", (w, mine), counts=counts, recall=recall)
    assert v and "between the two" in v.message
    assert "1/sqrt(n_c)" in check("09.6", (1 / counts.float(), mine), counts=counts, recall=recall).message
    assert "between 0 and 1" in check("09.6", (w, mine * 10), counts=counts, recall=recall).message
    assert "one weight" in check("09.6", (w[:5], mine), counts=counts, recall=recall).message


# ---- chapter 10 -------------------------------------------------------------------------------------------

@torch.no_grad()
def _heavy_ball(p, state, lr, momentum=0.9, weight_decay=0.0):
    g = p.grad + weight_decay * p
    prev = state.get("prev", p.clone())
    step = momentum * (p - prev) - lr * g
    state["prev"] = p.clone()
    p += step


def test_10_1_heavy_ball():
    assert check("10.1", _heavy_ball)

    @torch.no_grad()
    def sgd(p, state, lr, momentum=0.9, weight_decay=0.0):
        p -= lr * p.grad

    assert "plain SGD" in check("10.1", sgd).message
    assert "in place" in check("10.1", lambda p, state, lr, momentum=0.9: None).message


def test_10_2_largest_stable_lr():
    from d2lmini.exercises.ch10 import _rosenbrock

    h = torch.autograd.functional.hessian(_rosenbrock, torch.tensor([1.0, 1.0], dtype=torch.float64))
    lam = torch.linalg.eigvalsh(h)
    assert check("10.2", 2 / lam.max().item())
    assert "1 / λ_max" in check("10.2", 1 / lam.max().item()).message
    assert "λ_min" in check("10.2", 2 / lam.min().item()).message
    assert "quadratic" in check("10.2", 0.5).message


def test_10_3_adam_first_step():
    assert check("10.3", 1.0)
    assert "bias correction" in check("10.3", 0.1).message
    assert not check("10.3", 3.0)


def test_10_4_warmup_cosine():
    def factor(step):
        return (step + 1) / 10 if step < 10 else 0.5 * (1 + math.cos(math.pi * (step - 10) / 90))

    assert check("10.4", factor)
    assert "warm-up" in check("10.4", lambda s: 1.0 if s < 10 else factor(s)).message
    assert "cosine part" in check("10.4", lambda s: factor(s) if s < 10 else 1.0).message


def test_10_5_two_remedies_compares_paired_seeds(monkeypatch):
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)     # smoke mode relaxes the threshold
    reg = {"baseline": [0.59, 0.60, 0.58], "augmentation": [0.74, 0.75, 0.73]}
    v = check("10.5", [0.75, 0.76, 0.74], reg=reg)
    assert v and "augmentation" in v.message
    assert not check("10.5", [0.59, 0.60, 0.58], reg=reg)
    assert "one result per seed" in check("10.5", [0.75], reg=reg).message


def test_10_6_parameter_groups():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    right = torch.optim.SGD([
        {"params": [net[0].weight], "lr": 0.01, "weight_decay": 5e-4},
        {"params": [net[0].bias], "lr": 0.01, "weight_decay": 0.0},
        {"params": [net[2].weight], "weight_decay": 5e-4},
        {"params": [net[2].bias], "weight_decay": 0.0},
    ], lr=0.1, momentum=0.9)
    assert check("10.6", right, net=net)
    one_lr = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    assert "lr=0.1" in check("10.6", one_lr, net=net).message
    missing = torch.optim.SGD([{"params": [net[0].weight], "weight_decay": 5e-4},
                               {"params": [net[0].bias]}], lr=0.01, momentum=0.9)
    assert "in no group" in check("10.6", missing, net=net).message
    assert "SGD" in check("10.6", torch.optim.Adam(net.parameters()), net=net).message

"""Every hand-written loss in d2lmini.losses equals torch's, for every reduction; Dice and IoU by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import d2lmini as d2l
from d2lmini import losses as L

REDUCTIONS = ["none", "mean", "sum"]


def close(a: torch.Tensor, b: torch.Tensor, atol: float | None = None) -> None:
    """Equal up to rounding: 1e-10 in float64 (the comparisons with torch), 1e-6 in float32."""
    assert a.shape == b.shape, (a.shape, b.shape)
    if atol is None:
        atol = 1e-10 if a.dtype == torch.float64 else 1e-6
    torch.testing.assert_close(a, b.to(a.dtype), atol=atol, rtol=atol)


@pytest.fixture
def g() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------------------------------------- Dice / IoU

def test_module_is_reexported() -> None:
    assert d2l.losses.DiceLoss is L.DiceLoss and d2l.losses.iou is L.iou


def test_dice_loss_hand_computed_binary() -> None:
    # logits 0 -> p = 0.5 everywhere; 4 pixels, 2 of them foreground
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    # inter = 0.5 + 0.5 = 1, |P| = 2, |Y| = 2 -> dice = (2 + 1) / (4 + 1) = 0.6 with eps = 1
    close(L.dice_loss(logits, target, eps=1.0), torch.tensor(0.4))
    close(L.dice_loss(logits, target, eps=0.0), torch.tensor(0.5))


def test_dice_loss_perfect_and_empty() -> None:
    target = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    logits = (target * 2 - 1) * 100.0                      # sigmoid -> exactly the mask
    per = L.dice_loss(logits, target, reduction="none")
    assert per.shape == (2,)
    assert per.abs().max() < 1e-6                            # perfect masks, also the empty one
    close(L.dice_loss(-logits, target, eps=0.0, reduction="none")[0], torch.tensor(1.0))  # all wrong


def test_dice_loss_reductions_and_gradient() -> None:
    logits = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    target = (torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    per = L.dice_loss(logits, target, reduction="none")
    close(L.dice_loss(logits, target), per.mean())
    close(L.dice_loss(logits, target, reduction="sum"), per.sum())
    L.dice_loss(logits, target).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_dice_loss_multiclass_hand_computed() -> None:
    # 2 classes, 2 pixels; equal logits -> p = 0.5 for both classes at each pixel
    logits = torch.zeros(1, 2, 2)
    target = torch.tensor([[0, 1]])
    # class 0: inter 0.5, |P| 1, |Y| 1 -> dice 1/2 with eps 0; class 1 the same -> loss 0.5
    close(L.dice_loss(logits, target, eps=0.0), torch.tensor(0.5))
    perfect = torch.tensor([[[9.0, -9.0], [-9.0, 9.0]]]) * 10
    assert L.dice_loss(perfect, target, eps=0.0) < 1e-6


def test_dice_loss_bad_shapes() -> None:
    with pytest.raises(ValueError, match="does not match"):
        L.dice_loss(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="does not fit"):
        L.dice_loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 5, dtype=torch.long))


def test_dice_module_and_bce_dice() -> None:
    logits = torch.randn(2, 1, 5, 5, generator=torch.Generator().manual_seed(3))
    target = (torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(4)) > 0.7).float()
    close(L.DiceLoss()(logits, target), L.dice_loss(logits, target))
    expected = F.binary_cross_entropy_with_logits(logits, target) + L.dice_loss(logits, target)
    close(L.BCEDiceLoss()(logits, target), expected)
    close(L.DiceLoss(bce_weight=0.5)(logits, target),
          0.5 * F.binary_cross_entropy_with_logits(logits, target) + L.dice_loss(logits, target))
    y = torch.randint(0, 3, (2, 5, 5), generator=torch.Generator().manual_seed(5))
    mc = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(6))
    close(L.BCEDiceLoss()(mc, y), F.cross_entropy(mc, y) + L.dice_loss(mc, y))
    assert "bce_weight=1.0" in repr(L.BCEDiceLoss())
    with pytest.raises(ValueError, match="bce_weight"):
        L.DiceLoss(bce_weight=-1)


def test_iou_hand_computed() -> None:
    a = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])
    b = torch.tensor([[1, 0, 1, 0], [1, 0, 0, 0]])
    # overall: intersection 2 (two shared ones), union 4 -> 0.5
    close(L.iou(a, b), torch.tensor(0.5))
    # per sample: 1/3 and 1/1
    close(L.iou(a, b, per_sample=True), torch.tensor([1 / 3, 1.0]))
    close(L.iou(a.bool(), b.float()), torch.tensor(0.5))
    empty = torch.zeros(2, 3)
    close(L.iou(empty, empty, per_sample=True), torch.tensor([1.0, 1.0]))
    close(L.iou(empty, torch.ones(2, 3)), torch.tensor(0.0))


def test_iou_bad_inputs() -> None:
    with pytest.raises(ValueError, match="binary mask"):
        L.iou(torch.tensor([0.3, 0.9]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="shapes differ"):
        L.iou(torch.zeros(2, 1, 3, 3), torch.zeros(2, 3, 3))


# ---------------------------------------------------------------------------------------------- vs torch

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce(g: torch.Generator, reduction: str) -> None:
    p = torch.rand(6, 5, generator=g, dtype=torch.float64)
    y = (torch.rand(6, 5, generator=g) > 0.5).double()
    w = torch.rand(6, 5, generator=g, dtype=torch.float64)
    close(L.bce_loss(p, y, reduction=reduction), F.binary_cross_entropy(p, y, reduction=reduction))
    close(L.bce_loss(p, y, w, reduction=reduction), F.binary_cross_entropy(p, y, w, reduction=reduction))
    # saturated probabilities: torch clamps log at -100, so do we
    p_sat = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    y_sat = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    close(L.bce_loss(p_sat, y_sat, reduction=reduction),
          F.binary_cross_entropy(p_sat, y_sat, reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(g: torch.Generator, reduction: str) -> None:
    z = torch.randn(6, 4, generator=g, dtype=torch.float64) * 50       # large logits too
    y = torch.rand(6, 4, generator=g, dtype=torch.float64)
    w = torch.rand(4, generator=g, dtype=torch.float64)
    pw = torch.rand(4, generator=g, dtype=torch.float64) * 3
    close(L.bce_with_logits_loss(z, y, reduction=reduction),
          F.binary_cross_entropy_with_logits(z, y, reduction=reduction))
    close(L.bce_with_logits_loss(z, y, w, pw, reduction=reduction),
          F.binary_cross_entropy_with_logits(z, y, w, reduction=reduction, pos_weight=pw))
    assert torch.isfinite(L.bce_with_logits_loss(torch.tensor([1000.0]), torch.tensor([0.0]))).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("use_ignore", [False, True])
def test_cross_entropy(g: torch.Generator, reduction: str, smoothing: float, use_weight: bool,
                       use_ignore: bool) -> None:
    x = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (8,), generator=g)
    kw: dict = {"label_smoothing": smoothing, "reduction": reduction}
    if use_weight:
        kw["weight"] = torch.rand(5, generator=g, dtype=torch.float64) + 0.1
    if use_ignore:
        y[[1, 4]] = -1
        kw["ignore_index"] = -1
    close(L.cross_entropy_loss(x, y, **kw), F.cross_entropy(x, y, **kw))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_spatial_and_soft_targets(g: torch.Generator, reduction: str) -> None:
    x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (2, 4, 4), generator=g)
    w = torch.rand(3, generator=g, dtype=torch.float64)
    close(L.cross_entropy_loss(x, y, w, reduction=reduction), F.cross_entropy(x, y, w, reduction=reduction))
    q = torch.softmax(torch.randn(6, 4, generator=g, dtype=torch.float64), 1)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64)
    w4 = torch.rand(4, generator=g, dtype=torch.float64)
    close(L.cross_entropy_loss(z, q, w4, label_smoothing=0.2, reduction=reduction),
          F.cross_entropy(z, q, w4, label_smoothing=0.2, reduction=reduction))
    with pytest.raises(ValueError, match="probability targets"):
        L.cross_entropy_loss(z, q[:, :3])


def test_stable_building_blocks() -> None:
    x = torch.tensor([-1000.0, -3.0, 0.0, 3.0, 1000.0])
    close(L.softplus(x), F.softplus(x), atol=1e-6)
    close(L.log_sigmoid(x), F.logsigmoid(x), atol=1e-6)
    close(L.log_softmax(x.view(1, -1), dim=1), F.log_softmax(x.view(1, -1), dim=1), atol=1e-6)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(g: torch.Generator, reduction: str, log_target: bool) -> None:
    logq = F.log_softmax(torch.randn(4, 6, generator=g, dtype=torch.float64), 1)
    p = torch.softmax(torch.randn(4, 6, generator=g, dtype=torch.float64), 1)
    if not log_target:
        p[0, 0] = 0.0                                                # 0 log 0 = 0
    t = torch.log(p) if log_target else p
    close(L.kl_div_loss(logq, t, reduction, log_target), F.kl_div(logq, t, reduction=reduction,
                                                                   log_target=log_target))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses(g: torch.Generator, reduction: str) -> None:
    x = torch.randn(5, 7, generator=g, dtype=torch.float64) * 3
    y = torch.randn(5, 7, generator=g, dtype=torch.float64)
    close(L.l1_loss(x, y, reduction), F.l1_loss(x, y, reduction=reduction))
    close(L.mse_loss(x, y, reduction), F.mse_loss(x, y, reduction=reduction))
    for beta in (0.0, 0.5, 1.0, 2.5):
        close(L.smooth_l1_loss(x, y, beta, reduction), F.smooth_l1_loss(x, y, reduction=reduction, beta=beta))
    for delta in (0.5, 1.0, 2.5):
        close(L.huber_loss(x, y, delta, reduction), F.huber_loss(x, y, reduction=reduction, delta=delta))
    # SmoothL1(beta) * beta == Huber(delta=beta)
    close(L.smooth_l1_loss(x, y, 2.0, reduction) * 2.0, L.huber_loss(x, y, 2.0, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll(g: torch.Generator, reduction: str, log_input: bool, full: bool) -> None:
    y = torch.poisson(torch.full((20,), 3.0, dtype=torch.float64), generator=g)
    x = torch.randn(20, generator=g, dtype=torch.float64)
    if not log_input:
        x = x.abs() * 2                                              # a rate must be >= 0
    close(L.poisson_nll_loss(x, y, log_input, full, reduction=reduction),
          F.poisson_nll_loss(x, y, log_input=log_input, full=full, reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_losses(g: torch.Generator, reduction: str) -> None:
    x1 = torch.randn(10, generator=g, dtype=torch.float64)
    x2 = torch.randn(10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (10,), generator=g).double() * 2 - 1
    for m in (0.0, 0.5):
        close(L.margin_ranking_loss(x1, x2, y, m, reduction),
              F.margin_ranking_loss(x1, x2, y, margin=m, reduction=reduction))
    close(L.soft_margin_loss(x1 * 40, y, reduction), F.soft_margin_loss(x1 * 40, y, reduction=reduction))
    s = torch.randn(6, 4, generator=g, dtype=torch.float64)
    c = torch.randint(0, 4, (6,), generator=g)
    w = torch.rand(4, generator=g, dtype=torch.float64)
    for p in (1, 2):
        for weight in (None, w):
            close(L.multi_margin_loss(s, c, p, 0.7, weight, reduction),
                  F.multi_margin_loss(s, c, p=p, margin=0.7, weight=weight, reduction=reduction))
    with pytest.raises(ValueError, match="p must be"):
        L.multi_margin_loss(s, c, p=3)
    a = torch.randn(6, 5, generator=g, dtype=torch.float64)
    b = torch.randn(6, 5, generator=g, dtype=torch.float64)
    yy = torch.tensor([1, -1, 1, -1, -1, 1], dtype=torch.float64)
    for m in (0.0, 0.3):
        close(L.cosine_embedding_loss(a, b, yy, m, reduction),
              F.cosine_embedding_loss(a, b, yy, margin=m, reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc(g: torch.Generator, reduction: str) -> None:
    T, N, C = 12, 3, 5
    logp = F.log_softmax(torch.randn(T, N, C, generator=g, dtype=torch.float64), 2)
    targets = torch.tensor([[1, 2, 2, 3], [4, 1, 0, 0], [2, 0, 0, 0]])   # padded; note the repeated 2
    in_len = torch.tensor([12, 9, 5])
    tgt_len = torch.tensor([4, 2, 1])
    expected = F.ctc_loss(logp, targets, in_len, tgt_len, reduction=reduction)
    close(L.ctc_loss(logp, targets, in_len, tgt_len, reduction=reduction), expected)
    flat = torch.cat([targets[n, : tgt_len[n]] for n in range(N)])      # concatenated form
    close(L.ctc_loss(logp, flat, in_len, tgt_len, reduction=reduction), expected)


def test_ctc_hand_computed_and_impossible() -> None:
    # T = 2, classes {blank, a}; target "a": alignments "a-", "-a", "aa" all collapse to "a"
    p = torch.tensor([[0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)    # p[t, class]
    logp = torch.log(p).unsqueeze(1)
    expected = -math.log(0.4 * 0.3 + 0.6 * 0.7 + 0.4 * 0.7)
    got = L.ctc_loss(logp, torch.tensor([[1]]), torch.tensor([2]), torch.tensor([1]), reduction="sum")
    close(got, torch.tensor(expected, dtype=torch.float64))
    # "aa" needs a blank between the two a's: 3 steps at least, impossible in 2 -> inf
    # (or 0 with zero_infinity)
    args = (logp, torch.tensor([[1, 1]]), torch.tensor([2]), torch.tensor([2]))
    assert torch.isinf(L.ctc_loss(*args, reduction="sum"))
    close(L.ctc_loss(*args, reduction="sum", zero_infinity=True),
          F.ctc_loss(*args, reduction="sum", zero_infinity=True))


def test_gradients_match_torch(g: torch.Generator) -> None:
    x = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (5,), generator=g)
    (gx,) = torch.autograd.grad(L.cross_entropy_loss(x, y, label_smoothing=0.1), x)
    (gt,) = torch.autograd.grad(nn.CrossEntropyLoss(label_smoothing=0.1)(x, y), x)
    close(gx, gt)


def test_bad_reduction() -> None:
    with pytest.raises(ValueError, match="reduction must be"):
        L.mse_loss(torch.zeros(2), torch.zeros(2), reduction="avg")  # type: ignore[arg-type]

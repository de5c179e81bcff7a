"""d2lmini.losses: the Dice loss, BCE + Dice and IoU that chapter 14 trains with, checked by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

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


# ---------------------------------------------------------------------------------------------- the API

def test_only_what_later_chapters_reuse_is_public() -> None:
    # chapter 9 writes the torch.nn losses by hand in the notebook; the package keeps the segmentation ones
    assert sorted(L.__all__) == ["BCEDiceLoss", "DiceLoss", "dice_loss", "iou"]
    assert not hasattr(L, "cross_entropy_loss") and not hasattr(L, "ctc_loss")


def test_dice_gradient_matches_finite_differences() -> None:
    logits = torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64,
                         requires_grad=True)
    target = (torch.rand(2, 1, 3, 3, generator=torch.Generator().manual_seed(8)) > 0.5).double()
    assert torch.autograd.gradcheck(lambda z: L.BCEDiceLoss()(z, target), (logits,))


def test_bad_reduction() -> None:
    with pytest.raises(ValueError, match="reduction must be"):
        L.dice_loss(torch.zeros(1, 4), torch.zeros(1, 4), reduction="avg")  # type: ignore[arg-type]

"""Segmentation losses and metrics that chapter 14 (U-Net) trains with: Dice loss, BCE + Dice, and IoU.

Chapter 9 (the loss-function zoo) writes every ``torch.nn`` loss out by hand, checks it against torch and
builds the Dice loss step by step; the package keeps only what a later chapter reuses::

    loss_fn = d2l.losses.BCEDiceLoss()          # BCE-with-logits + Dice, on raw logits
    loss = loss_fn(model(x), mask)              # mask: float {0, 1}, same shape as the logits
    score = d2l.losses.iou(model(x) > 0, mask)  # intersection over union of binary masks

``reduction`` takes ``'none'`` (one loss per sample), ``'mean'`` or ``'sum'``, with torch's meaning.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Reduction = Literal["none", "mean", "sum"]

__all__ = ["BCEDiceLoss", "DiceLoss", "dice_loss", "iou"]


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply torch's ``reduction``: ``'none'`` -> as is, ``'mean'`` -> average, ``'sum'`` -> total."""
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}.")


# ---------------------------------------------------------------------------------------------------------
# Segmentation: Dice loss and IoU
# ---------------------------------------------------------------------------------------------------------

def _dice_inputs(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, bool]:
    """Probabilities and a matching float target, both ``[N, K, P]`` (K channels, P pixels); and whether
    the task is multi-class (softmax + one-hot) rather than binary (sigmoid)."""
    if not target.dtype.is_floating_point and target.ndim == logits.ndim - 1 and logits.ndim >= 2:
        if target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(f"class-index target {tuple(target.shape)} does not fit logits "
                             f"{tuple(logits.shape)}: expected {tuple(logits.shape[:1] + logits.shape[2:])}.")
        C = logits.shape[1]
        probs = torch.softmax(logits, dim=1).flatten(2)
        onehot = nn.functional.one_hot(target.long(), C).movedim(-1, 1).flatten(2).to(probs.dtype)
        return probs, onehot, True
    if target.shape != logits.shape:
        raise ValueError(
            f"dice_loss: target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}. "
            f"Binary masks: give a float 0/1 target of the logits' shape (e.g. mask.float().unsqueeze(1)); "
            f"C classes: logits [N, C, H, W] and an integer target [N, H, W].")
    probs = torch.sigmoid(logits).reshape(logits.shape[0], 1, -1)
    return probs, target.reshape(target.shape[0], 1, -1).to(probs.dtype), False


def dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0, reduction: Reduction = "mean") -> Tensor:
    """Soft Dice loss ``1 - (2 |P ∩ Y| + eps) / (|P| + |Y| + eps)`` on **logits**, one value per sample.

    * Binary: ``logits`` of any shape ``[N, ...]`` and a float 0/1 ``target`` of the same shape;
      ``P = sigmoid(logits)``.
    * ``C`` classes: ``logits [N, C, ...]`` and an integer ``target [N, ...]``; ``P = softmax(logits)``,
      ``Y`` one-hot, the Dice score averaged over the classes.

    ``|P ∩ Y| = sum(P * Y)``, ``|P| = sum(P)`` over each sample's pixels; ``eps`` (smoothing) keeps an empty
    mask predicted empty at loss 0 rather than 0/0.  ``reduction`` combines the per-sample losses.
    """
    probs, tgt, _ = _dice_inputs(logits, target)
    inter = (probs * tgt).sum(-1)
    dice = (2 * inter + eps) / (probs.sum(-1) + tgt.sum(-1) + eps)   # [N, K]
    return _reduce(1 - dice.mean(dim=1), reduction)


class DiceLoss(nn.Module):
    """Dice loss as a module (see :func:`dice_loss`), optionally plus ``bce_weight`` times a pixel-wise
    cross-entropy (``BCEWithLogits`` for binary masks, ``CrossEntropy`` for class-index targets)::

        loss_fn = DiceLoss()                  # Dice only
        loss_fn = DiceLoss(bce_weight=1.0)    # BCE + Dice, the same as BCEDiceLoss()
    """

    def __init__(self, eps: float = 1.0, bce_weight: float = 0.0) -> None:
        super().__init__()
        if bce_weight < 0:
            raise ValueError(f"bce_weight must be >= 0, got {bce_weight}.")
        self.eps, self.bce_weight = eps, bce_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        loss = dice_loss(logits, target, self.eps)
        if self.bce_weight:
            if target.dtype.is_floating_point:
                pixel = nn.functional.binary_cross_entropy_with_logits(logits, target)
            else:
                pixel = nn.functional.cross_entropy(logits, target.long())
            loss = loss + self.bce_weight * pixel
        return loss

    def extra_repr(self) -> str:
        return f"eps={self.eps}, bce_weight={self.bce_weight}"


class BCEDiceLoss(DiceLoss):
    """``bce_weight * BCEWithLogits + Dice``: the per-pixel term gives smooth, well-scaled gradients from the
    first step, the Dice term keeps a small foreground from being swamped by the background."""

    def __init__(self, eps: float = 1.0, bce_weight: float = 1.0) -> None:
        super().__init__(eps, bce_weight)


def iou(pred_mask: Tensor, true_mask: Tensor, per_sample: bool = False) -> Tensor:
    """Intersection over union (交并比) ``|A ∩ B| / |A ∪ B|`` of two binary masks (bool or 0/1 values).

    Over all pixels at once (a scalar), or with ``per_sample=True`` one value per sample ``[N]``.  Two
    empty masks agree perfectly: IoU 1.  Threshold logits first: ``iou(logits > 0, mask)``.
    """
    if pred_mask.shape != true_mask.shape:
        raise ValueError(f"iou: mask shapes differ, {tuple(pred_mask.shape)} vs {tuple(true_mask.shape)}. "
                         f"For [N, 1, H, W] logits and [N, H, W] masks use iou(logits[:, 0] > 0, mask).")
    for name, m in (("pred_mask", pred_mask), ("true_mask", true_mask)):
        if m.dtype != torch.bool and not ((m == 0) | (m == 1)).all():
            raise ValueError(f"iou: {name} must be a binary mask (bool or 0/1 values); threshold "
                             f"probabilities or logits first, e.g. iou(logits > 0, mask).")
    a, b = pred_mask.bool(), true_mask.bool()
    dims = tuple(range(1, a.ndim)) if per_sample else tuple(range(a.ndim))
    inter = (a & b).sum(dim=dims).float()
    union = (a | b).sum(dim=dims).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))

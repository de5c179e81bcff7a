"""Loss functions written out by hand, one plain function per ``torch.nn`` loss, plus Dice loss and IoU.

Chapter 9 (the loss-function zoo) checks every function here against ``torch.nn.functional`` and uses
them to show what each formula does.  Each takes ``reduction`` in ``{'none', 'mean', 'sum'}`` with torch's
meaning: ``'none'`` keeps one loss per element (or per sample), ``'mean'`` averages, ``'sum'`` adds up.
For real training use torch's versions (faster, fused); these are for reading.

Segmentation (chapter 14, U-Net) uses :func:`dice_loss`, :class:`DiceLoss`, :class:`BCEDiceLoss` and
:func:`iou`::

    loss_fn = d2l.losses.BCEDiceLoss()          # BCE-with-logits + Dice, on raw logits
    loss = loss_fn(model(x), mask)              # mask: float {0, 1}, same shape as the logits
    score = d2l.losses.iou(model(x) > 0, mask)  # intersection over union of binary masks
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

Reduction = Literal["none", "mean", "sum"]

__all__ = [
    "BCEDiceLoss", "DiceLoss", "bce_loss", "bce_with_logits_loss", "cosine_embedding_loss",
    "cross_entropy_loss", "ctc_loss", "dice_loss", "huber_loss", "iou", "kl_div_loss", "l1_loss",
    "log_sigmoid", "log_softmax",
    "margin_ranking_loss", "mse_loss", "multi_margin_loss", "poisson_nll_loss", "smooth_l1_loss",
    "soft_margin_loss", "softplus",
]


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
# Numerically stable building blocks
# ---------------------------------------------------------------------------------------------------------

def softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))`` computed without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


def log_sigmoid(x: Tensor) -> Tensor:
    """``log(sigmoid(x)) = -softplus(-x)``, finite even for very large ``|x|``."""
    return -softplus(-x)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``x - logsumexp(x)``, with the maximum subtracted first so ``exp`` never overflows."""
    m = x.amax(dim=dim, keepdim=True).detach()
    return x - m - torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))


# ---------------------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------------------

def bce_loss(probs: Tensor, target: Tensor, weight: Tensor | None = None,
             reduction: Reduction = "mean") -> Tensor:
    """Binary cross-entropy on probabilities, as ``nn.BCELoss``:
    ``-w [y log p + (1 - y) log(1 - p)]``; like torch, each log is clamped at -100 so ``p = 0`` or ``1``
    gives a large finite loss instead of ``inf``."""
    loss = -(target * torch.log(probs).clamp(min=-100) + (1 - target) * torch.log(1 - probs).clamp(min=-100))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def bce_with_logits_loss(logits: Tensor, target: Tensor, weight: Tensor | None = None,
                         pos_weight: Tensor | None = None, reduction: Reduction = "mean") -> Tensor:
    """Binary cross-entropy on logits, as ``nn.BCEWithLogitsLoss``:
    ``-w [pos_weight * y log sigmoid(z) + (1 - y) log sigmoid(-z)]``, computed with :func:`log_sigmoid`
    so that large ``|z|`` never produces ``log(0)``."""
    pos = target * log_sigmoid(logits)
    if pos_weight is not None:
        pos = pos * pos_weight
    loss = -(pos + (1 - target) * log_sigmoid(-logits))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def cross_entropy_loss(logits: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                       label_smoothing: float = 0.0, reduction: Reduction = "mean") -> Tensor:
    """Cross-entropy (交叉熵) on logits ``[N, C]`` or ``[N, C, d1, ...]``, as ``nn.CrossEntropyLoss``.

    ``target`` holds class indices (``[N]`` / ``[N, d1, ...]``) or class probabilities (same shape as
    ``logits``).  With indices, each item's loss is
    ``(1 - eps) * w[y] * (-log p_y) + eps / C * sum_c w[c] * (-log p_c)`` (label smoothing ``eps``);
    items whose target is ``ignore_index`` contribute 0, and ``'mean'`` divides by the sum of ``w[y]``
    over the items that are not ignored (by their count when ``weight`` is None).
    """
    C = logits.shape[1]
    logp = log_softmax(logits, dim=1)
    w = weight if weight is not None else logits.new_ones(C)
    w_b = w.view(1, C, *([1] * (logits.ndim - 2)))                  # broadcast over [N, C, d1, ...]
    if target.dtype.is_floating_point:                               # class probabilities
        if target.shape != logits.shape:
            raise ValueError(f"probability targets must have the logits' shape {tuple(logits.shape)}, "
                             f"got {tuple(target.shape)}.")
        q = target * (1 - label_smoothing) + label_smoothing / C
        loss = -(w_b * q * logp).sum(dim=1)
        return _reduce(loss, reduction)                               # 'mean' divides by N (x d1 ...)
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))       # any valid index; masked below
    nll = -logp.gather(1, safe.unsqueeze(1)).squeeze(1) * w[safe]
    smooth = -(w_b * logp).sum(dim=1) / C
    loss = ((1 - label_smoothing) * nll + label_smoothing * smooth) * keep
    if reduction == "mean":
        return loss.sum() / (w[safe] * keep).sum()
    return _reduce(loss, reduction)


def kl_div_loss(input: Tensor, target: Tensor,
                reduction: Literal["none", "mean", "sum", "batchmean"] = "mean",
                log_target: bool = False) -> Tensor:
    """KL divergence (KL散度), as ``nn.KLDivLoss``: ``input`` holds **log**-probabilities, ``target``
    probabilities (or log-probabilities with ``log_target=True``); each element is
    ``p * (log p - input)`` with ``0 log 0 = 0``.  ``'batchmean'`` divides the sum by the batch size,
    which is the true KL divergence per sample; ``'mean'`` divides by the number of elements."""
    if log_target:
        loss = torch.exp(target) * (target - input)
    else:
        loss = torch.xlogy(target, target) - target * input
    if reduction == "batchmean":
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction)


def margin_ranking_loss(x1: Tensor, x2: Tensor, y: Tensor, margin: float = 0.0,
                        reduction: Reduction = "mean") -> Tensor:
    """``max(0, -y (x1 - x2) + margin)`` with ``y = 1`` when ``x1`` should rank higher, ``-1`` otherwise,
    as ``nn.MarginRankingLoss``."""
    return _reduce((-y * (x1 - x2) + margin).clamp(min=0), reduction)


def soft_margin_loss(input: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """``log(1 + exp(-y x))`` for labels ``y`` in ``{-1, 1}`` (logistic loss), as ``nn.SoftMarginLoss``."""
    return _reduce(softplus(-target * input), reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, reduction: Reduction = "mean") -> Tensor:
    """Multi-class hinge loss, as ``nn.MultiMarginLoss``: for scores ``x [N, C]`` and class ``y``,
    ``sum_{i != y} w[y] * max(0, margin - x[y] + x[i])^p / C``."""
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2 (as in torch), got {p}.")
    C = input.shape[1]
    x_y = input.gather(1, target.unsqueeze(1))
    h = (margin - x_y + input).clamp(min=0) ** p
    h = h.scatter(1, target.unsqueeze(1), 0.0)                        # the i == y term is left out
    if weight is not None:
        h = h * weight[target].unsqueeze(1)
    return _reduce(h.sum(dim=1) / C, reduction)


def cosine_embedding_loss(x1: Tensor, x2: Tensor, y: Tensor, margin: float = 0.0,
                          reduction: Reduction = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` for similar pairs (``y = 1``), ``max(0, cos(x1, x2) - margin)`` for dissimilar
    ones (``y = -1``), as ``nn.CosineEmbeddingLoss`` (rows of ``[N, D]`` inputs are compared)."""
    eps = 1e-12                                                        # torch's guard against |x| = 0
    cos = (x1 * x2).sum(-1) / torch.sqrt(((x1 * x1).sum(-1) + eps) * ((x2 * x2).sum(-1) + eps))
    loss = torch.where(y == 1, 1 - cos, (cos - margin).clamp(min=0))
    return _reduce(loss, reduction)


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor,
             blank: int = 0, reduction: Reduction = "mean", zero_infinity: bool = False) -> Tensor:
    """Connectionist Temporal Classification, as ``nn.CTCLoss``, by the forward algorithm in log space.

    ``log_probs [T, N, C]`` (log-softmax over ``C`` classes, ``blank`` included); ``targets`` padded
    ``[N, S]`` or all concatenated ``[sum(target_lengths)]``.  The loss of a sample is
    ``-log`` of the total probability of every alignment (对齐) that collapses to its target: the target
    with blanks between (and around) its labels, ``y' = [b, y1, b, y2, ..., b]``, where each step either
    stays on the same symbol, moves one on, or skips a blank between two different labels.
    ``'mean'`` divides each sample's loss by its target length, then averages over the batch.
    """
    T, N, _ = log_probs.shape
    offsets = torch.cumsum(target_lengths, 0) - target_lengths
    losses = []
    for n in range(N):
        L = int(target_lengths[n])
        y = targets[n, :L] if targets.ndim == 2 else targets[int(offsets[n]): int(offsets[n]) + L]
        ext = torch.full((2 * L + 1,), blank, dtype=torch.long, device=log_probs.device)
        ext[1::2] = y                                                   # [b, y1, b, y2, ..., yL, b]
        S = len(ext)
        can_skip = torch.zeros(S, dtype=torch.bool, device=log_probs.device)
        can_skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])       # jump over a blank to a new label
        neg_inf = log_probs.new_tensor(-math.inf)
        alpha = torch.full((S,), -math.inf, dtype=log_probs.dtype, device=log_probs.device)
        lp = log_probs[:, n, :]
        alpha[0] = lp[0, ext[0]]
        if S > 1:
            alpha[1] = lp[0, ext[1]]
        for t in range(1, int(input_lengths[n])):
            stay = alpha
            step = torch.cat([neg_inf.view(1), alpha[:-1]])
            skip = torch.where(can_skip, torch.cat([neg_inf.expand(2), alpha[:-2]]), neg_inf)
            alpha = torch.logsumexp(torch.stack([stay, step, skip]), dim=0) + lp[t, ext]
        ends = alpha[-2:] if S > 1 else alpha[-1:]                      # end on the last label or final blank
        losses.append(-torch.logsumexp(ends, dim=0))
    loss = torch.stack(losses)
    if zero_infinity:
        loss = torch.where(torch.isinf(loss), torch.zeros_like(loss), loss)
    if reduction == "mean":
        return (loss / target_lengths.clamp(min=1).to(loss.dtype)).mean()
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------------------
# Regression
# ---------------------------------------------------------------------------------------------------------

def l1_loss(input: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Absolute error ``|x - y|``, as ``nn.L1Loss`` (mean absolute error, 平均绝对误差)."""
    return _reduce((input - target).abs(), reduction)


def mse_loss(input: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Squared error ``(x - y)^2``, as ``nn.MSELoss`` (mean squared error, 均方误差)."""
    return _reduce((input - target) ** 2, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, beta: float = 1.0, reduction: Reduction = "mean") -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = x - y``), as
    ``nn.SmoothL1Loss``; ``beta = 0`` is the L1 loss.  Equals ``huber_loss(delta=beta) / beta``."""
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(torch.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target: Tensor, delta: float = 1.0, reduction: Reduction = "mean") -> Tensor:
    """``0.5 d^2`` where ``|d| <= delta``, else ``delta (|d| - 0.5 delta)``, as ``nn.HuberLoss``:
    quadratic for small errors, linear (so robust to outliers) for large ones."""
    d = (input - target).abs()
    return _reduce(torch.where(d <= delta, 0.5 * d**2, delta * (d - 0.5 * delta)), reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, reduction: Reduction = "mean") -> Tensor:
    """Negative log-likelihood of counts ``y`` under a Poisson distribution with rate ``lambda``, as
    ``nn.PoissonNLLLoss``: ``exp(x) - y x`` when ``input`` is ``x = log lambda`` (``log_input=True``),
    else ``lambda - y log(lambda + eps)``.  ``full`` adds Stirling's approximation of ``log(y!)``,
    ``y log y - y + 0.5 log(2 pi y)``, for ``y > 1``."""
    if log_input:
        loss = torch.exp(input) - target * input
    else:
        loss = input - target * torch.log(input + eps)
    if full:
        stirling = target * torch.log(target) - target + 0.5 * torch.log(2 * math.pi * target)
        loss = loss + torch.where(target > 1, stirling, torch.zeros_like(stirling))
    return _reduce(loss, reduction)


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

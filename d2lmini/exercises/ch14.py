"""Checks for chapter 14, A small U-Net for semantic segmentation.

Expected values are computed here: IoU and Dice from the exercise's counts (14.1), the bottleneck's shape
by running the encoder (14.2), the reader's trained models measured on held-out canvases (14.3-14.5),
against the best brightness threshold on the same canvases where that is the baseline (14.5).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..config import by_mode, is_smoke
from . import Feedback, close, correct, exercise, wrong

#: A trained U-Net reaches this held-out IoU (reader mode); smoke mode trains for one epoch on a few
#: canvases, so there any model that runs passes, and the message says so.
MIN_IOU = 0.6


def _held_out_iou(model: nn.Module, images: Tensor, masks: Tensor) -> float:
    from d2lmini.losses import iou
    from d2lmini.train import predict

    logits, _ = predict(model, [(images[i:i + 100], masks[i:i + 100]) for i in range(0, len(images), 100)])
    return iou(logits > 0, masks).item()


def _threshold() -> float:
    return by_mode(MIN_IOU, 0.0)


def _smoke_note() -> str:
    return " (smoke mode: the threshold for a trained model is relaxed to 0)" if is_smoke() else ""


@exercise("14.1", title="IoU and Dice by hand", where="section 14.3")
def _iou_dice(answer: Any) -> Feedback:
    n_inter, n_pred, n_true = 5, 6, 8
    exp_iou = n_inter / (n_pred + n_true - n_inter)
    exp_dice = 2 * n_inter / (n_pred + n_true)
    try:
        got_iou, got_dice = (float(v) for v in answer)
    except (TypeError, ValueError):
        return wrong("give a tuple of two numbers, (iou, dice).")
    ok_iou, ok_dice = close(got_iou, exp_iou, atol=1e-3), close(got_dice, exp_dice, atol=1e-3)
    if ok_iou and ok_dice:
        return correct("and Dice = 2 IoU / (1 + IoU), as 14.3 says.")
    if ok_dice and close(got_iou, exp_dice, atol=1e-3):
        return wrong("both numbers are the Dice coefficient: IoU divides by the union.")
    if not ok_iou:
        return wrong("IoU = |A ∩ B| / |A ∪ B|, and the union is |A| + |B| - |A ∩ B|.")
    return wrong("the IoU is right; Dice = 2 |A ∩ B| / (|A| + |B|).")


@exercise("14.2", title="the bottleneck's shape", where="section 14.2")
def _bottleneck(shape: Any) -> Feedback:
    from d2lmini.segmentation import UNet

    net = UNet(base=8, depth=3)
    x = torch.zeros(1, 1, 48, 48)
    with torch.no_grad():
        for step in [net.inc, *net.downs]:
            x = step(x)
    expected = tuple(x.shape)
    try:
        got = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        return wrong("give the shape as a tuple of four ints, (N, C, H, W).")
    if got == expected:
        return correct("three poolings halve 48 three times, and the channels double each time.")
    if len(got) != 4:
        return wrong(f"a feature map has four dimensions (N, C, H, W), you gave {len(got)}.")
    if got[2:] != expected[2:]:
        return wrong("height and width: each of the three Down steps halves them.")
    return wrong("the channels: base 8, doubled at every Down step.")


def _is_trained_unet(model: Any) -> str | None:
    from d2lmini.segmentation import UNet

    if not isinstance(model, UNet):
        return f"pass the trained UNet itself, not a {type(model).__name__}."
    return None


@exercise("14.3", title="Dice only, BCE only", where="sections 14.4-14.5",
          discuss=["which loss learns faster in the first epoch, and why BCE's per-pixel gradients help",
                   "whether Dice alone or BCE alone reaches the held-out IoU of BCE + Dice",
                   "the class imbalance: what BCE alone does to the small garments"])
def _losses(models: Any, images: Tensor, masks: Tensor, reference: float) -> Feedback:
    if not isinstance(models, dict) or set(models) != {"dice", "bce"}:
        return wrong("give a dict {'dice': model, 'bce': model} of the two trained U-Nets.")
    scores = {}
    for name, model in models.items():
        problem = _is_trained_unet(model)
        if problem:
            return wrong(f"{name}: {problem}")
        scores[name] = _held_out_iou(model, images, masks)
    low = {k: v for k, v in scores.items() if v < _threshold()}
    text = (f"held-out IoU: Dice only {scores['dice']:.3f}, BCE only {scores['bce']:.3f}, "
            f"BCE + Dice {reference:.3f}")
    if low:
        return wrong(f"{text}; {', '.join(low)} did not train (IoU below {_threshold():.2f}): use "
                     f"train_unet(model, loss_fn=...) on a fresh UNet(base=8, depth=3).")
    return correct(text + _smoke_note() + ".")


@exercise("14.4", title="bilinear upsampling", where="section 14.2",
          discuss=["where the parameters go: a 2x2 transposed convolution against a 1x1 convolution",
                   "whether the IoU difference is larger than the seed-to-seed spread of 14.7"])
def _bilinear(model: Any, images: Tensor, masks: Tensor, reference: float) -> Feedback:
    from d2lmini.segmentation import UNet

    problem = _is_trained_unet(model)
    if problem:
        return wrong(problem)
    if not isinstance(model.ups[0].up, nn.Sequential):
        return wrong("this U-Net upsamples with transposed convolutions: build it with bilinear=True.")
    n_bilinear = sum(p.numel() for p in model.parameters())
    n_transposed = sum(p.numel() for p in UNet(base=8, depth=model.depth).parameters())
    score = _held_out_iou(model, images, masks)
    text = (f"{n_bilinear:,} parameters against {n_transposed:,} with transposed convolutions; held-out "
            f"IoU {score:.3f} against {reference:.3f}")
    if score < _threshold():
        return wrong(f"{text}: it did not train (IoU below {_threshold():.2f}); train it with train_unet.")
    return correct(text + _smoke_note() + ".")


@exercise("14.5", title="a harder task: six blobs", where="section 14.1",
          discuss=["how much the brightness threshold loses with more bright clutter, and why",
                   "how much the U-Net loses, and what it uses that the threshold cannot (shape, context)"])
def _six_blobs(model: Any) -> Feedback:
    from d2lmini.losses import iou
    from d2lmini.segmentation import make_canvases

    problem = _is_trained_unet(model)
    if problem:
        return wrong(problem)
    X, M = make_canvases(by_mode(300, 64), size=48, seed=1, train=False, blobs=6)
    best = max(iou(X > t, M).item() for t in torch.linspace(0.1, 0.9, 33))
    score = _held_out_iou(model, X, M)
    text = (f"on held-out canvases with six blobs: your U-Net {score:.3f}, the best brightness threshold "
            f"{best:.3f} (chosen on these very canvases, so a generous baseline)")
    if score < _threshold():
        return wrong(f"{text}; train the U-Net longer or check that it saw canvases made with blobs=6.")
    if score < best and not is_smoke():
        return wrong(f"{text}: the U-Net should beat a brightness threshold by far.")
    return correct(text + _smoke_note() + ".")

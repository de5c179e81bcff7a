"""Which pixels did the network look at?  Saliency maps and Grad-CAM with plain autograd and hooks.

* :func:`saliency_map` (Simonyan et al., 2014): the gradient of one class score with respect to the input
  image.  A large ``|gradient|`` at a pixel means a small change there changes the score a lot.
  ``smooth=k`` averages it over ``k`` noisy copies of the image (SmoothGrad).
* :func:`grad_cam` (Selvaraju et al., 2017): weight the feature maps of a conv layer by the average
  gradient of the class score over each map, sum, keep the positive part, and upsample to the image.
  ``hires=True`` (HiResCAM, Draelos & Carin, 2020) multiplies each map by its gradient position by
  position instead of by the average, which is faithful to a network that flattens its feature maps into
  a dense layer (as LeNet does), where every position has its own weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .train import eval_mode


def _targets(model_out: Tensor, target: Tensor | int | None) -> Tensor:
    """The class index of every image: ``target`` (int or ``[N]``) or, if None, the predicted class."""
    n = model_out.shape[0]
    if target is None:
        return model_out.argmax(dim=1)
    t = torch.as_tensor(target, device=model_out.device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"target has {t.numel()} class indices but x holds {n} images: give one per image.")
    return t


def _check_batch(x: Tensor) -> None:
    if x.ndim != 4:
        hint = " Add the batch dimension with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise ValueError(f"expected a batch of images [N, C, H, W], got shape {tuple(x.shape)}.{hint}")


def saliency_map(model: nn.Module, x: Tensor, target: Tensor | int | None = None, smooth: int = 0,
                 noise: float = 0.15) -> Tensor:
    """``|d score_target / d x|``, the largest over colour channels: one map ``[N, H, W]`` per image.

    ``target`` is the class whose score is explained (an int, or one index per image); by default the
    model's own prediction for ``x``.  With ``smooth=k`` (SmoothGrad, Smilkov et al., 2017) the map is
    the average over ``k`` copies of ``x`` with Gaussian noise of std ``noise`` added, which removes
    much of the pixel-to-pixel noise of a single gradient.  The model runs in eval mode (restored
    afterwards); its parameter gradients are left untouched.
    """
    _check_batch(x)
    if smooth < 0 or noise < 0:
        raise ValueError(f"smooth and noise must be >= 0, got smooth={smooth}, noise={noise}.")
    with eval_mode(model):
        x = x.detach()
        if target is None:
            with torch.no_grad():
                target = model(x).argmax(dim=1)  # explain the prediction for the clean image
        copies = [x] if smooth == 0 else [x + noise * torch.randn_like(x) for _ in range(smooth)]
        total = torch.zeros_like(x)
        for xc in copies:
            xc = xc.clone().requires_grad_(True)
            out = model(xc)
            t = _targets(out, target)
            score = out.gather(1, t[:, None]).sum()  # images are independent in eval mode: one backward
            (grad,) = torch.autograd.grad(score, xc)
            total += grad.abs()
    return (total / len(copies)).amax(dim=1)


def grad_cam(model: nn.Module, layer: nn.Module, x: Tensor, target: Tensor | int | None = None,
             hires: bool = False) -> Tensor:
    """Grad-CAM heat maps ``[N, H, W]`` in ``[0, 1]`` (per image) for the output of ``layer`` (a block
    of ``model`` that outputs feature maps, best the last ReLU of the conv part), upsampled to the size of
    ``x``.  ``target`` as in :func:`saliency_map`.

    The map is ``ReLU(sum_k w_k * A_k)`` over the layer's maps ``A_k``, with ``w_k`` the average of the
    gradient ``dS/dA_k`` (Grad-CAM) or, with ``hires=True``, the gradient itself at every position
    (HiResCAM).  A Grad-CAM map is all zero (drawn blank) when the weighted sum is negative everywhere:
    the averaged evidence of this layer speaks against the class.  Such a map is returned as zeros."""
    _check_batch(x)
    if not any(m is layer for m in model.modules()):
        raise ValueError(f"layer {layer} is not a submodule of the model: pass e.g. model.features[6].")
    saved: dict[str, Tensor] = {}

    def keep(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        saved["act"] = output
        output.register_hook(lambda g: saved.__setitem__("grad", g))  # gradient w.r.t. this output

    handle = layer.register_forward_hook(keep)
    try:
        with eval_mode(model):
            x = x.detach().clone().requires_grad_(True)  # so the graph exists even if the model is frozen
            out = model(x)
            t = _targets(out, target)
            out.gather(1, t[:, None]).sum().backward(inputs=[x])
    finally:
        handle.remove()
    act, grad = saved["act"].detach(), saved["grad"].detach()
    if act.ndim != 4:
        raise ValueError(f"layer must output feature maps [N, C, h, w], got shape {tuple(act.shape)}.")
    weights = grad if hires else grad.mean(dim=(2, 3), keepdim=True)  # one weight per channel
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))   # [N, 1, h, w]
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    top = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return cam / top

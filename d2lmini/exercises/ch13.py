"""Checks for chapter 13, Looking inside a trained network (TensorBoard, saliency maps, Grad-CAM).

Every expected value is computed here, from the reader's model or from a reference computation: a
reference callback on the same training run (13.1), autograd (13.2), a fresh ``BatchNorm2d`` (13.3), the
same untrained network rebuilt from its seed (13.4), the trained network's features (13.5).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import Feedback, close, correct, exercise, wrong


def _total_grad_norm(model: nn.Module) -> float:
    return float(torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in model.parameters()
                                if p.grad is not None)))


@exercise("13.1", title="a GradNorm callback", where="sections 13.1-13.2")
def _grad_norm(callback_cls: Any, device: torch.device | str = "cpu") -> Feedback:
    import d2lmini as d2l

    class Reference(d2l.Callback):
        def before_step(self, learn: Any) -> None:
            self.norm = _total_grad_norm(learn.model)

    log_dir = d2l.data_root() / "runs" / "13_exercise_1"
    shutil.rmtree(log_dir, ignore_errors=True)  # start empty: a tag left by an earlier run must not count
    X, y = d2l.fashion_mnist_tensors(train=True)
    data = d2l.TensorLoader(X[:512], y[:512], batch_size=128)
    torch.manual_seed(0)
    ref = Reference()
    d2l.Learner(d2l.models.ModernLeNet(), data, callbacks=[callback_cls(log_dir), ref],
                device=device).fit(1)
    try:
        tags = d2l.read_tags(log_dir)["scalars"]
    except d2l.tboard.NoEventFilesError:
        return wrong(f"no event files in runs/{log_dir.name}: create a SummaryWriter(log_dir) in "
                     f"before_fit and close it in after_fit.")
    if "grad_norm" not in tags:
        return wrong(f"the event files hold {tags} but no 'grad_norm' scalar: call "
                     f"self.writer.add_scalar('grad_norm', value, learn.epoch) in after_epoch.")
    points = d2l.read_scalars(log_dir)["grad_norm"]
    if [s for s, _ in points] != [1]:
        return wrong(f"after one epoch 'grad_norm' should have one point at step 1, got steps "
                     f"{[s for s, _ in points]}: log once per epoch, with step=learn.epoch.")
    value = points[0][1]
    if not close(value, ref.norm, rtol=1e-3, atol=1e-5):
        return wrong(f"you logged {value:.4g}, but the last step's total gradient norm was "
                     f"{ref.norm:.4g}: take the square root of the sum of every parameter's squared "
                     f"gradient, in before_step (before the optimizer step and zero_grad).")
    return correct(f"'grad_norm' = {value:.4g} after epoch 1, the norm of the last step's gradient.")


@exercise("13.2", title="gradient x input", where="section 13.7")
def _grad_times_input(fn: Any, model: nn.Module, x: Tensor) -> Feedback:
    from d2lmini.train import eval_mode

    with eval_mode(model):
        xr = x.detach().clone().requires_grad_(True)
        out = model(xr)
        (grad,) = torch.autograd.grad(out.gather(1, out.argmax(1, keepdim=True)).sum(), xr)
        ref = (grad * xr).abs().sum(1).detach()
        got = fn(model, x.detach().clone())
    model.zero_grad(set_to_none=True)  # the trained network keeps no stray gradients from the answer
    if not isinstance(got, Tensor):
        return wrong(f"return a tensor, not {type(got).__name__}.")
    if tuple(got.shape) != tuple(ref.shape):
        return wrong(f"shape {tuple(got.shape)}, expected {tuple(ref.shape)}: one [H, W] map per image "
                     f"(sum over the channel dimension, dim=1).")
    got = got.detach().to(ref.device)
    if close(got, ref, rtol=1e-4, atol=1e-6):
        return correct("|x * dS/dx| of the predicted class, summed over channels.")
    if close(got, (grad * xr).sum(1).detach(), rtol=1e-4, atol=1e-6):
        return wrong("take the absolute value of x * dS/dx before summing over the channels.")
    if close(got, grad.abs().amax(1), rtol=1e-4, atol=1e-6):
        return wrong("that is the plain saliency map: multiply the gradient by the input x first.")
    return wrong("the values differ from |x * dS/dx| for the predicted class: explain the class the "
                 "model predicts (its argmax), in eval mode.")


@exercise("13.3", title="parameters of BatchNorm2d(16)", where="section 13.5",
          discuss=["a learnable scale (weight) and shift (bias) per channel",
                   "the running mean and variance are buffers, tracked but not learned"])
def _bn_params(n: Any) -> Feedback:
    bn = nn.BatchNorm2d(16)
    expected = sum(p.numel() for p in bn.parameters())
    buffers = sum(b.numel() for name, b in bn.named_buffers() if name != "num_batches_tracked")
    if not isinstance(n, int | float) or isinstance(n, bool):
        return wrong("give the number of parameters as an int.")
    if n == expected:
        return correct(f"{expected}: batch norm learns one scale and one shift per channel.")
    if n == expected + buffers:
        return wrong("that counts the running mean and variance too: they are buffers, updated during "
                     "training but not learned by the optimizer.")
    if n == 16:
        return wrong("one number per channel is half of it: what does batch norm learn per channel?")
    return wrong("count what the layer learns per channel, times its 16 channels.")


@exercise("13.4", title="the sanity check: an untrained network's saliency", where="section 13.7",
          discuss=["whether the untrained maps look like the trained ones, and what a high correlation "
                   "would mean for the method",
                   "which parts of the maps come from the image alone (edges) and which from the weights"])
def _sanity(mean_corr: Any, model: nn.Module, x: Tensor, target: Tensor) -> Feedback:
    import d2lmini as d2l

    device = next(model.parameters()).device
    torch.manual_seed(0)
    fresh = d2l.models.ModernLeNet().to(device)
    trained = d2l.saliency_map(model, x, target=target).flatten(1)
    untrained = d2l.saliency_map(fresh, x, target=target).flatten(1)
    corr = torch.stack([torch.corrcoef(torch.stack([a, b]))[0, 1] for a, b in zip(trained, untrained,
                                                                                    strict=True)])
    expected = corr.mean().item()
    if not isinstance(mean_corr, int | float | Tensor):
        return wrong("give the mean correlation as a number.")
    value = float(mean_corr)
    if close(value, expected, rtol=1e-3, atol=2e-3):
        return correct(f"mean correlation {expected:.3f} (per image from {corr.min():.2f} to "
                       f"{corr.max():.2f}).")
    return wrong(f"your mean is {value:.3f}: build the untrained net right after torch.manual_seed(0), "
                 f"explain the trained network's classes (target=...), and correlate each image's two "
                 f"maps over their 784 pixels before averaging the twelve values.")


def _read_tsv(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return [row for row in csv.reader(f, delimiter="\t")]


@exercise("13.5", title="an embedding for the Projector", where="section 13.1",
          discuss=["which classes form tight clusters and which overlap (shirt, T-shirt, pullover, coat)",
                   "that the 84 features were learned for classification, so nearby points are images the "
                   "network finds alike"])
def _embedding(folder: Any, model: nn.Module, images: Tensor, labels: Tensor) -> Feedback:
    import d2lmini as d2l
    from d2lmini.train import eval_mode

    folder = Path(folder)
    if not (folder / "projector_config.pbtxt").is_file():
        return wrong(f"no projector_config.pbtxt in {folder.name}/: log with "
                     f"SummaryWriter(folder).add_embedding(...) and close the writer.")
    tensors = sorted(folder.glob("*/*/tensors.tsv"))
    if not tensors:
        return wrong("the folder holds no tensors.tsv: did add_embedding run?")
    rows = _read_tsv(tensors[-1])
    got = torch.tensor([[float(v) for v in r] for r in rows])
    device = next(model.parameters()).device
    with eval_mode(model), torch.no_grad():
        ref = model.classifier[:-1](model.features(images.to(device))).cpu()
    if tuple(got.shape) != tuple(ref.shape):
        return wrong(f"the embedding is {tuple(got.shape)}, expected {tuple(ref.shape)}: one row of 84 "
                     f"features (net.classifier[:-1]) per test image.")
    if not close(got, ref, rtol=1e-3, atol=1e-3):
        return wrong("the vectors differ from the trained network's 84 features: compute them in eval "
                     "mode, from net.classifier[:-1](net.features(x)).")
    meta = tensors[-1].parent / "metadata.tsv"
    names = [r[0] for r in _read_tsv(meta)] if meta.is_file() else []
    expected = [d2l.FASHION_MNIST_CLASSES[int(c)] for c in labels]
    if names != expected:
        return wrong("the metadata should be the class name of each image, in order "
                     "(metadata=[names[c] for c in labels]).")
    if not (tensors[-1].parent / "sprite.png").is_file():
        return wrong("add label_img=images so that the Projector can draw each point as its image.")
    return correct(f"{len(rows)} points of {got.shape[1]} features, with names and thumbnails: open the "
                   f"Projector tab.")

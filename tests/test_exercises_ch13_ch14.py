"""The checkers of chapters 13 and 14 (d2lmini/exercises/ch13.py, ch14.py): right answers pass, wrong ones
get a hint that says what is off, and the expected values are computed, not stored."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

import d2lmini as d2l
from d2lmini.exercises import ch13, ch14, check, exercises_of
from d2lmini.segmentation import UNet


def _norm(model):
    return torch.sqrt(sum((p.grad**2).sum() for p in model.parameters() if p.grad is not None)).item()


def _grad_norm_cb(scale=1.0, step_offset=0):
    class GradNorm(d2l.Callback):
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def before_fit(self, learn):
            self.writer = SummaryWriter(self.log_dir)

        def before_step(self, learn):
            self.norm = scale * _norm(learn.model)

        def after_epoch(self, learn):
            self.writer.add_scalar("grad_norm", self.norm, learn.epoch + step_offset)

        def after_fit(self, learn):
            self.writer.close()

    return GradNorm


def test_both_chapters_have_five_checked_exercises():
    assert exercises_of(13) == [f"13.{k}" for k in range(1, 6)]
    assert exercises_of(14) == [f"14.{k}" for k in range(1, 6)]


def test_no_answer_is_a_literal_in_the_checkers():
    assert "== 32" not in inspect.getsource(ch13)
    src = inspect.getsource(ch14)
    assert "5 / 9" not in src and "(1, 64, 6, 6)" not in src


def test_13_1_grad_norm_callback():
    assert check("13.1", _grad_norm_cb())
    v = check("13.1", _grad_norm_cb(scale=2.0))
    assert not v and "total gradient norm" in v.message
    assert "step 1" in check("13.1", _grad_norm_cb(step_offset=1)).message


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return d2l.models.ModernLeNet().eval()


def _gxi(model, x, absolute=True):
    x = x.clone().requires_grad_(True)
    out = model(x)
    (g,) = torch.autograd.grad(out.gather(1, out.argmax(1, keepdim=True)).sum(), x)
    v = x * g
    return (v.abs() if absolute else v).sum(1).detach()


def test_13_2_grad_times_input(lenet):
    x = torch.rand(4, 1, 28, 28)
    assert check("13.2", _gxi, model=lenet, x=x)
    assert all(p.grad is None for p in lenet.parameters())  # the checker leaves the model as it was
    assert "plain saliency map" in check("13.2", lambda m, x: d2l.saliency_map(m, x), model=lenet,
                                         x=x).message
    assert "absolute value" in check("13.2", lambda m, x: _gxi(m, x, absolute=False), model=lenet,
                                     x=x).message
    assert "shape" in check("13.2", lambda m, x: _gxi(m, x)[None], model=lenet, x=x).message


def test_13_3_batchnorm_parameters():
    n = sum(p.numel() for p in torch.nn.BatchNorm2d(16).parameters())
    assert check("13.3", n)
    assert "buffers" in check("13.3", 2 * n).message
    assert "half" in check("13.3", n // 2).message
    assert check("13.3", None).status == "unanswered"


def test_13_4_sanity_check_correlation(lenet):
    x = torch.rand(3, 1, 28, 28)
    target = torch.tensor([0, 1, 2])
    torch.manual_seed(0)
    fresh = d2l.models.ModernLeNet()
    a = d2l.saliency_map(lenet, x, target=target).flatten(1)
    b = d2l.saliency_map(fresh, x, target=target).flatten(1)
    mean = torch.stack([torch.corrcoef(torch.stack([u, v]))[0, 1] for u, v in zip(a, b, strict=True)])
    assert check("13.4", mean.mean().item(), model=lenet, x=x, target=target)
    assert not check("13.4", mean.mean().item() + 0.1, model=lenet, x=x, target=target)


def test_13_5_embedding(lenet, tmp_path):
    images, labels = torch.rand(20, 1, 28, 28), torch.arange(20) % 10
    with torch.no_grad():
        feats = lenet.classifier[:-1](lenet.features(images))
    names = [d2l.FASHION_MNIST_CLASSES[int(c)] for c in labels]
    good, bad = tmp_path / "good", tmp_path / "bad"
    with SummaryWriter(good) as w:
        w.add_embedding(feats, metadata=names, label_img=images)
    assert check("13.5", good, model=lenet, images=images, labels=labels)
    with SummaryWriter(bad) as w:
        w.add_embedding(feats, metadata=names[::-1], label_img=images)
    assert "metadata" in check("13.5", bad, model=lenet, images=images, labels=labels).message
    assert "projector_config" in check("13.5", tmp_path / "none", model=lenet, images=images,
                                       labels=labels).message


def test_14_1_iou_and_dice():
    iou, dice = 5 / (6 + 8 - 5), 2 * 5 / (6 + 8)
    assert check("14.1", (iou, dice))
    assert "Dice coefficient" in check("14.1", (dice, dice)).message
    assert "union" in check("14.1", (5 / 8, dice)).message


def test_14_2_bottleneck_shape():
    net = UNet(base=8, depth=3)
    x = torch.zeros(1, 1, 48, 48)
    with torch.no_grad():
        for step in [net.inc, *net.downs]:
            x = step(x)
    assert check("14.2", tuple(x.shape))
    n, c, h, w = x.shape
    assert "channels" in check("14.2", (n, 2 * c, h, w)).message
    assert "halves" in check("14.2", (n, c, 2 * h, 2 * w)).message


def test_14_3_to_14_5_reject_what_is_not_a_trained_unet(monkeypatch):
    monkeypatch.setattr(ch14, "_threshold", lambda: 0.6)  # as in reader mode
    X, M = torch.rand(8, 1, 48, 48), torch.rand(8, 1, 48, 48) > 0.5
    torch.manual_seed(0)
    untrained = UNet(base=8, depth=3)
    assert "dict" in check("14.3", untrained, images=X, masks=M, reference=0.8).message
    v = check("14.3", {"dice": untrained, "bce": torch.nn.Linear(2, 2)}, images=X, masks=M,
              reference=0.8)
    assert not v and "UNet" in v.message
    assert "bilinear=True" in check("14.4", untrained, images=X, masks=M, reference=0.8).message
    v = check("14.4", UNet(base=8, depth=3, bilinear=True), images=X, masks=M, reference=0.8)
    assert not v and "did not train" in v.message
    assert "UNet" in check("14.5", torch.nn.Linear(2, 2)).message

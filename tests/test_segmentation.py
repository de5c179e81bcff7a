"""Tests for d2lmini.segmentation: the generated canvases (deterministic, binary masks on the item) and
the U-Net (shapes for even and odd sizes, skip connections carry gradient, it learns, clear errors)."""

from __future__ import annotations

import pytest
import torch

from d2lmini import losses
from d2lmini.segmentation import (
    GROUPS,
    IGNORE_INDEX,
    MASK_THRESHOLD,
    DoubleConv,
    UNet,
    Up,
    make_canvases,
    make_multiclass_canvases,
)


@pytest.fixture(scope="module")
def canvases():
    return make_canvases(64, size=48, seed=0)


def test_canvases_shape_range_and_determinism(canvases):
    images, masks = canvases
    assert images.shape == masks.shape == (64, 1, 48, 48)
    assert images.dtype == masks.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    again = make_canvases(64, size=48, seed=0)
    assert torch.equal(images, again[0]) and torch.equal(masks, again[1])
    other = make_canvases(64, size=48, seed=1)
    assert not torch.equal(images, other[0]) and not torch.equal(masks, other[1])
    held_out = make_canvases(64, size=48, seed=0, train=False)
    assert not torch.equal(masks, held_out[1])


def test_masks_are_binary_and_sit_on_the_item(canvases):
    images, masks = canvases
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    fg = masks.flatten(1).mean(1)
    assert (fg > 0.02).all() and (fg < 0.6).all()        # every canvas has an item, none fills it
    on, off = images[masks.bool()].mean(), images[~masks.bool()].mean()
    assert on > off + 0.15                                # the item is brighter than the clutter on average
    # ... but not by a threshold alone: clutter pixels as bright as the item exist
    assert (images[~masks.bool()] > on).float().mean() > 0.01


def test_the_mask_keeps_the_dark_parts_of_a_garment():
    """Every inked pixel of the item is in the mask, and painted opaquely (not see-through clutter)."""
    assert MASK_THRESHOLD <= 0.05
    images, masks = make_canvases(256, size=48, seed=2)
    m = masks.bool()
    # the darkest garment pixels are 0.3 x the item's brightness (>= 0.55), plus noise
    assert images[m].quantile(0.01) > 0.08
    again, _ = make_canvases(256, size=48, seed=2, blobs=3)
    assert torch.equal(images, again)


def test_more_blobs_make_brightness_a_worse_guide():
    from d2lmini import losses

    ts = torch.linspace(0.1, 0.9, 33)
    best = {}
    for blobs in (0, 6):
        X, M = make_canvases(256, size=48, seed=0, blobs=blobs)
        best[blobs] = max(losses.iou(X > t, M).item() for t in ts)
    assert best[6] < best[0] - 0.03
    with pytest.raises(ValueError, match="blobs must be >= 0"):
        make_canvases(2, blobs=-1)


def test_multiclass_canvases_labels_and_border():
    images, labels = make_multiclass_canvases(64, size=32, seed=0)
    assert images.shape == (64, 1, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (64, 32, 32) and labels.dtype == torch.int64
    values = set(labels.unique().tolist())
    assert values <= {*range(len(GROUPS)), IGNORE_INDEX} and IGNORE_INDEX in values
    kept = labels[labels != IGNORE_INDEX]
    share = torch.bincount(kept, minlength=len(GROUPS)).float() / kept.numel()
    assert share[0] > 0.4 and (share[1:] > 0.02).all()      # every kind of item appears
    border = labels == IGNORE_INDEX
    assert 0.02 < border.float().mean() < 0.2
    # the border is the ring just outside an outline: every border pixel touches a larger label ...
    lab = labels.clone()
    lab[border] = -1
    # ... and no item pixel touches the background directly: the ring separates them
    item = lab > 0
    bg = (lab == 0).float()[:, None]
    touches_bg = torch.nn.functional.max_pool2d(bg, 3, 1, 1)[:, 0] > 0
    assert not (item & touches_bg).any()
    again = make_multiclass_canvases(64, size=32, seed=0)
    assert torch.equal(images, again[0]) and torch.equal(labels, again[1])
    held_out = make_multiclass_canvases(64, size=32, seed=0, train=False)
    assert not torch.equal(labels, held_out[1])


def test_multiclass_labels_follow_the_fashion_mnist_classes(monkeypatch):
    """One item per canvas, no clutter: the label is the kind of the item drawn."""
    from d2lmini import segmentation

    X = torch.zeros(10, 28, 28, dtype=torch.uint8)
    X[:, 6:22, 6:22] = 200
    y = torch.arange(10)
    monkeypatch.setattr(segmentation, "fashion_mnist_tensors", lambda train: (X, y))
    _, labels = make_multiclass_canvases(200, size=32, seed=0, items=1, blobs=0)
    kinds = {int(v) for v in labels.unique()} - {0, IGNORE_INDEX}
    assert kinds == {1, 2, 3, 4}
    per_canvas = [set(lab.unique().tolist()) - {0, IGNORE_INDEX} for lab in labels]
    assert all(len(k) == 1 for k in per_canvas)


def test_canvases_default_size_and_bad_arguments():
    images, masks = make_canvases(3)
    assert images.shape == masks.shape == (3, 1, 64, 64)
    with pytest.raises(ValueError, match="n >= 1 and size >= 16"):
        make_canvases(0)
    with pytest.raises(ValueError, match="size >= 16"):
        make_canvases(2, size=8)


@pytest.mark.parametrize("size", [(48, 48), (33, 47), (16, 21)])
@pytest.mark.parametrize("bilinear", [False, True])
def test_unet_output_has_input_size(size, bilinear):
    net = UNet(base=4, bilinear=bilinear).eval()
    assert net(torch.rand(2, 1, *size)).shape == (2, 1, *size)
    rgb_net = UNet(in_channels=3, out_channels=5, base=4, depth=2)
    assert rgb_net(torch.rand(1, 3, *size)).shape == (1, 5, *size)


def test_unet_structure():
    net = UNet(base=8, depth=3)
    assert len(net.downs) == len(net.ups) == 3
    assert isinstance(net.inc, DoubleConv) and all(isinstance(u, Up) for u in net.ups)
    assert isinstance(net.ups[0].up, torch.nn.ConvTranspose2d)
    assert net.downs[-1][1][0].out_channels == 64           # bottleneck: 8 * 2**3
    assert net.ups[0].conv[0].in_channels == 64             # 32 upsampled + 32 from the skip
    no_skip = UNet(base=8, depth=3, skip=False)
    assert no_skip.ups[0].conv[0].in_channels == 32
    assert sum(p.numel() for p in no_skip.parameters()) < sum(p.numel() for p in net.parameters())


def test_skip_connections_carry_gradient_to_the_first_block():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32)
    for skip in (True, False):
        net = UNet(base=4, skip=skip)
        net(x).sum().backward()
        assert net.inc[0].weight.grad.abs().sum() > 0
    # with skip connections the first block's output reaches the last decoder block directly
    net = UNet(base=4)
    feats = {}
    net.ups[-1].register_forward_hook(lambda m, inp, out: feats.update(skip=inp[1]))
    net.inc.register_forward_hook(lambda m, inp, out: feats.update(first=out))
    net(x)
    assert feats["skip"] is feats["first"]


def test_unet_overfits_eight_canvases():
    images, masks = make_canvases(8, size=32, seed=3)
    torch.manual_seed(0)
    net = UNet(base=8, depth=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = losses.BCEDiceLoss()
    first = None
    for _ in range(30):
        loss = loss_fn(net(images), masks)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    net.eval()
    with torch.no_grad():
        logits = net(images)
    score = losses.iou(logits > 0, masks)
    per_sample = losses.iou(logits > 0, masks, per_sample=True)
    assert score > 0.6 and per_sample.shape == (8,)
    assert losses.dice_loss(logits, masks) < 0.6         # an untrained net: about 0.75


def test_iou_and_dice_on_unet_output():
    net = UNet(base=4).eval()
    images, masks = make_canvases(4, size=32, seed=0)
    with torch.no_grad():
        logits = net(images)
    assert logits.shape == masks.shape
    score = losses.iou(logits > 0, masks, per_sample=True)
    assert score.shape == (4,) and ((score >= 0) & (score <= 1)).all()
    assert losses.iou(masks.bool(), masks) == 1
    perfect = (masks * 2 - 1) * 20                         # logits that agree with the masks
    assert losses.dice_loss(perfect, masks) < 0.01 < losses.dice_loss(-perfect, masks)


def test_unet_wrong_inputs_are_explained():
    net = UNet(base=4)
    with pytest.raises(ValueError, match=r"add the batch dimension with x\.unsqueeze\(0\)"):
        net(torch.rand(1, 48, 48))
    with pytest.raises(ValueError, match=r"expects 1 channel\(s\).*grayscale"):
        net(torch.rand(2, 3, 48, 48))
    with pytest.raises(ValueError, match=r"needs at least 8x8 pixels.*smaller depth"):
        net(torch.rand(2, 1, 6, 20))
    with pytest.raises(ValueError, match="base >= 2 and depth >= 1"):
        UNet(depth=0)


# ------------------------------------------------------------------ the checks of chapter 14's exercises

def test_exercises_14_1_and_14_2_compute_their_answers():
    from d2lmini.exercises import check

    assert check("14.1", (5 / 9, 10 / 14))
    v = check("14.1", (10 / 14, 10 / 14))
    assert not v and "both numbers are the Dice coefficient" in v.message
    assert check("14.2", (1, 64, 6, 6))
    v = check("14.2", (1, 32, 6, 6))
    assert not v and "channels" in v.message
    assert check("14.2", [1, 64, 12, 12]).status == "wrong"


def test_exercises_14_3_to_14_5_measure_the_models():
    from d2lmini.exercises import check

    images, masks = make_canvases(32, size=48, seed=1, train=False)
    untrained = UNet(base=8, depth=3).eval()
    v = check("14.3", {"dice": untrained}, images=images, masks=masks, reference=0.8)
    assert not v and "dict" in v.message
    v = check("14.4", untrained, images=images, masks=masks, reference=0.8)
    assert not v and "bilinear=True" in v.message
    v = check("14.5", "not a model")
    assert not v and "UNet" in v.message

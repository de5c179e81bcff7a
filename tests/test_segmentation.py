"""Tests for d2lmini.segmentation: the generated canvases (deterministic, binary masks on the item) and
the U-Net (shapes for even and odd sizes, skip connections carry gradient, it learns, clear errors)."""

from __future__ import annotations

import pytest
import torch

from d2lmini import losses
from d2lmini.segmentation import DoubleConv, UNet, Up, make_canvases


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

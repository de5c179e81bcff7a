"""Tests for d2lmini.models: output shapes, clear messages for wrong inputs, AlexNet's size, and that a
modern LeNet learns."""

from __future__ import annotations

import pytest
import torch
from torchinfo import summary

from d2lmini import models

SMALL = [models.LeNet, models.ModernLeNet, models.MiniAlexNet]
# AlexNet by hand: convs 11x11x1x96, 5x5x96x256, 3x3x256x384, 3x3x384x384, 3x3x384x256;
# dense 6400-4096-4096-10.
ALEXNET_PARAMS = (
    96 * 11 * 11 + 96 + 256 * 96 * 25 + 256 + 384 * 256 * 9 + 384 + 384 * 384 * 9 + 384 + 256 * 384 * 9 + 256
    + 6400 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 10 + 10
)


@pytest.fixture(scope="module")
def alexnet():
    torch.manual_seed(0)
    return models.AlexNet().eval()


@pytest.mark.parametrize("cls", SMALL)
def test_small_models_output_shape(cls):
    net = cls().eval()
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert cls(num_classes=4).eval()(torch.rand(2, 1, 28, 28)).shape == (2, 4)


def test_alexnet_output_shape_and_feature_shape(alexnet):
    x = torch.rand(2, 1, 224, 224)
    assert alexnet.features(x).shape == (2, 256, 5, 5)
    assert alexnet(x).shape == (2, 10)


def test_alexnet_parameter_count_matches_torchinfo(alexnet):
    by_numel = sum(p.numel() for p in alexnet.parameters())
    info = summary(alexnet, input_size=(1, 1, 224, 224), verbose=0)
    assert by_numel == ALEXNET_PARAMS == 46_764_746
    assert info.total_params == by_numel
    assert info.total_mult_adds > 5e8  # about 0.9 billion multiply-adds per 1x224x224 image


def test_mini_alexnet_dropout_switch():
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in models.MiniAlexNet().modules())
    off = [m for m in models.MiniAlexNet(dropout=0.0).modules() if isinstance(m, torch.nn.Dropout)]
    assert len(off) == 2 and all(m.p == 0.0 for m in off)
    narrow, wide = models.MiniAlexNet(width=8), models.MiniAlexNet(width=24)
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in wide.parameters())


def test_mini_alexnet_default_layout_is_unchanged():
    # chapter 07 and saved checkpoints rely on the plain model's layer indices and size
    net = models.MiniAlexNet()
    assert list(net.state_dict())[:4] == ["features.0.weight", "features.0.bias",
                                          "features.3.weight", "features.3.bias"]
    assert sum(p.numel() for p in net.parameters()) == 154_954
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_mini_alexnet_batch_norm_after_every_conv():
    plain, bn = models.MiniAlexNet(), models.MiniAlexNet(batch_norm=True)
    layers = list(bn.features)
    convs = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5
    assert all(isinstance(layers[i + 1], torch.nn.BatchNorm2d) and layers[i].bias is None for i in convs)
    # each conv bias (c_out numbers) is replaced by BN's scale and shift (2 c_out numbers)
    extra = sum(layers[i].out_channels for i in convs)
    assert sum(p.numel() for p in bn.parameters()) == sum(p.numel() for p in plain.parameters()) + extra
    assert bn.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def _losses_on_a_tiny_batch(net: torch.nn.Module, steps: int = 30) -> list[float]:
    """Train ``net`` with Adam on 16 random images for ``steps`` steps; the loss after each step."""
    x, y = torch.rand(16, 1, 28, 28), torch.arange(16) % 10
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_mini_alexnet_with_batch_norm_learns_a_tiny_batch():
    torch.manual_seed(0)
    net = models.MiniAlexNet(width=8, batch_norm=True, dropout=0.0)
    losses = _losses_on_a_tiny_batch(net)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("cls", SMALL)
def test_missing_batch_dimension_says_unsqueeze(cls):
    with pytest.raises(ValueError, match=r"add the batch dimension with x\.unsqueeze\(0\)"):
        cls()(torch.rand(1, 28, 28))


@pytest.mark.parametrize("cls", SMALL)
def test_wrong_channel_count_is_named(cls):
    with pytest.raises(ValueError, match=r"expects 1 channel\(s\).*got 3 channels.*grayscale"):
        cls()(torch.rand(2, 3, 28, 28))


def test_flat_input_is_explained():
    with pytest.raises(ValueError, match=r"expects input of shape \[N, 1, H, W\], got \(2, 784\)"):
        models.ModernLeNet()(torch.rand(2, 784))


def test_alexnet_wrong_size_and_missing_batch(alexnet):
    with pytest.raises(ValueError, match=r"built for 224x224 images but got 28x28.*interpolate"):
        alexnet(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="add the batch dimension"):
        alexnet(torch.rand(1, 224, 224))
    with pytest.raises(ValueError, match="MiniAlexNet is built for 28x28"):
        models.MiniAlexNet()(torch.rand(2, 1, 32, 32))


def test_modern_lenet_loss_goes_down_on_a_tiny_batch():
    torch.manual_seed(0)
    net = models.ModernLeNet()
    losses = _losses_on_a_tiny_batch(net)
    assert losses[-1] < 0.5 * losses[0]

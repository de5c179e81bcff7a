"""Semantic segmentation (语义分割) for chapter 14: a generated dataset and a small U-Net.

* :func:`make_canvases` places one Fashion-MNIST item at a random position, scale and angle on a larger
  canvas full of clutter (a shading gradient, bright blobs, lines, sometimes a faint second item, noise) and
  returns the images with the item's pixel mask.  Deterministic from a seed, vectorised, runs offline.
* :class:`UNet` (Ronneberger, Fischer & Brox, 2015), small: an encoder (编码器) of :class:`DoubleConv`
  blocks and max pooling, a decoder (解码器) that upsamples with transposed convolutions (转置卷积) and
  concatenates the encoder's feature maps through skip connections (跳跃连接), and a 1x1 output convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import fashion_mnist_tensors
from .models import _check_input

__all__ = ["DoubleConv", "Down", "UNet", "Up", "make_canvases"]

#: Pixels of the (warped) item brighter than this fraction of its full intensity belong to the mask.
MASK_THRESHOLD = 0.15


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _place(items: Tensor, size: int, scale: Tensor, angle: Tensor, cx: Tensor, cy: Tensor) -> Tensor:
    """Warp ``items [n, 28, 28]`` (floats in [0, 1]) onto ``size x size`` canvases: item side ``scale``
    (a fraction of the canvas), rotated by ``angle`` (radians), centred at ``(cx, cy)`` in [-1, 1]."""
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid maps each output (canvas) coordinate to an input (item) coordinate: rotate, then scale up.
    theta = torch.stack([torch.stack([cos, sin, -(cos * cx + sin * cy)], 1),
                         torch.stack([-sin, cos, -(-sin * cx + cos * cy)], 1)], 1)
    grid = F.affine_grid(theta, [len(items), 1, size, size], align_corners=False)
    return F.grid_sample(items.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def make_canvases(n: int, size: int = 64, seed: int = 0, train: bool = True) -> tuple[Tensor, Tensor]:
    """``n`` cluttered canvases, each with one Fashion-MNIST item, and the item's mask.

    Returns ``images`` float ``[n, 1, size, size]`` in [0, 1] and ``masks`` float ``[n, 1, size, size]``
    with values 0 or 1 (1 where the item's own intensity exceeds :data:`MASK_THRESHOLD`).  Items come from
    Fashion-MNIST's training set (``train=True``) or its test set (``train=False``), so held-out canvases
    show garments the network never saw.  Per canvas, drawn at random:

    * the item: side 40-75 % of the canvas, turned by up to ±25°, brightness 0.55-1, placed anywhere it fits,
      opaque (it hides the clutter behind it);
    * clutter that a brightness threshold cannot tell from the item: a shading gradient, 3 soft blobs,
      2 lines, with probability 1/2 a faint second item (not in the mask), and Gaussian noise.

    The same ``(n, size, seed, train)`` always gives the same canvases.
    """
    if n < 1 or size < 16:
        raise ValueError(f"make_canvases needs n >= 1 and size >= 16, got n={n}, size={size}.")
    X, _ = fashion_mnist_tensors(train)
    g = torch.Generator().manual_seed(2 * seed + (0 if train else 1))
    chunk = 256                                    # a few at a time: small temporaries, low peak memory
    parts = [_draw(X, min(chunk, n - i), size, g) for i in range(0, n, chunk)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _draw(X: Tensor, n: int, size: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` canvases and masks from the uint8 images ``X``, drawing every random number from ``g``."""
    idx = torch.randint(0, len(X), (2, n), generator=g)
    items = X[idx[0]].float() / 255
    ghosts = X[idx[1]].float() / 255

    # 1. the item, and its mask
    scale = _uniform(g, n, 0.40, 0.75)
    angle = _uniform(g, n, -25, 25) * math.pi / 180
    room = 1 - scale * 0.9                                  # keep (almost all of) the item on the canvas
    cx, cy = (2 * torch.rand(2, n, generator=g) - 1) * room
    item = _place(items, size, scale, angle, cx, cy)
    masks = (item > MASK_THRESHOLD).float()
    brightness = _uniform(g, n, 0.55, 1.0).view(n, 1, 1, 1)

    # 2. clutter on the background
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    yy, xx = coords.view(1, 1, size, 1), coords.view(1, 1, 1, size)
    gx, gy = (_uniform(g, 2 * n, -0.15, 0.15)).view(2, n, 1, 1, 1)
    background = _uniform(g, n, 0.05, 0.3).view(n, 1, 1, 1) + gx * xx + gy * yy
    for _ in range(3):                                     # soft bright blobs
        bx, by = (2 * torch.rand(2, n, generator=g) - 1).view(2, n, 1, 1, 1)
        sigma = _uniform(g, n, 0.06, 0.2).view(n, 1, 1, 1)
        amp = _uniform(g, n, 0.2, 0.8).view(n, 1, 1, 1)
        background = background + amp * torch.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * sigma**2))
    for _ in range(2):                                     # straight lines about 1.5 pixels wide
        phi = _uniform(g, n, 0, math.pi).view(n, 1, 1, 1)
        offset = _uniform(g, n, -0.8, 0.8).view(n, 1, 1, 1)
        amp = _uniform(g, n, 0.3, 0.9).view(n, 1, 1, 1)
        dist = (xx * torch.cos(phi) + yy * torch.sin(phi) - offset).abs() * size / 2
        background = background + amp * (1 - dist / 1.5).clamp(min=0)
    ghost_on = (torch.rand(n, generator=g) < 0.5).float().view(n, 1, 1, 1)
    gscale = _uniform(g, n, 0.35, 0.6)
    gangle = _uniform(g, n, -25, 25) * math.pi / 180
    gcx, gcy = 2 * torch.rand(2, n, generator=g) - 1
    ghost = _place(ghosts, size, gscale, gangle, gcx, gcy)
    background = background + ghost_on * _uniform(g, n, 0.2, 0.4).view(n, 1, 1, 1) * ghost

    # 3. the item is opaque: it hides the clutter behind it (the faint item does not); then sensor noise
    alpha = (item / MASK_THRESHOLD).clamp(0, 1)
    peak = item.amax(dim=(2, 3), keepdim=True).clamp(min=1e-3)
    images = background * (1 - alpha) + alpha * brightness * (0.3 + 0.7 * item / peak)
    images = images + _uniform(g, n, 0.02, 0.08).view(n, 1, 1, 1) * torch.randn(images.shape, generator=g)
    return images.clamp(0, 1), masks


# ---------------------------------------------------------------------------------------------------------
# U-Net
# ---------------------------------------------------------------------------------------------------------

class DoubleConv(nn.Sequential):
    """(3x3 convolution -> batch norm -> ReLU) twice; padding 1 keeps the height and width."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """One encoder step: 2x2 max pooling (halves height and width), then a :class:`DoubleConv`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))


class Up(nn.Module):
    """One decoder step: upsample x2 (halving the channels), pad to the skip's size, concatenate the skip
    (跳跃连接) along the channels, then a :class:`DoubleConv`.

    ``bilinear=False`` upsamples with a learned 2x2 transposed convolution (转置卷积), ``True`` with bilinear
    interpolation followed by a 1x1 convolution.  ``skip=False`` ignores the encoder's features (to measure
    what the skip connections bring)."""

    def __init__(self, in_channels: int, out_channels: int, bilinear: bool = False,
                 skip: bool = True) -> None:
        super().__init__()
        half = in_channels // 2
        if bilinear:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    nn.Conv2d(in_channels, half, 1))
        else:
            self.up = nn.ConvTranspose2d(in_channels, half, kernel_size=2, stride=2)
        self.skip = skip
        self.conv = DoubleConv(half + (out_channels if skip else 0), out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dh or dw:  # an odd size was floored by the pooling: pad the upsampled map back to the skip's size
            x = F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
        if self.skip:
            x = torch.cat([skip, x], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    """A small U-Net: ``depth`` encoder steps (channels ``base, 2 base, 4 base, ...``), a bottleneck, as
    many decoder steps with skip connections, and a 1x1 convolution to ``out_channels`` logits per pixel.

    Output ``[N, out_channels, H, W]`` for input ``[N, in_channels, H, W]``, any ``H, W >= 2 ** depth``
    (odd sizes too).  ``bilinear`` chooses the upsampling, ``skip=False`` removes the skip connections.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, base: int = 16, depth: int = 3,
                 bilinear: bool = False, skip: bool = True) -> None:
        super().__init__()
        if base < 2 or depth < 1:
            raise ValueError(f"UNet needs base >= 2 and depth >= 1, got base={base}, depth={depth}.")
        self.in_channels, self.depth = in_channels, depth
        widths = [base * 2**i for i in range(depth + 1)]           # e.g. 16, 32, 64, 128 (bottleneck)
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i], bilinear, skip) for i in reversed(range(depth)))
        self.outc = nn.Conv2d(widths[0], out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        _check_input(x, self.in_channels, name)
        if min(x.shape[-2:]) < 2**self.depth:
            raise ValueError(f"{name} with depth {self.depth} halves the image {self.depth} times, so it "
                             f"needs at least {2**self.depth}x{2**self.depth} pixels; got "
                             f"{tuple(x.shape[-2:])}: use larger images or a smaller depth.")
        skips = [self.inc(x)]                                       # encoder: keep every level's output
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()                                             # the bottleneck
        for up in self.ups:                                         # decoder: deepest skip first
            x = up(x, skips.pop())
        return self.outc(x)

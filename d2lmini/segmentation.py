"""Semantic segmentation (语义分割) for chapter 14: generated datasets and a small U-Net.

* :func:`make_canvases` places one Fashion-MNIST item at a random position, scale and angle on a larger
  canvas full of clutter (a shading gradient, bright blobs, lines, sometimes a faint second item, noise) and
  returns the images with the item's pixel mask.  Deterministic from a seed, vectorised, runs offline.
* :func:`make_multiclass_canvases` places several items, each labelled with its kind (:data:`GROUPS`:
  top, trouser, footwear, bag), and marks the one-pixel ring around every outline as :data:`IGNORE_INDEX`,
  the "border" class that ``nn.CrossEntropyLoss(ignore_index=...)`` leaves out (as in Pascal VOC).
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

__all__ = ["GROUPS", "IGNORE_INDEX", "DoubleConv", "Down", "UNet", "Up", "make_canvases",
           "make_multiclass_canvases"]

#: A pixel belongs to the mask where the (warped) item has any ink: more than this fraction of full
#: intensity.  Dark parts of a garment (a black stripe) count; only the item's real gaps (inside a bag's
#: handle, between a sandal's straps) stay background, and there the clutter shows through.
MASK_THRESHOLD = 0.02

#: The classes of :func:`make_multiclass_canvases`: index 0 is the background, then four kinds of item.
GROUPS = ("background", "top", "trouser", "footwear", "bag")
#: Fashion-MNIST classes in each kind: top = T-shirt, pullover, dress, coat, shirt; footwear = sandal,
#: sneaker, ankle boot.
_GROUP_OF_CLASS = (1, 2, 1, 1, 1, 3, 1, 3, 4, 3)
#: The label of the one-pixel ring around every outline: left out of the loss and of the IoU.
IGNORE_INDEX = 255


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


def _check_args(n: int, size: int, **counts: int) -> None:
    if n < 1 or size < 16:
        raise ValueError(f"the canvases need n >= 1 and size >= 16, got n={n}, size={size}.")
    for name, k in counts.items():
        if k < 0:
            raise ValueError(f"{name} must be >= 0, got {k}.")


def make_canvases(n: int, size: int = 64, seed: int = 0, train: bool = True,
                  blobs: int = 3) -> tuple[Tensor, Tensor]:
    """``n`` cluttered canvases, each with one Fashion-MNIST item, and the item's mask.

    Returns ``images`` float ``[n, 1, size, size]`` in [0, 1] and ``masks`` float ``[n, 1, size, size]``
    with values 0 or 1 (1 where the item has any ink, more than :data:`MASK_THRESHOLD`).  Items come from
    Fashion-MNIST's training set (``train=True``) or its test set (``train=False``), so held-out canvases
    show garments the network never saw.  Per canvas, drawn at random:

    * the item: side 40-75 % of the canvas, turned by up to ±25°, brightness 0.55-1, placed anywhere it fits,
      opaque (it hides the clutter behind it; its darkest parts are 0.3 times its brightness);
    * clutter that a brightness threshold cannot tell from the item: a shading gradient, ``blobs`` soft
      blobs (3 by default), 2 lines, with probability 1/2 a faint second item (not in the mask), and
      Gaussian noise.

    The same ``(n, size, seed, train, blobs)`` always gives the same canvases.
    """
    _check_args(n, size, blobs=blobs)
    X, _ = fashion_mnist_tensors(train)
    g = torch.Generator().manual_seed(2 * seed + (0 if train else 1))
    chunk = 256                                    # a few at a time: small temporaries, low peak memory
    parts = [_draw(X, min(chunk, n - i), size, g, blobs) for i in range(0, n, chunk)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def make_multiclass_canvases(n: int, size: int = 32, seed: int = 0, train: bool = True, items: int = 2,
                             blobs: int = 2) -> tuple[Tensor, Tensor]:
    """``n`` cluttered canvases with ``items`` Fashion-MNIST items each, and a label for every pixel.

    Returns ``images`` float ``[n, 1, size, size]`` in [0, 1] and ``labels`` int64 ``[n, size, size]``:
    0 for the background, ``k`` for an item of kind ``GROUPS[k]`` (1 top, 2 trouser, 3 footwear, 4 bag;
    each item's kind is drawn uniformly, so every class is about as common), and :data:`IGNORE_INDEX` on
    the ring of pixels just outside every outline (and along the seam where two items touch), where even a
    careful annotator could not say which class a pixel belongs to.  Items are 35-60 % of the canvas
    side, may overlap (a later item hides an earlier one), and sit on the clutter of :func:`make_canvases`
    (``blobs`` soft blobs, 2 lines, noise; no faint extra item).  Deterministic from
    ``(n, size, seed, train, items, blobs)``.
    """
    _check_args(n, size, items=items, blobs=blobs)
    X, y = fashion_mnist_tensors(train)
    group = torch.tensor(_GROUP_OF_CLASS)[y]
    pools = [torch.nonzero(group == k).flatten() for k in range(1, len(GROUPS))]
    g = torch.Generator().manual_seed(1000 + 2 * seed + (0 if train else 1))
    chunk = 256
    parts = [_draw_many(X, pools, min(chunk, n - i), size, g, items, blobs) for i in range(0, n, chunk)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _clutter(n: int, size: int, g: torch.Generator, blobs: int) -> Tensor:
    """The background of ``n`` canvases ``[n, 1, size, size]``: a shading gradient, ``blobs`` soft bright
    blobs and 2 straight lines about 1.5 pixels wide."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    yy, xx = coords.view(1, 1, size, 1), coords.view(1, 1, 1, size)
    gx, gy = (_uniform(g, 2 * n, -0.15, 0.15)).view(2, n, 1, 1, 1)
    background = _uniform(g, n, 0.05, 0.3).view(n, 1, 1, 1) + gx * xx + gy * yy
    for _ in range(blobs):
        bx, by = (2 * torch.rand(2, n, generator=g) - 1).view(2, n, 1, 1, 1)
        sigma = _uniform(g, n, 0.06, 0.2).view(n, 1, 1, 1)
        amp = _uniform(g, n, 0.2, 0.8).view(n, 1, 1, 1)
        background = background + amp * torch.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * sigma**2))
    for _ in range(2):
        phi = _uniform(g, n, 0, math.pi).view(n, 1, 1, 1)
        offset = _uniform(g, n, -0.8, 0.8).view(n, 1, 1, 1)
        amp = _uniform(g, n, 0.3, 0.9).view(n, 1, 1, 1)
        dist = (xx * torch.cos(phi) + yy * torch.sin(phi) - offset).abs() * size / 2
        background = background + amp * (1 - dist / 1.5).clamp(min=0)
    return background


def _paint(canvas: Tensor, item: Tensor, g: torch.Generator) -> Tensor:
    """Paint the warped ``item`` opaquely over ``canvas`` (both ``[n, 1, H, W]``) at a random brightness
    0.55-1: its darkest ink at 0.3 times that brightness, its brightest at the full brightness."""
    n = len(item)
    brightness = _uniform(g, n, 0.55, 1.0).view(n, 1, 1, 1)
    alpha = (item / MASK_THRESHOLD).clamp(0, 1)
    peak = item.amax(dim=(2, 3), keepdim=True).clamp(min=1e-3)
    return canvas * (1 - alpha) + alpha * brightness * (0.3 + 0.7 * item / peak)


def _noise(images: Tensor, g: torch.Generator) -> Tensor:
    n = len(images)
    images = images + _uniform(g, n, 0.02, 0.08).view(n, 1, 1, 1) * torch.randn(images.shape, generator=g)
    return images.clamp(0, 1)


def _draw(X: Tensor, n: int, size: int, g: torch.Generator, blobs: int) -> tuple[Tensor, Tensor]:
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

    # 2. clutter on the background, and with probability 1/2 a faint second item (not in the mask)
    background = _clutter(n, size, g, blobs)
    ghost_on = (torch.rand(n, generator=g) < 0.5).float().view(n, 1, 1, 1)
    gscale = _uniform(g, n, 0.35, 0.6)
    gangle = _uniform(g, n, -25, 25) * math.pi / 180
    gcx, gcy = 2 * torch.rand(2, n, generator=g) - 1
    ghost = _place(ghosts, size, gscale, gangle, gcx, gcy)
    background = background + ghost_on * _uniform(g, n, 0.2, 0.4).view(n, 1, 1, 1) * ghost

    # 3. the item is opaque: it hides the clutter behind it (the faint item does not); then sensor noise
    return _noise(_paint(background, item, g), g), masks


def _draw_many(X: Tensor, pools: list[Tensor], n: int, size: int, g: torch.Generator, items: int,
               blobs: int) -> tuple[Tensor, Tensor]:
    """``n`` multi-item canvases and their label maps (see :func:`make_multiclass_canvases`)."""
    images = _clutter(n, size, g, blobs)
    labels = torch.zeros(n, size, size, dtype=torch.int64)
    for _ in range(items):
        kind = torch.randint(1, len(GROUPS), (n,), generator=g)
        idx = torch.empty(n, dtype=torch.int64)
        for k, pool in enumerate(pools, start=1):
            sel = kind == k
            idx[sel] = pool[torch.randint(0, len(pool), (int(sel.sum()),), generator=g)]
        scale = _uniform(g, n, 0.35, 0.60)
        angle = _uniform(g, n, -25, 25) * math.pi / 180
        cx, cy = (2 * torch.rand(2, n, generator=g) - 1) * (1 - scale * 0.9)
        item = _place(X[idx].float() / 255, size, scale, angle, cx, cy)
        images = _paint(images, item, g)
        labels = torch.where(item[:, 0] > MASK_THRESHOLD, kind.view(n, 1, 1), labels)
    # the border class: the ring of pixels just outside each outline (a 3x3 neighbour has a larger label)
    border = F.max_pool2d(labels[:, None].float(), 3, 1, 1)[:, 0] != labels
    labels[border] = IGNORE_INDEX
    return _noise(images, g), labels


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

"""Convolution and pooling written from scratch, the way chapter 05 teaches them.

Everything here loops over output positions in plain Python, so it is slow but reads like the
definition.  Real models use ``nn.Conv2d`` / ``nn.MaxPool2d``; the tests check that both agree::

    Y = corr2d(X, K)                       # X [..., H, W], K [h, w]  ->  Y [..., H-h+1, W-w+1]
    Y = corr2d_multi_in(X, K)              # X [..., C, H, W], K [C, h, w]  ->  [..., H', W']
    Y = corr2d_multi_in_out(X, K)          # X [..., C, H, W], K [O, C, h, w]  ->  [..., O, H', W']
    conv = Conv2D(1, 6, kernel_size=5, padding=2)     # like nn.Conv2d, on batches [N, C, H, W]
    conv_output_size(28, k=5, p=2, s=1)    # 28
    pool2d(X, 2, mode="max")               # like F.max_pool2d(X, 2)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _pair(x: int | tuple[int, int]) -> tuple[int, int]:
    return (x, x) if isinstance(x, int) else (int(x[0]), int(x[1]))


def conv_output_size(n: int, k: int, p: int = 0, s: int = 1) -> int:
    """Output length of a convolution (or pooling) along one axis: ``⌊(n + 2p − k) / s⌋ + 1``.

    ``n`` input size, ``k`` kernel size, ``p`` padding on each side, ``s`` stride.  Raises ``ValueError``
    when the (padded) input is smaller than the kernel, as ``nn.Conv2d`` does.
    """
    if k < 1 or s < 1 or p < 0 or n < 1:
        raise ValueError(f"need n >= 1, k >= 1, p >= 0, s >= 1; got n={n}, k={k}, p={p}, s={s}")
    if n + 2 * p < k:
        raise ValueError(f"kernel size {k} is larger than the padded input {n} + 2*{p} = {n + 2 * p}")
    return (n + 2 * p - k) // s + 1


def corr2d(X: Tensor, K: Tensor, stride: int = 1) -> Tensor:
    """Two-dimensional cross-correlation (互相关) of ``X [..., H, W]`` with a kernel ``K [h, w]``.

    ``Y[..., i, j] = sum(X[..., i*s : i*s+h, j*s : j*s+w] * K)``: slide the kernel over the input,
    multiply elementwise and add up.  Leading dimensions of ``X`` (a batch) are kept.  Differentiable
    with respect to both ``X`` and ``K``.
    """
    if K.ndim != 2:
        raise ValueError(f"corr2d expects a 2-D kernel [h, w], got shape {tuple(K.shape)}")
    h, w = K.shape
    out_h = conv_output_size(X.shape[-2], h, 0, stride)
    out_w = conv_output_size(X.shape[-1], w, 0, stride)
    Y = torch.zeros(*X.shape[:-2], out_h, out_w, dtype=torch.result_type(X, K), device=X.device)
    for i in range(out_h):
        for j in range(out_w):
            window = X[..., i * stride:i * stride + h, j * stride:j * stride + w]
            Y[..., i, j] = (window * K).sum(dim=(-2, -1))
    return Y


def corr2d_multi_in(X: Tensor, K: Tensor, stride: int = 1) -> Tensor:
    """Cross-correlation with several input channels (通道): ``X [..., C, H, W]``, ``K [C, h, w]``.

    One 2-D cross-correlation per channel, summed over the channels: the result has no channel axis.
    """
    if X.shape[-3] != K.shape[0]:
        raise ValueError(f"X has {X.shape[-3]} channels but the kernel has {K.shape[0]}")
    return sum(corr2d(X[..., c, :, :], K[c], stride) for c in range(K.shape[0]))


def corr2d_multi_in_out(X: Tensor, K: Tensor, stride: int = 1) -> Tensor:
    """Several input and output channels: ``X [..., C, H, W]``, ``K [O, C, h, w]`` -> ``[..., O, H', W']``.

    Output channel ``o`` is :func:`corr2d_multi_in` of ``X`` with the kernel ``K[o]``.
    """
    return torch.stack([corr2d_multi_in(X, k, stride) for k in K], dim=-3)


class Conv2D(nn.Module):
    """A convolutional layer (卷积层) built on :func:`corr2d_multi_in_out`: a hand-written ``nn.Conv2d``.

    ``weight`` has shape ``[out_channels, in_channels, kh, kw]`` and ``bias`` ``[out_channels]``; both are
    ``nn.Parameter``s initialised like ``nn.Conv2d`` (uniform in ±1/sqrt(fan_in)).  Input: a batch
    ``[N, in_channels, H, W]``; ``padding`` adds zeros on every side, ``stride`` moves the window.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 padding: int = 0, stride: int = 1, bias: bool = True) -> None:
        super().__init__()
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding, self.stride = (kh, kw), padding, stride
        bound = 1 / math.sqrt(in_channels * kh * kw)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound)) if bias else None

    def forward(self, X: Tensor) -> Tensor:
        if X.ndim != 4 or X.shape[1] != self.in_channels:
            hint = " (one image? add the batch dimension with x.unsqueeze(0))" if X.ndim == 3 else ""
            raise ValueError(f"Conv2D expects a batch [N, {self.in_channels}, H, W], "
                             f"got {tuple(X.shape)}{hint}")
        p = self.padding
        if p:
            X = F.pad(X, (p, p, p, p))  # zeros: left, right, top, bottom
        Y = corr2d_multi_in_out(X, self.weight, self.stride)
        return Y if self.bias is None else Y + self.bias[:, None, None]

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"padding={self.padding}, stride={self.stride}, bias={self.bias is not None}")


def pool2d(X: Tensor, size: int | tuple[int, int], mode: str = "max",
           stride: int | tuple[int, int] | None = None) -> Tensor:
    """Max or average pooling (汇聚/池化) over the last two axes of ``X [..., H, W]``.

    ``size`` is the window; ``stride`` defaults to the window size, as in ``nn.MaxPool2d``.
    ``mode`` is ``"max"`` (largest value in each window) or ``"avg"`` (mean of each window).
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    h, w = _pair(size)
    sh, sw = (h, w) if stride is None else _pair(stride)
    out_h = conv_output_size(X.shape[-2], h, 0, sh)
    out_w = conv_output_size(X.shape[-1], w, 0, sw)
    Y = torch.zeros(*X.shape[:-2], out_h, out_w, dtype=X.dtype, device=X.device)
    for i in range(out_h):
        for j in range(out_w):
            window = X[..., i * sh:i * sh + h, j * sw:j * sw + w]
            Y[..., i, j] = window.amax(dim=(-2, -1)) if mode == "max" else window.mean(dim=(-2, -1))
    return Y

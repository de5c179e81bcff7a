"""Convolution arithmetic: the output size of a convolution or pooling layer (chapter 05).

Chapter 05 writes ``corr2d``, ``corr2d_multi_in``, ``corr2d_multi_in_out``, ``Conv2D`` and ``pool2d`` in
the notebook itself and checks them against ``nn.Conv2d`` / ``F.max_pool2d`` there (what a chapter teaches
stays visible in it); it uses :func:`conv_output_size` from here, and so do its exercise checks::

    conv_output_size(28, k=5, p=2, s=1)    # 28
"""

from __future__ import annotations

__all__ = ["conv_output_size"]


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

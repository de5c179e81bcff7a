"""Layers written by hand in chapter 04, to show what ``nn.Linear`` and friends do inside.

A layer is an ``nn.Module``: ``__init__`` declares its parameters (``nn.Parameter``, so the module
registers them), ``forward`` computes with them.  Nothing else is needed for autograd, optimizers,
``state_dict`` and ``.to(device)`` to work.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Dense(nn.Module):
    """A fully connected layer ``y = x @ W.T + b``, written by hand.

    ``weight`` has shape ``[out_features, in_features]`` and ``bias`` ``[out_features]``, the same
    layout as ``nn.Linear``, so weights copy across either way; the initial values are drawn the
    way ``nn.Linear`` draws them (uniform in ``±1/sqrt(in_features)``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Dense needs in_features >= 1 and out_features >= 1, got ({in_features}, {out_features})."
            )
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw weight and bias uniformly from ``[-1/sqrt(in_features), 1/sqrt(in_features)]``."""
        bound = 1 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"Dense({self.in_features}, {self.out_features}) expects inputs whose last dimension is "
                f"{self.in_features}, got shape {tuple(x.shape)}. Flatten images first (nn.Flatten())."
            )
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class CenteredLayer(nn.Module):
    """A layer with no parameters: subtracts the mean of each row, ``x - x.mean(dim, keepdim=True)``."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return x - x.mean(dim=self.dim, keepdim=True)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

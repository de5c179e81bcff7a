"""d2lmini.conv: the output-size formula against nn.Conv2d."""

import itertools

import pytest
import torch
from torch import nn

from d2lmini.conv import conv_output_size


def test_conv_output_size_matches_nn_Conv2d_on_a_grid():
    checked = 0
    for n, k, p, s in itertools.product([5, 7, 8, 28], [1, 2, 3, 5], [0, 1, 2], [1, 2, 3]):
        if n + 2 * p < k:
            continue
        out = nn.Conv2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, n, n)).shape[-1]
        assert conv_output_size(n, k, p, s) == out, (n, k, p, s)
        checked += 1
    assert checked > 100


def test_conv_output_size_rejects_impossible():
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_output_size(3, 5)
    with pytest.raises(ValueError):
        conv_output_size(8, 3, s=0)

"""d2lmini.conv: hand-written convolution and pooling against PyTorch's built-ins."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from d2lmini.conv import (
    Conv2D,
    conv_output_size,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    pool2d,
)


def test_corr2d_textbook_example():
    X = torch.arange(9.0).reshape(3, 3)
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert torch.equal(corr2d(X, K), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


@pytest.mark.parametrize("shape,kshape,stride", [
    ((7, 9), (3, 2), 1), ((8, 8), (1, 1), 1), ((10, 7), (3, 3), 2), ((5, 5), (5, 5), 1), ((9, 11), (2, 4), 3),
])
def test_corr2d_matches_conv2d(shape, kshape, stride):
    torch.manual_seed(0)
    X, K = torch.randn(*shape), torch.randn(*kshape)
    expected = F.conv2d(X[None, None], K[None, None], stride=stride)[0, 0]
    torch.testing.assert_close(corr2d(X, K, stride), expected)


def test_corr2d_keeps_batch_dims_and_is_differentiable():
    torch.manual_seed(1)
    X = torch.randn(4, 2, 6, 6, requires_grad=True)
    K = torch.randn(3, 3, requires_grad=True)
    Y = corr2d(X, K)
    assert Y.shape == (4, 2, 4, 4)
    Y.sum().backward()
    X2, K2 = X.detach().clone().requires_grad_(), K.detach().clone().requires_grad_()
    F.conv2d(X2.reshape(8, 1, 6, 6), K2[None, None]).sum().backward()
    torch.testing.assert_close(K.grad, K2.grad)
    torch.testing.assert_close(X.grad, X2.grad)


def test_corr2d_rejects_non_2d_kernel():
    with pytest.raises(ValueError, match="2-D kernel"):
        corr2d(torch.randn(5, 5), torch.randn(1, 3, 3))


def test_corr2d_multi_in_matches_conv2d():
    torch.manual_seed(2)
    X, K = torch.randn(3, 8, 7), torch.randn(3, 3, 2)
    expected = F.conv2d(X[None], K[None])[0, 0]
    torch.testing.assert_close(corr2d_multi_in(X, K), expected)
    with pytest.raises(ValueError, match="channels"):
        corr2d_multi_in(torch.randn(2, 8, 7), K)


def test_corr2d_multi_in_out_matches_conv2d_batched():
    torch.manual_seed(3)
    X, K = torch.randn(2, 3, 9, 8), torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(corr2d_multi_in_out(X, K), F.conv2d(X, K))
    torch.testing.assert_close(corr2d_multi_in_out(X[0], K), F.conv2d(X[:1], K)[0])
    torch.testing.assert_close(corr2d_multi_in_out(X, K, stride=2), F.conv2d(X, K, stride=2))


@pytest.mark.parametrize("padding,stride,bias", [(0, 1, True), (1, 1, True), (2, 2, False), (1, 3, True)])
def test_Conv2D_matches_nn_Conv2d(padding, stride, bias):
    torch.manual_seed(4)
    ours = Conv2D(2, 3, kernel_size=3, padding=padding, stride=stride, bias=bias)
    ref = nn.Conv2d(2, 3, kernel_size=3, padding=padding, stride=stride, bias=bias)
    ref.load_state_dict(ours.state_dict())  # same parameter names and shapes as nn.Conv2d
    X = torch.randn(2, 2, 10, 9)
    torch.testing.assert_close(ours(X), ref(X))
    assert isinstance(ours.weight, nn.Parameter) and ours.weight.shape == (3, 2, 3, 3)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_Conv2D_gradients_match_nn_Conv2d():
    torch.manual_seed(5)
    ours, ref = Conv2D(1, 2, kernel_size=(2, 3)), nn.Conv2d(1, 2, kernel_size=(2, 3))
    ref.load_state_dict(ours.state_dict())
    X = torch.randn(3, 1, 6, 7)
    ours(X).square().sum().backward()
    ref(X).square().sum().backward()
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad)


def test_Conv2D_init_range_like_nn_Conv2d():
    torch.manual_seed(6)
    conv = Conv2D(4, 8, kernel_size=3)
    bound = 1 / (4 * 3 * 3) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > bound / 2
    assert "kernel_size=(3, 3)" in repr(conv)


def test_Conv2D_bad_input_has_clear_message():
    conv = Conv2D(1, 2, kernel_size=3)
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        conv(torch.randn(1, 8, 8))
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\].*\(2, 3, 8, 8\)"):
        conv(torch.randn(2, 3, 8, 8))


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


@pytest.mark.parametrize("size,stride", [(2, None), (3, None), (2, 1), ((2, 3), None), (3, 2)])
def test_pool2d_matches_torch(size, stride):
    torch.manual_seed(7)
    X = torch.randn(2, 3, 9, 10)
    torch.testing.assert_close(pool2d(X, size, "max", stride), F.max_pool2d(X, size, stride=stride))
    torch.testing.assert_close(pool2d(X, size, "avg", stride), F.avg_pool2d(X, size, stride=stride))


def test_pool2d_textbook_example_and_bad_mode():
    X = torch.arange(9.0).reshape(3, 3)
    assert torch.equal(pool2d(X, 2, "max", stride=1), torch.tensor([[4.0, 5.0], [7.0, 8.0]]))
    assert torch.equal(pool2d(X, 2, "avg", stride=1), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))
    with pytest.raises(ValueError, match="'max' or 'avg'"):
        pool2d(X, 2, "min")

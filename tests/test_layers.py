import pytest
import torch
from torch import nn

import d2lmini as d2l


def test_dense_matches_linear_with_same_weights():
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    dense = d2l.Dense(5, 3)
    with torch.no_grad():
        dense.weight.copy_(lin.weight)
        dense.bias.copy_(lin.bias)
    x = torch.randn(4, 5)
    torch.testing.assert_close(dense(x), lin(x))
    # gradients match too
    dense(x).sum().backward()
    lin(x).sum().backward()
    torch.testing.assert_close(dense.weight.grad, lin.weight.grad)
    torch.testing.assert_close(dense.bias.grad, lin.bias.grad)


def test_dense_registers_parameters_and_state_dict():
    dense = d2l.Dense(4, 2)
    assert [n for n, _ in dense.named_parameters()] == ["weight", "bias"]
    assert list(dense.state_dict()) == ["weight", "bias"]
    assert dense.weight.shape == (2, 4)
    assert dense.weight.abs().max() <= 0.5  # 1/sqrt(4)
    assert "in_features=4, out_features=2, bias=True" in repr(dense)


def test_dense_without_bias():
    dense = d2l.Dense(3, 2, bias=False)
    assert dense.bias is None
    assert len(list(dense.parameters())) == 1
    x = torch.randn(2, 3)
    torch.testing.assert_close(dense(x), x @ dense.weight.T)


def test_dense_bad_sizes_and_inputs():
    with pytest.raises(ValueError, match="in_features >= 1"):
        d2l.Dense(0, 3)
    with pytest.raises(ValueError, match="last dimension is 784"):
        d2l.Dense(784, 10)(torch.zeros(2, 1, 28, 28))


def test_centered_layer_has_zero_mean_and_no_parameters():
    layer = d2l.CenteredLayer()
    y = layer(torch.tensor([[1.0, 2.0, 3.0], [4.0, 4.0, 10.0]]))
    torch.testing.assert_close(y.mean(dim=1), torch.zeros(2))
    assert list(layer.parameters()) == []


def test_shared_layer_is_one_tensor_and_gradient_is_sum_of_both_uses():
    torch.manual_seed(0)
    shared = d2l.Dense(4, 4)
    net = nn.Sequential(shared, nn.Tanh(), shared)
    assert net[0].weight is net[2].weight
    assert len(list(net.parameters())) == 2  # counted once
    x = torch.randn(3, 4)
    net(x).sum().backward()
    # the same computation with two independent copies of the layer
    a, b = d2l.Dense(4, 4), d2l.Dense(4, 4)
    a.load_state_dict(shared.state_dict())
    b.load_state_dict(shared.state_dict())
    b(torch.tanh(a(x))).sum().backward()
    torch.testing.assert_close(shared.weight.grad, a.weight.grad + b.weight.grad)
    torch.testing.assert_close(shared.bias.grad, a.bias.grad + b.bias.grad)
    assert not torch.allclose(a.weight.grad, b.weight.grad)  # the two uses do contribute differently

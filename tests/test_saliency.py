import pytest
import torch
from torch import nn

import d2lmini as d2l


class Linear2(nn.Module):
    """score_c = sum(W[c] * x): the input gradient of class c is exactly W[c]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_saliency_of_a_linear_model_is_abs_weight():
    torch.manual_seed(0)
    w = torch.randn(3, 2, 4, 4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(32, 3, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(w.flatten(1))
    x = torch.randn(5, 2, 4, 4)
    s = d2l.saliency_map(model, x, target=1)
    assert s.shape == (5, 4, 4)
    expected = w[1].abs().amax(dim=0)  # max over the two channels
    torch.testing.assert_close(s, expected.expand(5, 4, 4))


def test_saliency_defaults_to_predicted_class_and_keeps_model_state():
    torch.manual_seed(0)
    model = Linear2().train()
    x = torch.randn(4, 1, 4, 4)
    pred = model(x).argmax(1)
    torch.testing.assert_close(d2l.saliency_map(model, x), d2l.saliency_map(model, x, target=pred))
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert not x.requires_grad


def test_saliency_per_image_matches_single_image_gradient():
    torch.manual_seed(1)
    model = Linear2()
    x = torch.randn(3, 1, 4, 4)
    target = torch.tensor([0, 2, 1])
    batch = d2l.saliency_map(model, x, target)
    for i in range(3):
        xi = x[i : i + 1].clone().requires_grad_(True)
        model(xi)[0, target[i]].backward()
        torch.testing.assert_close(batch[i], xi.grad[0].abs().amax(0))


def test_grad_cam_shape_range_and_hooks_removed():
    torch.manual_seed(0)
    model = d2l.models.ModernLeNet().eval()
    x = torch.randn(4, 1, 28, 28)
    cam = d2l.grad_cam(model, model.features[4], x)
    assert cam.shape == (4, 28, 28)
    assert cam.min() >= 0 and cam.max() <= 1 + 1e-6
    assert not model.features[4]._forward_hooks


def test_grad_cam_matches_hand_computation():
    torch.manual_seed(0)
    model = Linear2()
    x = torch.randn(2, 1, 4, 4)
    cam = d2l.grad_cam(model, model.conv, x, target=0)
    act = model.conv(x).detach().requires_grad_(True)
    model.fc(torch.relu(act).flatten(1))[:, 0].sum().backward()
    ref = torch.relu((act.grad.mean(dim=(2, 3), keepdim=True) * act).sum(1))
    ref = ref / ref.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    torch.testing.assert_close(cam, ref.detach())  # same size as the input: interpolation is the identity


def test_bad_inputs():
    model = Linear2()
    with pytest.raises(ValueError, match="unsqueeze"):
        d2l.saliency_map(model, torch.randn(1, 4, 4))
    with pytest.raises(ValueError, match="one per image"):
        d2l.saliency_map(model, torch.randn(3, 1, 4, 4), target=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="not a submodule"):
        d2l.grad_cam(model, nn.Conv2d(1, 2, 3), torch.randn(2, 1, 4, 4))


def test_smoothgrad_is_the_average_over_noisy_copies():
    torch.manual_seed(0)
    model = Linear2()
    x = torch.randn(3, 1, 4, 4)
    target = model(x).argmax(1)
    torch.manual_seed(5)
    got = d2l.saliency_map(model, x, smooth=4, noise=0.3)
    torch.manual_seed(5)
    noisy = [x + 0.3 * torch.randn_like(x) for _ in range(4)]
    ref = torch.stack([d2l.saliency_map(model, xn, target) for xn in noisy]).mean(0)
    torch.testing.assert_close(got, ref)
    assert not torch.allclose(got, d2l.saliency_map(model, x))  # the noise does change a ReLU network's map


def test_smoothgrad_of_a_linear_model_equals_plain_saliency():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.randn(2, 1, 4, 4)
    torch.testing.assert_close(d2l.saliency_map(model, x, target=2, smooth=5),
                               d2l.saliency_map(model, x, target=2))
    with pytest.raises(ValueError, match="smooth and noise"):
        d2l.saliency_map(model, x, smooth=-1)


def test_hires_cam_is_gradient_times_activation():
    torch.manual_seed(0)
    model = Linear2()
    x = torch.randn(2, 1, 4, 4)
    cam = d2l.grad_cam(model, model.conv, x, target=1, hires=True)
    act = model.conv(x).detach().requires_grad_(True)
    model.fc(torch.relu(act).flatten(1))[:, 1].sum().backward()
    ref = torch.relu((act.grad * act).sum(1))
    ref = ref / ref.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    torch.testing.assert_close(cam, ref.detach())
    assert not torch.allclose(cam, d2l.grad_cam(model, model.conv, x, target=1))  # flatten head: differ


def test_grad_cam_and_hires_cam_agree_after_global_average_pooling():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(3, 1, 6, 6)
    torch.testing.assert_close(d2l.grad_cam(model, model[1], x), d2l.grad_cam(model, model[1], x, hires=True))


def test_grad_cam_is_empty_when_the_layer_speaks_against_the_class():
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[3].weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]]))
        model[3].bias.copy_(torch.tensor([0.0, 10.0]))
    x = torch.rand(1, 1, 2, 2) + 0.1          # class 1 wins through its bias, against the features
    assert model(x).argmax(1).item() == 1
    cam = d2l.grad_cam(model, model[1], x)
    assert cam.shape == (1, 2, 2) and torch.count_nonzero(cam) == 0
    assert d2l.grad_cam(model, model[1], x, target=0).amax() == 1

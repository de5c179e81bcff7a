"""The checkers of chapters 03 and 04: a right answer passes, a wrong one gets its hint, none is
"not answered yet".  (The solutions notebooks prove the worked answers; these tests prove the hints.)"""

from __future__ import annotations

import torch
from torch import nn

from d2lmini import exercises as ex
from d2lmini.exercises import check


def _fresh():
    ex._RESULTS.clear()


def _net(hidden=8):
    return nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))


def test_03_1_train_step_right_wrong_and_stub():
    _fresh()

    def good(net, x, y, loss_fn, opt):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def no_zero(net, x, y, loss_fn, opt):
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def stub(*args):
        raise NotImplementedError

    assert check("03.1", good)
    v = check("03.1", no_zero)
    assert v.status == "wrong" and "zero the gradients" in v.message
    assert check("03.1", stub).status == "unanswered"


def test_03_2_largest_lr_uses_the_train_function():
    _fresh()

    class Run:
        def __init__(self, diverged):
            self.history = type("H", (), {"diverged_at": 7 if diverged else None})()

    def train_fn(lr, epochs, hidden):  # a model that diverges above lr 0.3
        return Run(lr > 0.3)

    assert check("03.2", 0.2, train_fn=train_fn)
    assert "too large" in check("03.2", 0.4, train_fn=train_fn).message
    assert "at least twice" in check("03.2", 0.1, train_fn=train_fn).message
    assert check("03.2", None, train_fn=train_fn).status == "unanswered"


def test_03_3_runs_the_experiment():
    _fresh()
    assert check("03.3", False)
    v = check("03.3", True)
    assert v.status == "wrong" and "differ by up to" in v.message
    assert check("03.3", "no").status == "wrong"


def test_03_5_and_03_6_own_function_and_model_pth(tmp_path):
    _fresh()

    def chapter_f(x):
        return x**2 + 2 * torch.sin(x) + torch.cos(x - 1) - 5

    def my_f(x):
        return torch.sin(2 * x)

    x = torch.linspace(-3, 3, 200).unsqueeze(1)
    untrained = _net()
    assert "R²" in check("03.5", my_f, net=untrained, chapter_f=chapter_f).message
    assert "chapter's f" in check("03.5", chapter_f, net=untrained, chapter_f=chapter_f).message
    assert "straight line" in check("03.5", lambda x: 2 * x + 1, net=untrained, chapter_f=chapter_f).message

    class Exact(nn.Module):  # "trained" perfectly: predicts my_f itself
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.scale * torch.sin(2 * x)

    trained = Exact()
    assert check("03.5", my_f, net=trained, chapter_f=chapter_f)

    path = tmp_path / "model.pth"
    torch.save(trained.state_dict(), path)
    copy = Exact()
    copy.load_state_dict(torch.load(path, weights_only=True))
    assert check("03.6", copy, trained=trained, path=path)
    assert "fresh one" in check("03.6", trained, trained=trained, path=path).message
    other = tmp_path / "weights.pt"
    torch.save(trained.state_dict(), other)
    assert "model.pth" in check("03.6", copy, trained=trained, path=other).message
    torch.save({"model": trained.state_dict(), "epoch": 1}, path)
    assert "plain state_dict" in check("03.6", copy, trained=trained, path=path).message
    assert torch.equal(copy(x), trained(x))


def test_04_checks_right_and_wrong():
    _fresh()
    assert check("04.1", (784 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10))
    assert "weights only" in check("04.1", 784 * 256 + 256 * 128 + 128 * 10).message

    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(10, 10), nn.Linear(10, 10)])
            self.out = nn.Linear(10, 1)

        def forward(self, x):
            for layer in self.layers:
                x = torch.relu(layer(x))
            return self.out(x)

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(10, 10), nn.Linear(10, 10)]
            self.out = nn.Linear(10, 1)

        def forward(self, x):
            for layer in self.layers:
                x = torch.relu(layer(x))
            return self.out(x)

    assert check("04.2", Fixed)
    assert "ModuleList" in check("04.2", Broken).message

    def kaiming(m):
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)

    def tiny(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)

    assert check("04.3", kaiming)
    assert "not between 0.3 and 3" in check("04.3", tiny).message
    assert check("04.4", False) and not check("04.4", True)
    assert check("04.5", nn.init.calculate_gain("leaky_relu", 0.5))
    assert "Raise" in check("04.5", 1.0).message
    assert "Lower" in check("04.5", 1.6).message
    assert check("04.5", None).status == "unanswered"

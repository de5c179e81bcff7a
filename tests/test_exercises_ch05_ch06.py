"""The checkers of chapters 05 and 06: a right answer passes, a wrong one gets its hint, none is
"not answered yet".  (The solutions notebooks prove the worked answers; these tests prove the hints.)
No test trains a network: trained models are stood in for by tiny modules of known accuracy."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from d2lmini import exercises as ex
from d2lmini.conv import conv_output_size
from d2lmini.data import FASHION_MNIST_CLASSES
from d2lmini.exercises import check


@pytest.fixture(autouse=True)
def _reader_mode(monkeypatch):
    """Reader-mode thresholds, and a clean record of results for every test."""
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    ex._RESULTS.clear()


# ---------------------------------------------------------------------------------------- chapter 05

def test_05_1_output_sizes():
    settings = [(32, 3, 1, 2), (28, 5, 0, 1), (224, 11, 2, 4), (7, 3, 1, 3)]
    right = {c: conv_output_size(*c) for c in settings}
    assert check("05.1", right)
    rounded_up = {**right, (7, 3, 1, 3): right[(7, 3, 1, 3)] + 1}
    v = check("05.1", rounded_up)
    assert v.status == "wrong" and "1 of 4 sizes are off" in v.message and "(See section 5.4.)" in v.message
    v = check("05.1", {settings[0]: right[settings[0]]})
    assert v.status == "wrong" and "missing" in v.message
    assert check("05.1", None).status == "unanswered"


def test_05_2_same_and_half_padding():
    assert check("05.2", (3, 1))
    assert "'same' padding" in check("05.2", (2, 1)).message
    assert "not 14×14" in check("05.2", (3, 3)).message
    assert check("05.2", 3).status == "error"  # not a pair: "could not check", no exception


def test_05_3_receptive_field_measured_with_autograd():
    # 1 + 2·4 (stride-1 layers) + 2 (the stride-2 layer) + 2·2 (the layer after it)
    assert check("05.3", 15)
    assert "six stride-1 layers" in check("05.3", 13).message
    assert "(k − 1) × (product" in check("05.3", 14).message


def test_05_4_horizontal_edge_kernel():
    assert check("05.4", torch.tensor([[1.0], [-1.0]]))
    assert check("05.4", [[1.0], [-1.0]])  # a nested list works too
    assert "wrong sign" in check("05.4", torch.tensor([[-1.0], [1.0]])).message
    assert "shape 2×1" in check("05.4", torch.tensor([[1.0, -1.0]])).message
    assert "2-D kernel" in check("05.4", torch.tensor([1.0, -1.0])).message
    assert "is not edges.T" in check("05.4", torch.tensor([[2.0], [-2.0]])).message


def test_05_5_conv_parameter_formula():
    assert check("05.5", lambda c_in, c_out, k: c_out * (c_in * k * k + 1))
    v = check("05.5", lambda c_in, c_out, k: c_in * c_out * k * k)
    assert v.status == "wrong" and "one bias per output channel" in v.message

    def stub(c_in, c_out, k):
        raise NotImplementedError

    assert check("05.5", stub).status == "unanswered"


def test_05_6_losses_without_momentum():
    steady = [0.5 * 0.9 ** i for i in range(150)]  # ends near 7e-8
    assert check("05.6", steady)
    assert "150 steps" in check("05.6", steady[:100]).message
    waves = [v * (1.5 if i % 10 == 5 else 1.0) for i, v in enumerate(steady)]
    assert "momentum" in check("05.6", waves).message
    slow = [0.5 * 0.99 ** i for i in range(150)]  # ends near 0.11
    assert "Raise the learning rate" in check("05.6", slow).message
    diverged = [0.5 * 1.1 ** i for i in range(149)] + [math.inf]
    assert "too large" in check("05.6", diverged).message


# ---------------------------------------------------------------------------------------- chapter 06

def test_06_1_and_06_2_counted_from_a_fresh_lenet():
    assert check("06.1", 6 * 5 * 5 + 6)
    assert "bias" in check("06.1", 6 * 5 * 5).message
    assert check("06.1", 7).status == "wrong"
    assert check("06.2", (8, 16, 5, 5))
    assert check("06.2", torch.Size([8, 16, 5, 5]))
    assert "four numbers" in check("06.2", (16, 5, 5)).message
    assert "batch" in check("06.2", (1, 16, 5, 5)).message
    assert "last pooling layer" in check("06.2", (8, 16, 10, 10)).message


class _Labeller(nn.Module):
    """A stand-in for a trained model: right except on every `wrong_every`-th example.  Each input row
    is (index, label), so the model's accuracy is known exactly."""

    def __init__(self, wrong_every: int):
        super().__init__()
        self.wrong_every = wrong_every
        self.unused = nn.Parameter(torch.zeros(1))  # evaluate() reads the device from a parameter

    def forward(self, x):
        index, label = x[:, 0].long(), x[:, 1].long()
        pred = torch.where(index % self.wrong_every == 0, (label + 1) % 10, label)
        return nn.functional.one_hot(pred, 10).float()


def _data(n=1000, batch=100):
    labels = torch.arange(n) % 10
    x = torch.stack([torch.arange(n), labels], dim=1).float()
    return [(x[i:i + batch], labels[i:i + batch]) for i in range(0, n, batch)]


def test_06_3_peak_learning_rate_judged_by_the_models():
    data = _data()
    models = {0.01: _Labeller(10), 0.001: _Labeller(5)}  # accuracies 0.9 and 0.8
    assert check("06.3", 0.01, models=models, data=data)
    v = check("06.3", 0.001, models=models, data=data)
    assert v.status == "wrong" and "0.900" in v.message and "0.800" in v.message
    tie = {0.01: _Labeller(10), 0.001: _Labeller(10)}
    assert "either answer is fair" in check("06.3", 0.001, models=tie, data=data).message
    untrained = {0.01: _Labeller(10), 0.001: _Labeller(1)}  # accuracy 0
    assert "reaches only 0.000" in check("06.3", 0.01, models=untrained, data=data).message
    assert "keys 0.01 and 0.001" in check("06.3", 0.01, models={0.1: models[0.01]}, data=data).message
    assert "pass the two trained models" in check("06.3", 0.01).message
    assert check("06.3", None, models=models, data=data).status == "unanswered"


class _History:
    def __init__(self, lr, losses):
        self.history = {"lr": [lr] * len(losses), "loss": list(losses)}


def test_06_4_loss_of_guessing():
    h = _History(0.1, [2.307, 2.305, 2.3033])
    assert check("06.4", 2.30, history=h)
    assert "lr=0.1" in check("06.4", 2.30, history=_History(0.9, [2.3, 2.3, 2.3])).message
    assert "3 epochs" in check("06.4", 2.30, history=_History(0.1, [2.3, 2.3])).message
    assert "not 2.50" in check("06.4", 2.50, history=h).message
    learned = _History(0.1, [2.0, 1.5, 1.2])
    assert "guessing uniformly" in check("06.4", 1.2, history=learned).message
    assert "pass the history" in check("06.4", 2.30).message


def test_06_5_columns_not_rows():
    cm = torch.eye(10, dtype=torch.long) * 100
    cm[0, 6] = 50   # 50 T-shirts called Shirt: the Shirt column has the most false alarms
    cm[0, 2] = 20
    cm[4, 2] = 20   # Pullover is predicted 40 times wrongly; T-shirt/top is the worst *row* (70)
    shirt, tshirt = FASHION_MNIST_CLASSES[6], FASHION_MNIST_CLASSES[0]
    assert check("06.5", shirt, cm=cm)
    assert check("06.5", f"  {shirt.upper()} ", cm=cm)  # case and spaces do not matter
    assert "most often *mistaken* (a row)" in check("06.5", tshirt, cm=cm).message
    assert "each column" in check("06.5", FASHION_MNIST_CLASSES[2], cm=cm).message
    assert "pass the confusion matrix" in check("06.5", shirt).message

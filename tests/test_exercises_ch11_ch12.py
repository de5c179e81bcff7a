"""The checkers of chapters 11 and 12 (d2lmini/exercises/ch11.py, ch12.py): right answers pass, wrong ones
get a hint that says what is off, and the expected values are computed, not stored."""

from __future__ import annotations

import copy
import inspect

import torch
from torch import nn

import d2lmini as d2l
from d2lmini.exercises import ch11, ch12, check, exercises_of


def _new_head(source: nn.Module, k: int = 5) -> nn.Module:
    model = copy.deepcopy(source)
    model.classifier[-1] = nn.Linear(84, k)
    return model


def test_both_chapters_have_five_checked_exercises():
    assert exercises_of(11) == [f"11.{k}" for k in range(1, 6)]
    assert exercises_of(12) == [f"12.{k}" for k in range(1, 6)]


def test_no_answer_is_a_literal_in_the_checkers():
    for module in (ch11, ch12):
        src = inspect.getsource(module)
        assert "85 * k" not in src and "== 256" not in src and "== 15" not in src


def test_11_1_head_formula(capsys):
    assert check("11.1", lambda k: 84 * k + k)
    v = check("11.1", lambda k: 84 * k)
    assert not v and "bias" in v.message
    assert not check("11.1", lambda k: 100 * k)


def test_11_2_freeze_features():
    torch.manual_seed(0)
    source = d2l.models.ModernLeNet(10)
    model = _new_head(source)
    model.features.requires_grad_(False)
    assert check("11.2", model, source=source)
    model.classifier.requires_grad_(False)
    assert "classifier" in check("11.2", model, source=source).message
    fresh = _new_head(source)
    assert "requires_grad=True" in check("11.2", fresh, source=source).message


def test_11_3_parameter_groups():
    net = nn.Module()
    net.layer3, net.layer4, net.fc = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 5)
    good = torch.optim.Adam([{"params": net.layer4.parameters(), "lr": 1e-4},
                             {"params": net.fc.parameters(), "lr": 1e-3}])
    assert check("11.3", good, model=net)
    swapped = torch.optim.Adam([{"params": net.layer4.parameters(), "lr": 1e-3},
                                {"params": net.fc.parameters(), "lr": 1e-3}])
    assert "layer4's learning rate" in check("11.3", swapped, model=net).message
    everything = torch.optim.Adam([{"params": net.layer3.parameters()},
                                   {"params": net.layer4.parameters(), "lr": 1e-4},
                                   {"params": net.fc.parameters(), "lr": 1e-3}], lr=1e-3)
    assert "outside layer4 and fc" in check("11.3", everything, model=net).message


def test_11_4_structure_and_a_trained_head():
    torch.manual_seed(0)
    source = d2l.models.ModernLeNet(5).eval()
    body = copy.deepcopy(nn.Sequential(source.features, source.classifier[:4]))
    body.requires_grad_(False)
    model = nn.Sequential(body, nn.Linear(120, 5))
    X = torch.rand(40, 1, 28, 28)
    with torch.no_grad():
        y = model(X).argmax(dim=1)  # labels the model gets right: accuracy 1
    test = d2l.TensorLoader(X, y, batch_size=40)
    baseline = torch.tensor([0.70, 0.72, 0.74])
    v = check("11.4", model, source=source, test=test, baseline=baseline)
    assert v and "1.000" in v.message and "better than" in v.message
    body[0][0].weight.requires_grad_(True)
    assert "requires_grad=True" in check("11.4", model, source=source, test=test,
                                         baseline=baseline).message
    wrong_head = nn.Sequential(body, nn.Linear(120, 3))
    assert "Linear(120, 5)" in check("11.4", wrong_head, source=source, test=test,
                                     baseline=baseline).message
    retrained = nn.Sequential(copy.deepcopy(source.features), copy.deepcopy(source.classifier[:4]),
                              nn.Linear(120, 5))
    with torch.no_grad():
        retrained[0][0].weight.add_(1.0)
    assert "unchanged" in check("11.4", retrained, source=source, test=test,
                                baseline=baseline).message


def test_11_5_the_verdict_is_computed_from_the_readers_numbers():
    scratch = torch.tensor([0.90, 0.91, 0.92])
    tuned = torch.tensor([0.80, 0.81, 0.82])
    assert check("11.5", {"scratch": scratch, "fine-tuning": tuned, "verdict": "scratch is better"})
    v = check("11.5", {"scratch": scratch, "fine-tuning": tuned, "verdict": "transfer is better"})
    assert not v and "scratch is better" in v.message
    close_ = {"scratch": scratch, "fine-tuning": scratch + 0.001, "verdict": "within noise"}
    assert check("11.5", close_)
    assert "at least" in check("11.5", {"scratch": scratch[:1], "fine-tuning": tuned[:1],
                                        "verdict": "within noise"}).message


def test_12_1_largest_integer():
    assert check("12.1", 256)
    assert "representable too" in check("12.1", 255).message
    assert "rounds to 256" in check("12.1", 257).message


def test_12_2_inf_zero_or_neither():
    right = {"torch.tensor(300.0).half()": "neither", "torch.tensor(1e5).half()": "inf",
             "torch.tensor(1e-9).bfloat16()": "neither"}
    assert check("12.2", right)
    assert not check("12.2", {**right, "torch.tensor(1e-9).bfloat16()": "0"})
    assert "no entry" in check("12.2", {"torch.tensor(300.0).half()": "neither"}).message


def test_12_3_restored_scaler(tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**18, growth_interval=20)
    scaler._lazy_init_scale_growth_tracker(torch.device("cpu"))
    scaler._growth_tracker.fill_(7)
    path = d2l.save_checkpoint(tmp_path / "s.pt", nn.Linear(2, 2), scaler=scaler)
    restored = torch.amp.GradScaler("cpu", growth_interval=20)
    d2l.load_checkpoint(path, scaler=restored)
    assert check("12.3", restored, path=path)
    assert "fresh" in check("12.3", torch.amp.GradScaler("cpu", growth_interval=20), path=path).message


def test_12_4_largest_scale_exponent():
    assert check("12.4", 15)
    assert "run it" in check("12.4", 16).message
    assert "still works" in check("12.4", 14).message


def test_12_5_e5m2_zeros():
    torch.manual_seed(0)
    g = torch.randn(10_000) * 10.0 ** torch.randint(-9, -1, (10_000,))
    q = ch12._round_to_format(g, 5, 10)
    assert torch.equal(q, g.half().double())  # the checker's rounding is float16's for e=5, m=10
    want = tuple(float((ch12._round_to_format(g * s, 5, 2) == 0).double().mean()) for s in (1, 2.0**16))
    assert check("12.5", want, grads=g)
    assert "unscaled" in check("12.5", (0.0, want[1]), grads=g).message
    assert "between 0 and 1" in check("12.5", (50.0, 1.0), grads=g).message

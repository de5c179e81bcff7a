"""Tests for d2lmini.transfer: class subsets, freezing, the book's source model, offline weights."""

from __future__ import annotations

import socket
import urllib.error

import pytest
import torch
import torchvision
from torch import nn

import d2lmini as d2l
from d2lmini.transfer import WeightsUnavailableError, class_subset, count_trainable, freeze, load_pretrained


def test_class_subset_relabels_and_samples_per_class():
    X = torch.arange(40).float()
    y = torch.arange(40) % 4  # 10 items of each class 0..3
    Xs, ys = class_subset(X, y, classes=(3, 1))
    assert len(Xs) == 20 and set(ys.tolist()) == {0, 1}
    assert torch.equal(ys, torch.where(y[Xs.long()] == 3, 0, 1))  # 3 -> 0, 1 -> 1
    Xs, ys = class_subset(X, y, classes=(3, 1), n_per_class=4, seed=1)
    assert torch.bincount(ys).tolist() == [4, 4]
    Xs2, _ = class_subset(X, y, classes=(3, 1), n_per_class=4, seed=1)
    assert torch.equal(Xs, Xs2)  # same seed, same sample


def test_class_subset_bad_inputs():
    y = torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match="only 1 items"):
        class_subset(torch.zeros(3), y, (0, 1), n_per_class=2)
    with pytest.raises(ValueError, match="class 5 does not occur"):
        class_subset(torch.zeros(3), y, (0, 5))


def test_freeze_and_count_trainable():
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))  # 15 + 8 parameters
    assert count_trainable(net) == (23, 23)
    freeze(net)
    freeze(net[1], frozen=False)
    assert count_trainable(net) == (8, 23)
    assert not net[0].weight.requires_grad and net[1].weight.requires_grad
    net(torch.randn(5, 4)).sum().backward()
    assert net[0].weight.grad is None and net[1].weight.grad is not None


def _offline(monkeypatch):
    """Make every way to the weights fail as it does offline; nothing here touches the network."""
    def no_download(*args, **kwargs):
        print('Downloading: "https://example.invalid/w.pth"')  # as torch.hub does, on stdout
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    def no_socket(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(socket, "create_connection", no_socket)


def test_load_pretrained_offline_gives_one_clear_message(monkeypatch, capsys):
    _offline(monkeypatch)
    before = socket.getdefaulttimeout()
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    with pytest.raises(WeightsUnavailableError) as info:
        load_pretrained(torchvision.models.resnet18, weights)
    msg = str(info.value)
    assert "offline" in msg and weights.url in msg and "URLError" in msg
    assert "d2l.source_model()" in msg
    assert isinstance(info.value, d2l.D2LMiniError)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # one message, no chained trace
    assert socket.getdefaulttimeout() == before  # the short timeout is undone
    assert capsys.readouterr() == ("", "")  # nothing printed besides the one message


def test_load_pretrained_sets_a_short_timeout_and_returns_the_model():
    seen = {}

    def builder(weights):
        seen["timeout"], seen["weights"] = socket.getdefaulttimeout(), weights
        return nn.Linear(2, 2)

    model = load_pretrained(builder, "W", timeout=3.0)
    assert isinstance(model, nn.Linear) and seen == {"timeout": 3.0, "weights": "W"}


def test_source_model_trains_saves_and_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("D2LMINI_SMOKE", "1")  # 400 images per class, 1 epoch
    path = tmp_path / "src.pt"
    m1 = d2l.source_model(classes=(0, 1), path=path)
    assert "Trained the source model" in capsys.readouterr().out and path.is_file()
    ckpt = d2l.load_checkpoint(path, restore_rng=False)
    assert ckpt["classes"] == [0, 1] and ckpt["epochs"] == 1 and 0.5 < ckpt["test_accuracy"] <= 1
    m2 = d2l.source_model(classes=(0, 1), path=path)
    assert "Loaded the source model" in capsys.readouterr().out
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(),
                                                 strict=True))
    assert m2.classifier[-1].out_features == 2 and not m2.training
    path.write_bytes(b"not a checkpoint")
    d2l.source_model(classes=(0, 1), path=path)  # a corrupt file is trained again, not a crash
    out = capsys.readouterr().out
    assert "Training the source model again" in out and "Trained the source model" in out

"""Tests for d2lmini.hub: downloaded weights, and one clear message offline (nothing touches the network)."""

from __future__ import annotations

import socket
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import d2lmini as d2l
from d2lmini.hub import WeightsUnavailableError, _hub_checkpoints, load_pretrained


def _offline(monkeypatch):
    """Make every way to the weights fail as it does offline."""
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
    assert "d2l.source_model()" in msg and _hub_checkpoints() in msg
    assert str(Path.home()) not in msg  # no machine path: the home folder is written ~
    assert isinstance(info.value, d2l.D2LMiniError)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # one message, no chained trace
    assert socket.getdefaulttimeout() == before  # the short timeout is undone
    assert capsys.readouterr() == ("", "")  # nothing printed besides the one message


def test_hub_checkpoints_is_written_from_home(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(Path.home() / ".cache" / "torch" / "hub"))
    assert _hub_checkpoints() == "~/.cache/torch/hub/checkpoints"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert str(tmp_path) not in _hub_checkpoints()


def test_load_pretrained_sets_a_short_timeout_and_returns_the_model():
    seen = {}

    def builder(weights):
        seen["timeout"], seen["weights"] = socket.getdefaulttimeout(), weights
        return nn.Linear(2, 2)

    model = load_pretrained(builder, "W", timeout=3.0)
    assert isinstance(model, nn.Linear) and seen == {"timeout": 3.0, "weights": "W"}
    assert d2l.load_pretrained is load_pretrained and d2l.WeightsUnavailableError is WeightsUnavailableError

from pathlib import Path

import d2lmini as d2l
from d2lmini import config


def test_smoke_switch(monkeypatch):
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    assert not d2l.config.is_smoke()
    assert d2l.by_mode(10, 1) == 10
    assert "Reader mode" in d2l.config.mode_banner()
    for value in ("1", "true", "YES", "on"):
        monkeypatch.setenv("D2LMINI_SMOKE", value)
        assert d2l.config.is_smoke()
        assert d2l.by_mode(10, 1) == 1
        assert "SMOKE MODE ON" in d2l.config.mode_banner()
    monkeypatch.setenv("D2LMINI_SMOKE", "0")
    assert not d2l.config.is_smoke()


def test_data_root_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("D2LMINI_DATA", str(tmp_path / "x"))
    assert d2l.data_root() == tmp_path / "x"
    monkeypatch.delenv("D2LMINI_DATA")
    assert d2l.data_root() == Path(config.__file__).resolve().parent.parent / "data"


def test_mirror_dirs_order(monkeypatch, tmp_path):
    monkeypatch.setenv("D2LMINI_FASHION_MNIST_MIRROR", str(tmp_path))
    assert config.mirror_dirs() == [tmp_path, config.DEBIAN_FASHION_MNIST]
    monkeypatch.delenv("D2LMINI_FASHION_MNIST_MIRROR")
    assert config.mirror_dirs() == [config.DEBIAN_FASHION_MNIST]


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert d2l.device.get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert d2l.device.get_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert d2l.device.get_device() == torch.device("cpu")


def test_setup_prints_banner_and_the_device_it_returns(monkeypatch, capsys):
    import torch

    monkeypatch.setenv("D2LMINI_SMOKE", "1")
    monkeypatch.setattr("d2lmini.session.get_device", lambda: torch.device("meta"))
    monkeypatch.setattr("d2lmini.session.device_info", lambda device: f"described {device.type}")
    device = d2l.setup(seed=3)
    out = capsys.readouterr().out.splitlines()
    assert out == [d2l.config.mode_banner(), "Device: described meta"] and "SMOKE MODE ON" in out[0]
    assert device == torch.device("meta")
    monkeypatch.delenv("D2LMINI_SMOKE")
    d2l.setup()
    assert capsys.readouterr().out.splitlines()[0] == "Reader mode: full data and epochs."


def test_setup_and_seed_everything_seed_torch_and_python():
    import random

    import torch

    d2l.seed_everything(3)
    a = (torch.rand(2), random.random())
    torch.rand(5)
    d2l.setup(seed=3)
    b = (torch.rand(2), random.random())
    assert torch.equal(a[0], b[0]) and a[1] == b[1]


def test_device_info_cpu():
    import torch

    assert d2l.device_info(torch.device("cpu")).startswith("cpu:")
    assert d2l.device_info(torch.device("mps")) == "mps: Apple GPU"

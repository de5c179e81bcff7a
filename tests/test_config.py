from pathlib import Path

import d2lmini as d2l
from d2lmini import config


def test_smoke_switch(monkeypatch):
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    assert not d2l.is_smoke()
    assert d2l.by_mode(10, 1) == 10
    assert "Reader mode" in d2l.mode_banner()
    for value in ("1", "true", "YES", "on"):
        monkeypatch.setenv("D2LMINI_SMOKE", value)
        assert d2l.is_smoke()
        assert d2l.by_mode(10, 1) == 1
        assert "SMOKE MODE ON" in d2l.mode_banner()
    monkeypatch.setenv("D2LMINI_SMOKE", "0")
    assert not d2l.is_smoke()


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


def test_setup_prints_banner_and_device(monkeypatch, capsys):
    monkeypatch.setenv("D2LMINI_SMOKE", "1")
    device = d2l.setup(seed=3)
    out = capsys.readouterr().out
    assert "SMOKE MODE ON" in out and "Device:" in out
    assert device == d2l.get_device()


def test_device_info_cpu():
    import torch

    assert d2l.device_info(torch.device("cpu")).startswith("cpu:")

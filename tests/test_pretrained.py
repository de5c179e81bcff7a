"""Tests for d2lmini.pretrained: the book's own source model, trained once and cached."""

from __future__ import annotations

import torch

import d2lmini as d2l
from d2lmini.pretrained import _shown_path, source_model


def test_source_model_trains_saves_and_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("D2LMINI_SMOKE", "1")  # 400 images per class, 1 epoch
    monkeypatch.setenv("D2LMINI_DATA", str(d2l.data_root()))  # the data stays where it is
    path = tmp_path / "src.pt"
    state = torch.get_rng_state()
    m1 = source_model(classes=(0, 1), n_images=6000, path=path)
    assert torch.equal(torch.get_rng_state(), state)  # the notebook's random state is left alone
    out = capsys.readouterr().out
    assert "Trained the source model in" in out and "on 800 images of 2 classes" in out and path.is_file()
    assert str(tmp_path) not in out  # no machine path in what it prints
    ckpt = d2l.load_checkpoint(path)
    assert ckpt["classes"] == [0, 1] and ckpt["epochs"] == 1 and ckpt["n_images"] == 6000
    assert 0.5 < ckpt["test_accuracy"] <= 1
    m2 = source_model(classes=(0, 1), n_images=6000, path=path)
    assert "Loaded the source model" in capsys.readouterr().out
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(),
                                                 strict=True))
    assert m2.classifier[-1].out_features == 2 and not m2.training
    source_model(classes=(0, 1), n_images=5000, path=path)  # trained differently: trained again
    assert "Trained the source model" in capsys.readouterr().out
    path.write_bytes(b"not a checkpoint")
    source_model(classes=(0, 1), n_images=5000, path=path)  # a corrupt file is trained again, not a crash
    out = capsys.readouterr().out
    assert "Training the source model again" in out and "Trained the source model" in out


def test_source_model_sees_only_the_first_n_images(tmp_path, monkeypatch):
    monkeypatch.setenv("D2LMINI_SMOKE", "1")
    X, y = d2l.fashion_mnist_tensors(True)
    seen = {}
    real = d2l.pretrained.class_subset

    def spy(Xs, ys, classes, n_per_class=None, seed=0):
        seen.setdefault("n", len(Xs))
        return real(Xs, ys, classes, n_per_class, seed)

    monkeypatch.setattr(d2l.pretrained, "class_subset", spy)
    source_model(classes=(0, 1), n_images=5000, path=tmp_path / "s.pt", verbose=False)
    assert seen["n"] == 5000 and len(X) == 60000


def test_shown_path_is_relative_to_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("D2LMINI_DATA", str(tmp_path))
    assert _shown_path(tmp_path / "pretrained" / "a.pt") == "data_root()/pretrained/a.pt"
    assert _shown_path("/elsewhere/b.pt") == "b.pt"

"""Tests for d2lmini.amp: the MixedPrecision Learner callback."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import d2lmini as d2l
from d2lmini.amp import MixedPrecision


def _data(n: int = 512, seed: int = 0) -> d2l.TensorLoader:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 20, generator=g)
    y = (X[:, :3].sum(dim=1) > 0).long() + (X[:, 3] > 1).long()  # 3 classes, learnable
    return d2l.TensorLoader(X, y, batch_size=64, shuffle=True)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))


class RecordDtypes(d2l.Callback):
    def __init__(self) -> None:
        self.pred_dtypes: set[torch.dtype] = set()

    def after_loss(self, learn: d2l.Learner) -> None:
        self.pred_dtypes.add(learn.preds.dtype)


def _first_last(losses: list[float], k: int = 5) -> tuple[float, float]:
    return sum(losses[:k]) / k, sum(losses[-k:]) / k


def test_bfloat16_on_cpu_trains_with_bf16_outputs_and_fp32_weights():
    rec = RecordDtypes()
    mp = MixedPrecision()
    learn = d2l.Learner(_model(), _data(), opt=torch.optim.Adam, lr=1e-2, callbacks=[mp, rec],
                        device=torch.device("cpu"))
    hist = learn.fit(4)
    first, last = _first_last(hist.step_loss)
    assert last < 0.6 * first
    assert mp.dtype == torch.bfloat16 and mp.scaler is None
    assert rec.pred_dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())  # master weights stay fp32
    assert not torch.is_autocast_enabled("cpu")  # autocast is left after every batch


def test_without_callback_outputs_are_float32():
    rec = RecordDtypes()
    d2l.Learner(_model(), _data(n=64), callbacks=[rec], device=torch.device("cpu")).fit(1)
    assert rec.pred_dtypes == {torch.float32}


def _cpu_float16_ok() -> bool:
    try:
        torch.amp.GradScaler("cpu")
        with torch.autocast("cpu", dtype=torch.float16):
            return nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.float16
    except (RuntimeError, AttributeError, TypeError):
        return False


needs_cpu_float16 = pytest.mark.skipif(
    not _cpu_float16_ok(), reason="this torch has no float16 CPU autocast / GradScaler('cpu')")


@needs_cpu_float16
def test_float16_uses_grad_scaler_and_trains():
    mp = MixedPrecision(dtype=torch.float16)
    learn = d2l.Learner(_model(), _data(), opt=torch.optim.Adam, lr=1e-2, callbacks=[mp],
                        device=torch.device("cpu"))
    hist = learn.fit(4)
    assert isinstance(mp.scaler, torch.amp.GradScaler)
    first, last = _first_last(hist.step_loss)
    assert last < 0.6 * first
    # the logged loss is the true (unscaled) loss, not loss * 65536
    assert max(hist.step_loss) < 10


@needs_cpu_float16
def test_scaler_skips_steps_with_inf_gradients_and_lowers_the_scale():
    mp = MixedPrecision(dtype=torch.float16, init_scale=2.0**40)  # loss * 2**40 overflows float16
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    learn = d2l.Learner(model, _data(n=64), opt=torch.optim.SGD, lr=0.1, callbacks=[mp],
                        device=torch.device("cpu"))
    learn.fit(1)  # one batch
    assert mp.skipped_steps == 1
    assert mp.scaler.get_scale() == 2.0**39
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_bad_dtype_is_one_clear_message():
    with pytest.raises(ValueError, match="float16 or torch.bfloat16"):
        MixedPrecision(dtype=torch.float32)


def test_autocast_is_left_when_training_stops_mid_batch():
    def nan_loss(preds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return preds.float().sum() * float("nan")

    learn = d2l.Learner(_model(), _data(n=64), loss_fn=nan_loss, callbacks=[MixedPrecision()],
                        device=torch.device("cpu"))
    hist = learn.fit(1)
    assert hist.diverged_at == 1  # the very first step
    assert not torch.is_autocast_enabled("cpu")


def test_default_dtype_is_autocasts_own_default():
    from d2lmini.amp import _default_dtype

    assert _default_dtype("cpu") == torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert _default_dtype("cuda") == torch.float16
    mp = MixedPrecision()
    d2l.Learner(_model(), _data(n=64), callbacks=[mp], device=torch.device("cpu")).fit(1)
    assert mp.dtype == torch.bfloat16 and "bfloat16" in repr(mp)


@needs_cpu_float16
def test_clipping_applies_to_the_unscaled_gradients():
    max_norm = 1e-3
    mp = MixedPrecision(dtype=torch.float16, max_grad_norm=max_norm)
    model = _model()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    learn = d2l.Learner(model, _data(n=64), opt=torch.optim.SGD, lr=1.0, callbacks=[mp],
                        device=torch.device("cpu"))
    learn.fit(1)  # one batch of 64
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    # SGD with lr 1 moves the weights by the clipped gradient: norm max_norm, not max_norm / scale
    assert abs(float((after - before).norm()) - max_norm) < 1e-2 * max_norm
    assert mp.skipped_steps == 0 and mp.scales == [2.0**16]


@needs_cpu_float16
def test_scales_are_recorded_and_grow_after_growth_interval_good_steps():
    mp = MixedPrecision(dtype=torch.float16, growth_interval=2)
    d2l.Learner(_model(), _data(n=320), opt=torch.optim.Adam, lr=1e-3, callbacks=[mp],
                device=torch.device("cpu")).fit(1)  # 5 batches
    assert mp.scales == [2.0**16, 2.0**16, 2.0**17, 2.0**17, 2.0**18]


@needs_cpu_float16
def test_learner_checkpoint_saves_and_restores_the_scaler(tmp_path):
    mp = MixedPrecision(dtype=torch.float16, growth_interval=3)
    learn = d2l.Learner(_model(), _data(n=320), opt=torch.optim.Adam, lr=1e-3, callbacks=[mp],
                        device=torch.device("cpu"))
    learn.fit(1)  # 5 good steps: the scale doubled once, the growth tracker stands at 2
    path = learn.save(tmp_path / "fp16.pt")
    saved = d2l.load_checkpoint(path)["scaler"]
    assert saved["scale"] == 2.0**17 and saved["_growth_tracker"] == 2
    mp2 = MixedPrecision(dtype=torch.float16, growth_interval=3)
    learn2 = d2l.Learner(_model(), _data(n=320), opt=torch.optim.Adam, lr=1e-3, callbacks=[mp2],
                         device=torch.device("cpu"))
    learn2.resume(path)
    learn2.fit(1)
    assert mp2.scales[:2] == [2.0**17, 2.0**18]  # continues: one more good step, then it doubles

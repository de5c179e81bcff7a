import functools
import math

import pytest
import torch
from torch import nn

import d2lmini as d2l
from d2lmini import train as T


def blobs(n=256, seed=0):
    """Two well-separated Gaussian blobs: a problem any classifier solves."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    y = (torch.arange(n) % 2)
    X[y == 1] += 4.0
    return X, y


def loaders(batch_size=32):
    X, y = blobs()
    return d2l.TensorLoader(X, y, batch_size, shuffle=True), d2l.TensorLoader(*blobs(128, 1), batch_size)


def regression(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, generator=g)
    return X, 5 * X


def test_accuracy_metric():
    preds = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert d2l.train.accuracy(preds, torch.tensor([0, 1, 1])).item() == pytest.approx(2 / 3)


def test_fit_reduces_loss_and_returns_keras_history():
    torch.manual_seed(0)
    train, val = loaders()
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    before = d2l.evaluate(net, val)
    h = d2l.fit(net, train, epochs=5, lr=0.1, val_data=val, verbose=False)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert h.epochs == 5 and len(h.history["val_loss"]) == 5
    assert h.history["loss"][-1] < h.history["loss"][0] and h.last("val_loss") < before["loss"]
    assert h.last("val_accuracy") > 0.95
    assert len(h.step_loss) == 5 * len(train)
    assert h.stop_reason is None and h.diverged_at is None
    assert "History(5 epochs: loss=" in repr(h)
    with pytest.raises(KeyError, match="'iou' was not logged; the history holds: loss, accuracy"):
        h.last("iou")


def test_fit_prints_one_line_per_epoch(capsys):
    train, _ = loaders()
    d2l.fit(nn.Linear(2, 2), train, epochs=2, lr=0.1)
    lines = capsys.readouterr().out.splitlines()[-3:]
    assert lines[0].split()[:3] == ["epoch", "loss", "accuracy"]
    assert lines[2].split()[0] == "2/2" and lines[2].endswith(" s")


def test_regression_without_metrics():
    X = torch.linspace(-1, 1, 64).unsqueeze(1)
    train = d2l.TensorLoader(X, 3 * X, batch_size=16)
    h = d2l.fit(nn.Linear(1, 1), train, epochs=30, lr=0.1, loss_fn=nn.MSELoss(), metrics=(), verbose=False)
    assert "accuracy" not in h.history and h.last("loss") < 1e-2


# ------------------------------------------------------------------------------------------ divergence
def test_nan_loss_stops_with_clear_message_and_skips_the_bad_step(capsys):
    torch.manual_seed(0)
    train = d2l.TensorLoader(*regression(), batch_size=8)
    net = nn.Linear(1, 1)
    h = d2l.fit(net, train, epochs=50, lr=1e3, loss_fn=nn.MSELoss(), metrics=(), verbose=False)
    out = capsys.readouterr().out
    assert h.diverged_at is not None and h.epochs < 50
    assert f"at step {h.diverged_at} (epoch {h.epochs + 1})" in out and "too high" in out
    assert "lr=1000" in h.stop_reason and d2l.messages.wrap(h.stop_reason) in out
    assert len(h.step_loss) == h.diverged_at - 1 and all(math.isfinite(v) for v in h.step_loss)
    # on the CPU the loss is checked before backward: the step that gave NaN/inf is never applied
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_model_usable_after_divergence_with_early_stopping(capsys):
    """Two good epochs, then a learning rate that really blows up in the middle of epoch 3: the best
    weights come back, and the same Learner trains on with a sane learning rate (no weights zeroed)."""
    class Blowup(d2l.Callback):
        def before_epoch(self, learn):
            learn.opt.param_groups[0]["lr"] = 1e4 if learn.epoch == 3 else 0.02

    torch.manual_seed(0)
    X, Y = regression(256)
    train, val = d2l.TensorLoader(X, Y, 16, shuffle=True), d2l.TensorLoader(*regression(64, 1), 32)
    net = nn.Linear(1, 1)
    snap = {}

    class Snap(d2l.Callback):
        order = 30

        def after_epoch(self, learn):
            snap[learn.epoch] = [p.detach().clone() for p in net.parameters()]

    learn = d2l.Learner(net, train, val, loss_fn=nn.MSELoss(), metrics=(), lr=0.02,
                        callbacks=[Blowup(), Snap(), d2l.EarlyStopping(patience=5)])
    h = learn.fit(6)
    out = capsys.readouterr().out
    assert h.diverged_at is not None and h.diverged_at > 2 * len(train)  # in the 3rd epoch, not at its start
    assert h.epochs == 2 and learn.epoch == 2 and "Restored the weights of epoch 2." in out
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), snap[2], strict=True))
    learn.callbacks = []
    learn.opt.param_groups[0]["lr"] = 0.02
    h2 = learn.fit(10)
    assert h2.epochs == 12 and h2.last("val_loss") < 0.01


def test_divergence_step_is_counted_from_one(capsys):
    calls = []

    def loss_fn(preds, y):  # the third batch's loss is NaN
        calls.append(1)
        loss = nn.functional.cross_entropy(preds, y)
        return loss * float("nan") if len(calls) == 3 else loss

    X, y = blobs(64)
    h = d2l.Learner(nn.Linear(2, 2), d2l.TensorLoader(X, y, 8), loss_fn=loss_fn).fit(2)
    assert h.diverged_at == 3 and len(h.step_loss) == 2
    assert "at step 3 (epoch 1)" in capsys.readouterr().out


# --------------------------------------------------------------------- the GPU path, run on the CPU
def _run(check_every, epochs=3, nan_at=None):
    calls = []

    def loss_fn(preds, y):  # the training loss of step nan_at is NaN (validation runs under no_grad)
        loss = nn.functional.cross_entropy(preds, y)
        if torch.is_grad_enabled():
            calls.append(1)
            return loss * float("nan") if len(calls) == nan_at else loss
        return loss

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.1), nn.ReLU(), nn.Linear(8, 2))
    train, val = loaders(16)
    learn = d2l.Learner(net, train, val, loss_fn=loss_fn, check_every=check_every, device="cpu")
    return learn, learn.fit(epochs)


def test_lazy_accumulation_gives_the_same_numbers_as_reading_every_step():
    """``check_every > 1`` is what a GPU runs (sums kept on the device, read once per epoch): on the CPU
    it must give exactly the numbers of the step-by-step path."""
    learn1, eager = _run(1)
    learn10, lazy = _run(10)
    assert learn1.check_every == 1 and learn10.check_every == 10
    assert lazy.step_loss == eager.step_loss
    for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert lazy.history[k] == eager.history[k]
    assert all(torch.equal(p, q) for p, q in zip(learn1.model.parameters(), learn10.model.parameters(),
                                                   strict=True))


def test_lazy_divergence_check_still_reports_the_step(capsys):
    learn, h = _run(check_every=7, nan_at=20)
    assert h.diverged_at == 20 and len(h.step_loss) == 19
    assert "at step 20 (epoch 2)" in capsys.readouterr().out  # 16 batches per epoch
    assert learn.step == 21  # the check came at step 21: one more step was taken on the GPU path


def test_default_check_every_follows_the_device():
    net = nn.Linear(2, 2)
    train, _ = loaders()
    assert d2l.Learner(net, train, device="cpu").check_every == 1
    assert d2l.Learner(net, train, device="meta").check_every == 50
    assert d2l.Learner(net, train, device="meta", check_every=5).check_every == 5


def test_stats_lazy_and_eager_sums_are_bitwise_equal():
    values = [torch.tensor(v, dtype=torch.float32) for v in (0.1, 1 / 3, 2.718281828, 1e-7)]
    cpu = torch.device("cpu")
    eager, lazy = T._Stats(["loss"], False, cpu), T._Stats(["loss"], True, cpu)
    for v, k in zip(values, (32, 32, 7, 1), strict=True):
        eager.add("loss", v, k)
        lazy.add("loss", v, k)
        eager.n += k
        lazy.n += k
    assert isinstance(lazy.sums["loss"], torch.Tensor) and lazy.sums["loss"].dtype == torch.float64
    assert eager.means() == lazy.means()


def test_learner_puts_a_tensor_loader_on_the_gpu(monkeypatch):
    moved = []
    monkeypatch.setattr(d2l.TensorLoader, "to", lambda self, device: moved.append((self, device)) or self)
    train, val = loaders()
    learn = d2l.Learner(nn.Linear(2, 2), train, val, device="meta")  # any non-CPU device
    learn._prepare()
    assert moved == [(train, torch.device("meta")), (val, torch.device("meta"))]
    moved.clear()
    d2l.Learner(nn.Linear(2, 2), train, val, device="cpu")._prepare()
    assert moved == []


# ------------------------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("epochs, why", [(-3, "got -3"), (0, "got 0"), (2.5, "got 2.5 (a whole number"),
                                         (True, "got True"), ("3", "got '3'")])
def test_bad_epochs_are_refused(epochs, why):
    train, _ = loaders()
    learn = d2l.Learner(nn.Linear(2, 2), train)
    with pytest.raises(ValueError, match=r"epochs must be a whole number >= 1, " + why.replace("(", r"\(")):
        learn.fit(epochs)
    assert learn.history.epochs == 0
    with pytest.raises(ValueError, match="epochs must be"):
        d2l.fit(nn.Linear(2, 2), train, epochs=epochs, verbose=False)


def test_numpy_integer_epochs_are_fine():
    np = pytest.importorskip("numpy")
    train, _ = loaders()
    assert d2l.fit(nn.Linear(2, 2), train, epochs=np.int64(1), verbose=False).epochs == 1


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), -0.1, "fast", None])
def test_bad_learning_rates_are_refused(lr):
    train, _ = loaders()
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0 \(e.g. 0.1\), got"):
        d2l.fit(nn.Linear(2, 2), train, epochs=1, lr=lr, verbose=False)


def test_bad_check_every_is_refused():
    with pytest.raises(ValueError, match="check_every must be a whole number >= 1, got 0"):
        d2l.Learner(nn.Linear(2, 2), loaders()[0], check_every=0)


def test_uint8_batch_gets_a_clear_message():
    X = torch.randint(0, 256, (16, 4), dtype=torch.uint8)
    data = [(X[:8], torch.zeros(8, dtype=torch.int64))]  # a plain list of batches: no conversion
    with pytest.raises(ValueError, match=r"batch of dtype torch.uint8 .* xb.float\(\) / 255"):
        d2l.fit(nn.Linear(4, 2), data, epochs=1, verbose=False)
    with pytest.raises(ValueError, match="dtype torch.uint8"):
        d2l.evaluate(nn.Linear(4, 2), data)
    with pytest.raises(ValueError, match="dtype torch.uint8"):
        d2l.predict(nn.Linear(4, 2), data)


def test_other_runtime_errors_pass_through():
    data = [(torch.zeros(8, 3), torch.zeros(8, dtype=torch.int64))]
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        d2l.fit(nn.Linear(4, 2), data, epochs=1, verbose=False)


def test_zero_batch_loaders_are_refused():
    empty = d2l.TensorLoader(torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64))
    train, _ = loaders()
    with pytest.raises(ValueError, match=r"train_data has no batches \(len 0\)"):
        d2l.fit(nn.Linear(2, 2), empty, epochs=1, verbose=False)
    with pytest.raises(ValueError, match=r"val_data has no batches \(len 0\)"):
        d2l.fit(nn.Linear(2, 2), train, epochs=1, val_data=empty, verbose=False)
    with pytest.raises(ValueError, match="no batches"):
        d2l.evaluate(nn.Linear(2, 2), empty)
    with pytest.raises(ValueError, match="no batches"):
        d2l.predict(nn.Linear(2, 2), empty)


def test_a_generator_used_up_after_one_epoch_is_named():
    X, y = blobs(32)
    batches = ((X[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8))  # iterates once only
    with pytest.raises(ValueError, match="gave no batches in epoch 2. An iterator or generator"):
        d2l.fit(nn.Linear(2, 2), batches, epochs=2, verbose=False)


# ---------------------------------------------------------------------------------------- metrics
def test_metric_names_for_functions_lambdas_partials_and_dicts():
    def top1(p, y):
        return d2l.train.accuracy(p, y)

    def scaled(p, y, factor=1.0):
        return factor * d2l.train.accuracy(p, y)

    fns = T.metric_fns(["accuracy", top1, lambda p, y: p.mean(), functools.partial(scaled, factor=2.0)])
    assert list(fns) == ["accuracy", "top1", "metric3", "scaled_factor2.0"]
    assert list(T.metric_fns({"acc2": top1})) == ["acc2"]
    train, val = loaders()
    h = d2l.fit(nn.Linear(2, 2), train, epochs=1, val_data=val, verbose=False,
                metrics=[lambda p, y: d2l.train.accuracy(p, y), functools.partial(scaled, factor=0.5)])
    assert {"metric1", "val_metric1", "scaled_factor0.5", "val_scaled_factor0.5"} <= set(h.history)
    assert h.last("scaled_factor0.5") == pytest.approx(h.last("metric1") / 2)


def test_unknown_and_clashing_metric_names():
    with pytest.raises(ValueError, match="unknown metric 'acc': the known metric names are accuracy"):
        T.metric_fns(["acc"])
    with pytest.raises(ValueError, match="two values would be logged as 'accuracy'"):
        T.metric_fns(["accuracy", d2l.train.accuracy])
    with pytest.raises(ValueError, match="logged as 'loss'"):
        T.metric_fns({"loss": d2l.train.accuracy})
    with pytest.raises(ValueError, match="a metric must be a name"):
        T.metric_fns([3])
    assert list(T.metric_fns("accuracy")) == ["accuracy"]


# ------------------------------------------------------------------------------ evaluate, predict
def test_predict_and_evaluate_keep_train_mode():
    X, y = blobs(20)
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    net.train()
    out, labels = d2l.predict(net, d2l.TensorLoader(X, y, 8))
    assert out.shape == (20, 2) and torch.equal(labels, y) and net.training
    res = d2l.evaluate(net, d2l.TensorLoader(X, y, 8))
    assert set(res) == {"loss", "accuracy"} and net.training


def test_evaluate_runs_in_eval_mode():
    X, y = blobs(64)
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.9))
    net.train()
    a = d2l.evaluate(net, d2l.TensorLoader(X, y, 8))
    b = d2l.evaluate(net, d2l.TensorLoader(X, y, 8))
    assert a == b  # dropout off: the same numbers twice


def test_eval_mode_restores_each_submodule_even_after_an_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout())
    net.train()
    net[1].eval()  # a frozen part kept in eval mode
    with pytest.raises(ZeroDivisionError), T.eval_mode(net) as m:
        assert m is net and not any(mod.training for mod in net.modules())
        1 / 0  # noqa: B018
    assert [mod.training for mod in net.modules()] == [True, True, False, True]
    d2l.evaluate(net, d2l.TensorLoader(*blobs(16), 8))
    d2l.predict(net, d2l.TensorLoader(*blobs(16), 8))
    assert [mod.training for mod in net.modules()] == [True, True, False, True]


def test_saliency_and_tensorboard_use_the_shared_eval_mode():
    import inspect

    from d2lmini import saliency, tboard

    for module in (saliency, tboard):
        src = inspect.getsource(module)
        assert "eval_mode(" in src and "was_training" not in src


def test_stats_sum_in_float32_on_apple_mps_which_has_no_float64():
    assert T._Stats(["loss"], True, torch.device("mps")).dtype == torch.float32
    assert T._Stats(["loss"], True, torch.device("cuda")).dtype == torch.float64


def test_a_loss_that_gives_one_value_per_item_is_refused():
    train, _ = loaders()
    with pytest.raises(ValueError, match=r"loss_fn gave 32 values \(shape \(32,\)\) for one batch.*"
                                         r"reduction='mean'"):
        d2l.fit(nn.Linear(2, 2), train, epochs=1, loss_fn=nn.CrossEntropyLoss(reduction="none"),
                verbose=False)


def test_metrics_may_give_python_numbers_but_only_one_value():
    def acc_float(p, y):  # e.g. a scikit-learn score: a Python float, not a tensor
        return float(d2l.train.accuracy(p, y))

    train, val = loaders()
    for check_every in (1, 4):  # the CPU path and the GPU path (sums kept as tensors)
        torch.manual_seed(0)
        h = d2l.Learner(nn.Linear(2, 2), train, val, metrics=["accuracy", acc_float],
                        check_every=check_every, device="cpu").fit(1)
        assert h.last("acc_float") == pytest.approx(h.last("accuracy"), abs=1e-6)
        assert h.last("val_acc_float") == pytest.approx(h.last("val_accuracy"), abs=1e-6)
    with pytest.raises(ValueError, match=r"'per_item' gave 32 values \(shape \(32,\)\) for one batch"):
        d2l.fit(nn.Linear(2, 2), train, epochs=1, verbose=False,
                metrics={"per_item": lambda p, y: (p.argmax(1) == y).float()})


def test_copies_to_an_accelerator_do_not_block_but_copies_to_the_cpu_do():
    """A non-blocking copy to the CPU may be read before it has arrived: only copies to a device are."""
    calls = []

    class Batch:
        def to(self, device, non_blocking=False):
            calls.append((device.type, non_blocking))
            return self

    T._to(Batch(), torch.device("cpu"))
    T._to(Batch(), torch.device("cuda"))
    assert calls == [("cpu", False), ("cuda", True)]


def test_look_alikes_of_a_loader_are_refused_with_what_to_pass():
    X, y = blobs(64)
    train = d2l.TensorLoader(X, y, 16)
    all_three = d2l.data.Loaders(train, train, train)
    with pytest.raises(ValueError, match=r"train_data got all three loaders .* loaders.train"):
        d2l.fit(nn.Linear(2, 2), all_three, epochs=1, verbose=False)
    with pytest.raises(ValueError, match=r"val_data got a pair of tensors \(X, y\).*d2l.TensorLoader"):
        d2l.fit(nn.Linear(2, 2), train, epochs=1, val_data=(X, y), verbose=False)
    with pytest.raises(ValueError, match="data got a pair of tensors"):
        d2l.evaluate(nn.Linear(2, 2), [X, y])
    with pytest.raises(ValueError, match="data got all three loaders"):
        d2l.predict(nn.Linear(2, 2), all_three)
    assert d2l.fit(nn.Linear(2, 2), [(X[:8], y[:8])] * 2, epochs=1, verbose=False).epochs == 1

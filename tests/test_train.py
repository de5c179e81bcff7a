import math

import pytest
import torch
from torch import nn

import d2lmini as d2l


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


def test_accuracy_metric():
    preds = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert d2l.accuracy(preds, torch.tensor([0, 1, 1])).item() == pytest.approx(2 / 3)


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


def test_fit_prints_one_line_per_epoch(capsys):
    train, _ = loaders()
    d2l.fit(nn.Linear(2, 2), train, epochs=2, lr=0.1)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2") and "accuracy" in lines[1]


def test_regression_without_metrics():
    X = torch.linspace(-1, 1, 64).unsqueeze(1)
    train = d2l.TensorLoader(X, 3 * X, batch_size=16)
    h = d2l.fit(nn.Linear(1, 1), train, epochs=30, lr=0.1, loss_fn=nn.MSELoss(), metrics=(), verbose=False)
    assert "accuracy" not in h.history and h.last("loss") < 1e-2


def test_nan_loss_stops_with_clear_message(capsys):
    torch.manual_seed(0)
    X = torch.randn(64, 1)
    train = d2l.TensorLoader(X, 5 * X, batch_size=8)
    net = nn.Linear(1, 1)
    h = d2l.fit(net, train, epochs=50, lr=1e3, loss_fn=nn.MSELoss(), metrics=(), verbose=False)
    out = capsys.readouterr().out
    assert h.diverged_at is not None and h.epochs < 50
    assert f"step {h.diverged_at}" in out and "learning rate" in out and "too high" in out
    assert "lr=1000" in h.stop_reason
    # the kernel (and the model) stay usable: training again with a sane LR works
    with torch.no_grad():
        net.weight.fill_(0.0)
        net.bias.fill_(0.0)
    h2 = d2l.fit(net, train, epochs=20, lr=0.05, loss_fn=nn.MSELoss(), metrics=(), verbose=False)
    assert h2.diverged_at is None and math.isfinite(h2.last("loss")) and h2.last("loss") < 0.1


class Recorder(d2l.Callback):
    def __init__(self, order=0):
        self.order, self.events = order, []

    def __getattribute__(self, name):
        if name in ("before_fit", "before_epoch", "before_batch", "after_loss", "before_step", "after_batch",
                    "after_epoch", "after_fit"):
            events = object.__getattribute__(self, "events")
            return lambda learn: events.append(name)
        return object.__getattribute__(self, name)


def test_callback_events_in_order():
    X, y = blobs(8)
    rec = Recorder()
    d2l.Learner(nn.Linear(2, 2), d2l.TensorLoader(X, y, 4), callbacks=[rec]).fit(1)
    batch = ["before_batch", "after_loss", "before_step", "after_batch"]
    assert rec.events == ["before_fit", "before_epoch", *batch, *batch, "after_epoch", "after_fit"]


def test_cancel_step_skips_optimizer_step():
    class Skip(d2l.Callback):
        def before_step(self, learn):
            raise d2l.CancelStep

    X, y = blobs(16)
    net = nn.Linear(2, 2)
    w = net.weight.detach().clone()
    d2l.Learner(net, d2l.TensorLoader(X, y, 4), callbacks=[Skip()]).fit(2)
    assert torch.equal(net.weight, w)
    assert all(p.grad is None or torch.all(p.grad == 0) for p in net.parameters())


def test_early_stopping_stops_and_restores_best(capsys):
    class FakeVal(d2l.Callback):  # pretend val_loss got worse after epoch 2
        order = 5

        def after_epoch(self, learn):
            learn.history.history["val_loss"][-1] = [0.5, 0.4, 0.6, 0.7, 0.8, 0.9][learn.epoch - 1]

    train, val = loaders()
    es = d2l.EarlyStopping(patience=2)
    net = nn.Linear(2, 2)
    snapshots = {}

    class Snap(d2l.Callback):
        order = 6

        def after_epoch(self, learn):
            snapshots[learn.epoch] = net.weight.detach().clone()

    h = d2l.Learner(net, train, val, callbacks=[FakeVal(), Snap(), es]).fit(6)
    assert h.epochs == 4 and "Early stopping after epoch 4" in h.stop_reason
    assert torch.equal(net.weight, snapshots[2])


def test_checkpoint_and_resume_reproduce_the_uninterrupted_run(tmp_path):
    def make():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, 2))
        return net, d2l.TensorLoader(*blobs(), batch_size=32, shuffle=True, seed=7)

    net, train = make()
    full = d2l.Learner(net, train, opt=torch.optim.SGD, lr=0.05).fit(4)

    net, train = make()
    path = tmp_path / "ckpt.pt"
    learn = d2l.Learner(net, train, lr=0.05, callbacks=[d2l.Checkpoint(path, monitor="loss")])
    learn.fit(2)
    net2, train2 = make()
    torch.manual_seed(123)  # resume must not depend on the RNG state at restart
    learn2 = d2l.Learner(net2, train2, lr=0.05)
    learn2.resume(path)
    assert learn2.epoch == 2
    resumed = learn2.fit(2)
    assert resumed.epochs == 4
    assert resumed.history["loss"] == pytest.approx(full.history["loss"], rel=1e-5)


def test_checkpoint_save_best_only(tmp_path):
    path = tmp_path / "best.pt"
    cb = d2l.Checkpoint(path, monitor="val_accuracy", save_best_only=True)
    train, val = loaders()
    d2l.Learner(nn.Linear(2, 2), train, val, callbacks=[cb]).fit(3)
    ck = d2l.load_checkpoint(path)
    assert ck["history"]["val_accuracy"][-1] == max(ck["history"]["val_accuracy"])


def test_lr_scheduler_callback_per_epoch_and_per_batch():
    train, val = loaders()
    sched = d2l.LRScheduler(lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    h = d2l.Learner(nn.Linear(2, 2), train, lr=0.4, callbacks=[sched]).fit(3)
    assert h.history["lr"] == pytest.approx([0.4, 0.2, 0.1])
    steps = 2 * len(train)
    one = d2l.LRScheduler(lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, 1.0, total_steps=steps),
                          every="batch")
    learn = d2l.Learner(nn.Linear(2, 2), train, lr=0.1, callbacks=[one])
    learn.fit(2)
    assert one.scheduler.last_epoch == steps  # stepped once per batch
    assert learn.opt.param_groups[0]["lr"] < 0.05  # annealed towards the end of the cycle
    plateau = d2l.LRScheduler(lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0))
    d2l.Learner(nn.Linear(2, 2), train, val, callbacks=[plateau]).fit(2)
    with pytest.raises(ValueError):
        d2l.LRScheduler(lambda opt: None, every="week")


def test_predict_and_evaluate_keep_train_mode():
    X, y = blobs(20)
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    net.train()
    out, labels = d2l.predict(net, d2l.TensorLoader(X, y, 8))
    assert out.shape == (20, 2) and torch.equal(labels, y) and net.training
    res = d2l.evaluate(net, d2l.TensorLoader(X, y, 8))
    assert set(res) == {"loss", "accuracy"} and net.training


def test_progress_bar_runs():
    train, _ = loaders()
    d2l.Learner(nn.Linear(2, 2), train, callbacks=[d2l.ProgressBar()]).fit(1)


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

import warnings

import pytest
import torch
from torch import nn

import d2lmini as d2l
from d2lmini import callbacks as C
from tests.test_train import blobs, loaders

BATCH = ["before_batch", "after_loss", "before_step", "after_batch"]


class Recorder(d2l.Callback):
    """Records every event with learn.epoch and learn.step at that moment."""

    def __init__(self, order=0):
        self.order, self.events = order, []

    def __getattribute__(self, name):
        if name in C.EVENTS:
            events = object.__getattribute__(self, "events")
            return lambda learn: events.append((name, learn.epoch, learn.step))
        return object.__getattribute__(self, name)


def names(rec):
    return [e for e, _, _ in rec.events]


def test_callback_events_in_order():
    X, y = blobs(8)
    rec = Recorder()
    d2l.Learner(nn.Linear(2, 2), d2l.TensorLoader(X, y, 4), callbacks=[rec]).fit(1)
    assert names(rec) == ["before_fit", "before_epoch", *BATCH, *BATCH, "after_epoch", "after_fit"]


def test_validation_fires_its_own_events_with_the_results():
    seen = {}

    class Val(d2l.Callback):
        def before_validate(self, learn):
            seen["before"] = (learn.model.training, learn.history.epochs)

        def after_validate(self, learn):
            seen["after"] = dict(learn.val_results)

    X, y = blobs(8)
    rec = Recorder()
    loader = d2l.TensorLoader(X, y, 4)
    d2l.Learner(nn.Linear(2, 2), loader, loader, callbacks=[rec, Val()]).fit(1)
    assert names(rec) == ["before_fit", "before_epoch", *BATCH, *BATCH, "before_validate",
                          "after_validate", "after_epoch", "after_fit"]
    assert seen["before"] == (True, 0)  # the epoch is not logged yet
    assert set(seen["after"]) == {"loss", "accuracy"}


def test_epoch_and_step_convention():
    """learn.epoch: the epoch running, from 1, from before_epoch to after_epoch; epochs completed in
    before_fit/after_fit.  learn.step: batches trained, from 1, over all fits."""
    X, y = blobs(8)
    rec = Recorder()
    learn = d2l.Learner(nn.Linear(2, 2), d2l.TensorLoader(X, y, 4), callbacks=[rec])
    learn.fit(2)
    ev = rec.events
    assert ev[0] == ("before_fit", 0, 0) and ev[-1] == ("after_fit", 2, 4)
    assert [e[1] for e in ev if e[0] == "before_epoch"] == [1, 2]
    assert [e[1] for e in ev if e[0] == "after_epoch"] == [1, 2]
    assert [e[2] for e in ev if e[0] == "after_batch"] == [1, 2, 3, 4]
    assert [e[2] for e in ev if e[0] == "before_batch"] == [0, 1, 2, 3]
    rec.events.clear()
    learn.fit(1)  # a second fit continues the counts
    assert rec.events[0] == ("before_fit", 2, 4) and ("before_epoch", 3, 4) in rec.events
    assert rec.events[-1] == ("after_fit", 3, 6)


def test_an_interrupted_epoch_is_not_counted():
    class StopMidEpoch(d2l.Callback):
        def after_batch(self, learn):
            if learn.epoch == 2:
                raise d2l.callbacks.CancelFit("enough")

    rec = Recorder()
    learn = d2l.Learner(nn.Linear(2, 2), d2l.TensorLoader(*blobs(8), 4), callbacks=[rec, StopMidEpoch()])
    h = learn.fit(3)
    assert h.epochs == 1 and learn.epoch == 1 and h.stop_reason == "enough"
    assert rec.events[-1] == ("after_fit", 1, 3)


# ----------------------------------------------------------------------------------- control flow
@pytest.mark.parametrize("event", BATCH)
def test_cancel_step_from_any_batch_event_skips_the_rest_of_that_batch(event):
    def skip(learn):
        raise d2l.callbacks.CancelStep

    X, y = blobs(16)
    net = nn.Linear(2, 2)
    w = net.weight.detach().clone()
    cb = d2l.Callback()
    setattr(cb, event, skip)
    rec = Recorder(order=-1)
    h = d2l.Learner(net, d2l.TensorLoader(X, y, 4), callbacks=[cb, rec]).fit(2)
    assert h.epochs == 2  # training went on
    assert torch.equal(net.weight, w) == (event != "after_batch")  # in after_batch the step is done
    assert all(p.grad is None or torch.all(p.grad == 0) for p in net.parameters())
    # the batch's loss is counted once it was computed (from after_loss on)
    assert len(h.step_loss) == (0 if event == "before_batch" else 8)
    assert names(rec).count("after_batch") == 8  # after_batch runs for every batch, skipped or not


def test_cancel_epoch_skips_the_rest_of_the_epoch_but_validates():
    class TwoBatches(d2l.Callback):
        def before_epoch(self, learn):
            self.start = learn.step

        def before_batch(self, learn):
            if learn.step - self.start == 2:  # keep the first two of the epoch's 4 batches
                raise d2l.callbacks.CancelEpoch

    X, y = blobs(16)
    loader = d2l.TensorLoader(X, y, 4)
    rec = Recorder(order=1)
    h = d2l.Learner(nn.Linear(2, 2), loader, loader, callbacks=[TwoBatches(), rec]).fit(3)
    assert h.epochs == 3 and len(h.step_loss) == 3 * 2 and len(h.history["val_loss"]) == 3
    assert names(rec).count("after_validate") == 3


def test_cancel_epoch_before_any_batch_logs_nan_and_goes_on():
    class Skip(d2l.Callback):
        def before_epoch(self, learn):
            if learn.epoch == 1:
                raise d2l.callbacks.CancelEpoch

    h = d2l.Learner(nn.Linear(2, 2), d2l.TensorLoader(*blobs(16), 4), callbacks=[Skip()]).fit(2)
    assert h.epochs == 2 and h.history["loss"][0] != h.history["loss"][0]  # NaN
    assert h.history["loss"][1] == pytest.approx(sum(h.step_loss) / 4)


def test_cancel_fit_in_after_epoch_lets_every_callback_see_the_epoch(tmp_path):
    class Stop(d2l.Callback):
        order = 1

        def after_epoch(self, learn):
            raise d2l.callbacks.CancelFit("stop now")

    rec = Recorder(order=50)
    path = tmp_path / "last.pt"
    learn = d2l.Learner(nn.Linear(2, 2), d2l.TensorLoader(*blobs(8), 4),
                        callbacks=[Stop(), d2l.Checkpoint(path, monitor="loss"), rec])
    h = learn.fit(3)
    assert h.stop_reason == "stop now" and h.epochs == 1
    assert "after_epoch" in names(rec) and d2l.load_checkpoint(path)["epoch"] == 1


def test_cancel_fit_without_message(capsys):
    class Stop(d2l.Callback):
        def before_epoch(self, learn):
            raise d2l.callbacks.CancelFit

    h = d2l.Learner(nn.Linear(2, 2), d2l.TensorLoader(*blobs(8), 4), callbacks=[Stop()]).fit(3)
    assert h.stop_reason == "Training stopped by a callback." and h.epochs == 0
    assert "Training stopped by a callback." in capsys.readouterr().out


def test_events_of_other_libraries_warn_once_naming_the_real_events():
    class KerasStyle(d2l.Callback):
        def on_epoch_end(self, epoch, logs=None): ...
        def after_pred(self, learn): ...
        def after_epoch(self, learn): ...
        def _helper(self): ...

    train = d2l.TensorLoader(*blobs(8), 4)
    with pytest.warns(UserWarning) as record:
        d2l.Learner(nn.Linear(2, 2), train, callbacks=[KerasStyle()])
    text = [str(w.message) for w in record]
    assert len(text) == 2
    assert any("KerasStyle.on_epoch_end looks like a training event" in t
               and "Did you mean after_epoch?" in t for t in text)
    assert any("after_pred" in t and "after_loss" in t for t in text)
    assert all("before_fit, before_epoch" in t and "the Learner" in t for t in text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d2l.Learner(nn.Linear(2, 2), train, callbacks=[KerasStyle()])  # once only
    assert C.unknown_events(d2l.EarlyStopping()) == []


# -------------------------------------------------------------------------------- monitoring
@pytest.mark.parametrize("name, mode", [("val_loss", "min"), ("loss", "min"), ("val_accuracy", "max"),
                                        ("val_acc", "max"), ("val_iou", "max"), ("mean_IoU", "max"),
                                        ("val_dice", "max"), ("f1_score", "max"), ("val_mse", "min")])
def test_default_mode_rule(name, mode):
    assert C.default_mode(name) == mode
    assert d2l.EarlyStopping(name).mode == mode and d2l.Checkpoint("x.pt", name).mode == mode


def test_early_stopping_and_checkpoint_share_one_rule():
    es, ck = d2l.EarlyStopping("val_iou", min_delta=0.1), d2l.Checkpoint("x.pt", "val_iou", min_delta=0.1)
    assert type(es.tracker) is type(ck.tracker) is C.Best
    for cb in (es, ck):
        b = cb.tracker
        updates = [b.update(v) for v in (0.5, 0.55, 0.61, 0.6, float("nan"))]
        assert updates == [True, False, True, False, False]
        assert b.best == 0.61
    low = C.Best("error", mode="min")
    assert [low.update(v) for v in (float("nan"), 3, 2, 2, 1)] == [False, True, True, False, True]


@pytest.mark.parametrize("kwargs, match", [({"mode": "up"}, "mode must be 'min' or 'max'"),
                                           ({"min_delta": -1}, "min_delta must be a number >= 0"),
                                           ({"monitor": ""}, "monitor must name a logged value")])
def test_bad_monitor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        d2l.EarlyStopping(**kwargs)
    with pytest.raises(ValueError, match=match):
        d2l.Checkpoint("x.pt", **kwargs)


def test_bad_patience():
    with pytest.raises(ValueError, match="patience must be a whole number of epochs >= 0, got 1.5"):
        d2l.EarlyStopping(patience=1.5)


def test_monitoring_a_value_that_is_not_logged_says_what_is():
    train, _ = loaders()
    with pytest.raises(ValueError, match="'val_loss' is not logged; the history holds loss, accuracy, lr"):
        d2l.Learner(nn.Linear(2, 2), train, callbacks=[d2l.EarlyStopping()]).fit(1)


class FakeVal(d2l.Callback):
    """Overwrite the epoch's val_loss with a given sequence (so 'getting worse' is certain)."""

    order = -5

    def __init__(self, values, key="val_loss"):
        self.values, self.key = values, key

    def after_epoch(self, learn):
        learn.history.history[self.key][-1] = self.values[learn.epoch - 1]


class Snap(d2l.Callback):
    order = 6

    def __init__(self, net):
        self.net, self.weights = net, {}

    def after_epoch(self, learn):
        self.weights[learn.epoch] = self.net.weight.detach().clone()


def test_early_stopping_stops_and_restores_best(capsys):
    train, val = loaders()
    net = nn.Linear(2, 2)
    snap = Snap(net)
    h = d2l.Learner(net, train, val, callbacks=[FakeVal([0.5, 0.4, 0.6, 0.7, 0.8, 0.9]), snap,
                                                 d2l.EarlyStopping(patience=2)]).fit(6)
    assert h.epochs == 4 and h.stop_reason == ("Early stopping after epoch 4: val_loss has not improved for "
                                               "2 epochs (best 0.4000 at epoch 2).")
    assert torch.equal(net.weight, snap.weights[2])
    assert "Restored the weights of epoch 2." in capsys.readouterr().out


def test_early_stopping_mode_max_and_min_delta():
    train, val = loaders()
    net = nn.Linear(2, 2)
    snap = Snap(net)
    es = d2l.EarlyStopping("val_iou", patience=1, min_delta=0.05)  # iou: larger is better
    fake = FakeVal([0.5, 0.7, 0.72, 0.6, 0.9], key="val_iou")

    def iou(p, y):
        return d2l.train.accuracy(p, y)

    h = d2l.Learner(net, train, val, metrics=[iou], callbacks=[fake, snap, es]).fit(5)
    assert h.epochs == 3 and es.best_epoch == 2 and es.best == 0.7  # 0.72 is not 0.05 better
    assert torch.equal(net.weight, snap.weights[2])


def test_early_stopping_does_not_restore_when_the_last_epoch_is_best(capsys):
    train, val = loaders()
    d2l.Learner(nn.Linear(2, 2), train, val, callbacks=[FakeVal([0.5, 0.4]), d2l.EarlyStopping()]).fit(2)
    assert "Restored" not in capsys.readouterr().out


def test_early_stopping_restores_after_ctrl_c_mid_epoch(capsys):
    class CtrlC(d2l.Callback):
        def before_batch(self, learn):
            if learn.epoch == 3 and learn.step % 8 == 3:
                raise KeyboardInterrupt

    train, val = loaders()
    net = nn.Linear(2, 2)
    snap = Snap(net)
    learn = d2l.Learner(net, train, val, callbacks=[FakeVal([0.5, 0.4, 0.6]), snap, CtrlC(),
                                                     d2l.EarlyStopping(patience=5)])
    with pytest.raises(KeyboardInterrupt):
        learn.fit(5)
    assert torch.equal(net.weight, snap.weights[2]) and learn.epoch == 2
    assert "Restored the weights of epoch 2." in capsys.readouterr().out


def test_checkpoint_save_best_only_when_validation_gets_worse(tmp_path):
    path = tmp_path / "best.pt"
    train, val = loaders()
    net = nn.Linear(2, 2)
    snap = Snap(net)
    cb = d2l.Checkpoint(path, monitor="val_loss", save_best_only=True)
    d2l.Learner(net, train, val, callbacks=[FakeVal([0.5, 0.4, 0.6, 0.45]), snap, cb]).fit(4)
    ck = d2l.load_checkpoint(path)
    assert ck["epoch"] == 2 and ck["history"]["val_loss"] == [0.5, 0.4]
    assert torch.equal(ck["model"]["weight"], snap.weights[2])
    assert not torch.equal(snap.weights[2], snap.weights[4])


def test_checkpoint_save_best_only_mode_max(tmp_path):
    path = tmp_path / "best.pt"
    train, val = loaders()
    cb = d2l.Checkpoint(path, monitor="val_accuracy", save_best_only=True)
    fake = FakeVal([0.7, 0.9, 0.8], key="val_accuracy")
    d2l.Learner(nn.Linear(2, 2), train, val, callbacks=[fake, cb]).fit(3)
    assert d2l.load_checkpoint(path)["epoch"] == 2 and cb.best == 0.9


# ------------------------------------------------------------------------------------- schedules
def test_lr_scheduler_per_epoch():
    train, _ = loaders()
    sched = d2l.LRScheduler(lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    learn = d2l.Learner(nn.Linear(2, 2), train, lr=0.4, callbacks=[sched])
    h = learn.fit(3)
    assert h.history["lr"] == pytest.approx([0.4, 0.2, 0.1]) and learn.scheduler is sched.scheduler
    learn.fit(1)  # a second fit continues the schedule
    assert h.history["lr"] == pytest.approx([0.4, 0.2, 0.1, 0.05])


def test_lr_scheduler_per_batch():
    train, _ = loaders()
    steps = 2 * len(train)
    one = d2l.LRScheduler(lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, 1.0, total_steps=steps),
                          every="batch")
    learn = d2l.Learner(nn.Linear(2, 2), train, lr=0.1, callbacks=[one])
    learn.fit(2)
    assert one.scheduler.last_epoch == steps  # stepped once per batch
    assert learn.opt.param_groups[0]["lr"] < 0.05  # annealed towards the end of the cycle


def test_reduce_lr_on_plateau_lowers_the_lr_when_the_monitor_stalls():
    train, val = loaders()
    plateau = d2l.LRScheduler(lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0,
                                                                                       factor=0.5))
    fake = FakeVal([0.5, 0.5, 0.4, 0.4])
    h = d2l.Learner(nn.Linear(2, 2), train, val, lr=0.4, callbacks=[fake, plateau]).fit(4)
    assert h.history["lr"] == pytest.approx([0.4, 0.4, 0.2, 0.2])


def test_lr_scheduler_accepts_a_ready_scheduler():
    train, _ = loaders()
    net = nn.Linear(2, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.4)
    step = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = d2l.Learner(net, train, opt=opt, callbacks=[d2l.LRScheduler(step)]).fit(2)
    assert h.history["lr"] == pytest.approx([0.4, 0.2])
    other = torch.optim.lr_scheduler.StepLR(torch.optim.SGD(net.parameters(), lr=1.0), step_size=1)
    with pytest.raises(ValueError, match="steps another optimizer than the Learner's"):
        d2l.Learner(net, train, opt=opt, callbacks=[d2l.LRScheduler(other)]).fit(1)


def test_lr_scheduler_factory_is_rebuilt_for_a_new_learner():
    train, _ = loaders()
    sched = d2l.LRScheduler(lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    first = d2l.Learner(nn.Linear(2, 2), train, lr=0.4, callbacks=[sched])
    first.fit(2)
    second = d2l.Learner(nn.Linear(2, 2), train, lr=0.4, callbacks=[sched])
    assert second.fit(2).history["lr"] == pytest.approx([0.4, 0.2])
    assert sched.scheduler.optimizer is second.opt


def test_lr_scheduler_bad_arguments():
    with pytest.raises(ValueError, match="every must be 'batch' or 'epoch', got 'week'"):
        d2l.LRScheduler(lambda opt: None, every="week")
    with pytest.raises(ValueError, match="LRScheduler needs a scheduler"):
        d2l.LRScheduler(0.1)


# ----------------------------------------------------------------------------- printing, progress
def test_print_metrics_line(capsys):
    train, val = loaders()
    d2l.Learner(nn.Linear(2, 2), train, val, callbacks=[d2l.PrintMetrics()]).fit(2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].split() == ["epoch", "loss", "accuracy", "val_loss",
                                                   "val_accuracy", "time"]
    assert lines[1].split()[0] == "1/2" and lines[2].split()[0] == "2/2" and lines[2].endswith(" s")
    assert all(len(ln) == len(lines[0]) for ln in lines)  # the columns line up under the header
    assert all(len(ln) <= 79 for ln in lines)


def test_print_metrics_prints_the_header_again_in_a_new_fit(capsys):
    train, val = loaders()
    learn = d2l.Learner(nn.Linear(2, 2), train, callbacks=[d2l.PrintMetrics()])
    learn.fit(1)
    learn.fit(1)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["epoch", "1/1", "epoch", "2/2"]


def test_progress_bar_counts_every_batch_and_shows_the_loss(capsys):
    train, _ = loaders()
    bar = d2l.callbacks.ProgressBar(every=2)
    learn = d2l.Learner(nn.Linear(2, 2), train, callbacks=[bar])
    learn.fit(2)
    assert bar.bar.n == bar.bar.total == len(train) and bar.bar.desc == "epoch 2/2"
    assert bar.bar.postfix == f"loss={learn.history.step_loss[-1]:.3f}"
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and f"/{len(train)}" in err


def test_checkpoint_best_only_survives_a_resume(tmp_path):
    """After a resume, a worse epoch must not overwrite the best checkpoint of the first run."""
    path, train, val = tmp_path / "best.pt", *loaders()
    first = d2l.Learner(nn.Linear(2, 2), train, val, callbacks=[FakeVal([0.5, 0.3]), d2l.Checkpoint(
        path, save_best_only=True)])
    first.fit(2)
    learn = d2l.Learner(nn.Linear(2, 2), train, val, callbacks=[FakeVal([0.5, 0.3, 0.4, 0.2]),
                                                                 d2l.Checkpoint(path, save_best_only=True)])
    learn.resume(path)
    learn.fit(1)  # epoch 3: 0.4 is worse than 0.3
    assert d2l.load_checkpoint(path)["epoch"] == 2
    learn.fit(1)  # epoch 4: 0.2 is better
    assert d2l.load_checkpoint(path)["epoch"] == 4

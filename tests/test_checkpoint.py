import pickle
import random

import pytest
import torch
from torch import nn

import d2lmini as d2l
from d2lmini import checkpoint as CK


class Boom:
    def __reduce__(self):
        return (print, ("this would run when unpickled",))


def test_roundtrip_model_optimizer_extras(tmp_path):
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = d2l.save_checkpoint(tmp_path / "a" / "ck.pt", net, opt, epoch=3, history={"loss": [1.0, 0.5]})
    assert not (tmp_path / "a" / "ck.pt.partial").exists()
    net2 = nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.01)
    ck = d2l.load_checkpoint(path, net2, opt2)
    assert ck["epoch"] == 3 and ck["history"] == {"loss": [1.0, 0.5]}
    assert torch.equal(net.weight, net2.weight)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_restores_rng_state_only_when_asked(tmp_path):
    torch.manual_seed(5)
    random.seed(5)
    path = d2l.save_checkpoint(tmp_path / "ck.pt", nn.Linear(1, 1))
    expected, expected_py = torch.rand(3), random.random()
    torch.manual_seed(99)
    d2l.load_checkpoint(path, nn.Linear(1, 1))  # loading weights must not reseed the notebook
    torch.manual_seed(99)
    after_plain_load = torch.rand(3)
    torch.manual_seed(99)
    assert torch.equal(torch.rand(3), after_plain_load) and not torch.equal(after_plain_load, expected)
    d2l.load_checkpoint(path, restore_rng=True)
    assert torch.equal(torch.rand(3), expected) and random.random() == expected_py


def test_default_load_leaves_the_generators_alone(tmp_path):
    path = d2l.save_checkpoint(tmp_path / "ck.pt", nn.Linear(1, 1))
    net = nn.Linear(1, 1)
    torch.manual_seed(7)
    state = torch.get_rng_state()
    py_state = random.getstate()
    d2l.load_checkpoint(path, net)
    assert torch.equal(torch.get_rng_state(), state) and random.getstate() == py_state


def test_cuda_and_mps_rng_states_are_saved_and_restored(tmp_path, monkeypatch):
    """No GPU here: fake CUDA and MPS and check what is saved and put back."""
    set_cuda, set_mps = [], []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [torch.tensor([1], dtype=torch.uint8),
                                                                  torch.tensor([2], dtype=torch.uint8)])
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: set_cuda.append((s.tolist(), i)))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: torch.tensor([9], dtype=torch.uint8))
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda s: set_mps.append(s.tolist()))
    path = d2l.save_checkpoint(tmp_path / "ck.pt", nn.Linear(1, 1))
    ck = d2l.load_checkpoint(path)
    assert [t.tolist() for t in ck["cuda_rng_state"]] == [[1], [2]] and ck["mps_rng_state"].tolist() == [9]
    assert set_cuda == [] and set_mps == []  # not restored by a plain load
    d2l.load_checkpoint(path, restore_rng=True)
    assert set_cuda == [([1], 0), ([2], 1)] and set_mps == [[9]]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # fewer GPUs now: restore those there are
    set_cuda.clear()
    CK.restore_rng_state(ck)
    assert set_cuda == [([1], 0)]


def test_scheduler_and_grad_scaler_states_roundtrip(tmp_path):
    net = nn.Linear(2, 2)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    for _ in range(3):
        opt.step()
        sched.step()
    path = d2l.save_checkpoint(tmp_path / "ck.pt", net, opt, scheduler=sched, scaler=scaler, epoch=3)
    net2 = nn.Linear(2, 2)
    opt2 = torch.optim.SGD(net2.parameters(), lr=1.0)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.5)
    scaler2 = torch.amp.GradScaler("cpu")
    d2l.load_checkpoint(path, net2, opt2, scheduler=sched2, scaler=scaler2)
    assert sched2.last_epoch == 3 and sched2.get_last_lr() == pytest.approx([0.125])
    assert scaler2.get_scale() == 1024.0


def test_reserved_keys_cannot_be_overwritten(tmp_path):
    with pytest.raises(ValueError, match="rng_state: reserved checkpoint key"):
        d2l.save_checkpoint(tmp_path / "ck.pt", nn.Linear(1, 1), rng_state=1)


def test_an_interrupted_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    old = nn.Linear(3, 3)
    path = d2l.save_checkpoint(tmp_path / "ck.pt", old, epoch=1)

    def dies_halfway(obj, f):
        f.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(CK.torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        d2l.save_checkpoint(path, nn.Linear(3, 3), epoch=2)
    monkeypatch.undo()
    net = nn.Linear(3, 3)
    assert d2l.load_checkpoint(path, net)["epoch"] == 1 and torch.equal(net.weight, old.weight)
    assert list(tmp_path.iterdir()) == [path]  # no half-written .partial left behind


def test_crafted_pickle_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": Boom()}, path)
    with pytest.raises(d2l.CheckpointError, match="not a weights-only checkpoint"):
        d2l.load_checkpoint(path, nn.Linear(1, 1))
    assert "would run" not in capsys.readouterr().out
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(d2l.CheckpointError):
        d2l.load_checkpoint(raw)


def test_different_architecture_names_the_layers(tmp_path):
    path = d2l.save_checkpoint(tmp_path / "ck.pt", nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))
    with pytest.raises(d2l.CheckpointError) as err:
        d2l.load_checkpoint(path, nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 2)))
    msg = str(err.value)
    assert "different architecture" in msg and "0.weight: checkpoint (8, 4) vs model (16, 4)" in msg
    with pytest.raises(d2l.CheckpointError, match="missing in the checkpoint: 2.weight"):
        d2l.load_checkpoint(path, nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(2, 2)))


def test_truncated_and_missing_files(tmp_path):
    path = d2l.save_checkpoint(tmp_path / "ck.pt", nn.Linear(50, 50))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(d2l.CheckpointError, match="truncated or corrupt"):
        d2l.load_checkpoint(path, nn.Linear(50, 50))
    with pytest.raises(d2l.CheckpointError, match="No checkpoint at"):
        d2l.load_checkpoint(tmp_path / "nope.pt")


def test_not_a_checkpoint_dict(tmp_path):
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(d2l.CheckpointError, match="no 'model' state_dict"):
        d2l.load_checkpoint(path)


# ------------------------------------------------------------------------------------------ resume
def _images(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 256, (n, 8, 8), dtype=torch.uint8, generator=g)
    return X, (X.float().mean(dim=(1, 2)) > 127.5).long()


def _learner(callbacks, every):
    """Dropout (global RNG), shuffling (seed, epoch), augmentation (its own generator) and a schedule."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 2))
    train = d2l.TensorLoader(*_images(), batch_size=16, shuffle=True, seed=3,
                             transform=d2l.RandomFlipShift(max_shift=1, seed=1))
    if every == "batch":
        sched = d2l.LRScheduler(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.5, total_steps=4 * 6),
                                every="batch")
    else:
        sched = d2l.LRScheduler(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.7))
    opt = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.9)
    return d2l.Learner(net, train, d2l.TensorLoader(*_images(32, 1), 16), opt=opt,
                       callbacks=[sched, *callbacks], device="cpu")


@pytest.mark.parametrize("every", ["epoch", "batch"])
def test_a_resumed_run_takes_exactly_the_steps_of_the_uninterrupted_one(tmp_path, every):
    straight = _learner([], every)
    full = straight.fit(4)

    path = tmp_path / "ck.pt"
    _learner([d2l.Checkpoint(path, monitor="loss")], every).fit(2)
    torch.manual_seed(123)  # resume must not depend on the RNG state at restart
    learn = _learner([], every)
    ck = learn.resume(path)
    assert ck["step"] == 12 and "scheduler" in ck and learn.epoch == 2 and learn.step == 12
    torch.rand(5)  # drawing random numbers between resume and fit changes nothing either
    resumed = learn.fit(2)
    assert learn.step == straight.step == 24
    assert resumed.step_loss == full.step_loss  # every step, bit for bit
    for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert resumed.history[k] == full.history[k]
    assert learn.scheduler.state_dict() == straight.scheduler.state_dict()
    for a, b in zip(learn.model.state_dict().values(), straight.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_resume_needs_the_same_scheduler(tmp_path):
    path = tmp_path / "ck.pt"
    _learner([d2l.Checkpoint(path, monitor="loss")], "epoch").fit(1)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 2))
    learn = d2l.Learner(net, d2l.TensorLoader(*_images(), 16), opt=torch.optim.SGD, lr=0.2)
    learn.resume(path)
    with pytest.raises(ValueError, match="holds a scheduler's state but this Learner has no scheduler"):
        learn.fit(1)


def test_learner_save_includes_a_callbacks_grad_scaler(tmp_path):
    class WithScaler(d2l.Callback):
        def __init__(self):
            self.scaler = torch.amp.GradScaler("cpu", init_scale=256.0)

    data = d2l.TensorLoader(torch.randn(8, 2), torch.zeros(8, dtype=torch.int64), 4)
    learn = d2l.Learner(nn.Linear(2, 2), data, callbacks=[WithScaler()])
    learn.fit(1)
    ck = d2l.load_checkpoint(learn.save(tmp_path / "ck.pt"))
    assert ck["scaler"]["scale"] == 256.0 and ck["epoch"] == 1 and ck["step"] == 2
    other = WithScaler()
    other.scaler = torch.amp.GradScaler("cpu", init_scale=2.0)
    learn2 = d2l.Learner(nn.Linear(2, 2), learn.train_data, callbacks=[other])
    learn2.resume(tmp_path / "ck.pt")
    learn2.fit(1)
    assert other.scaler.get_scale() == 256.0

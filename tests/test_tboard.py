import pytest
import torch
from torch import nn

import d2lmini as d2l


def _tiny_run(log_dir, epochs=2, **kw):
    torch.manual_seed(0)
    X, y = torch.randn(64, 1, 8, 8), torch.randint(0, 3, (64,))
    train = d2l.TensorLoader(X, y, batch_size=16, shuffle=True)
    val = d2l.TensorLoader(X[:32], y[:32], batch_size=16)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    learn = d2l.Learner(net, train, val, lr=0.05, callbacks=[d2l.TensorBoard(log_dir, **kw)],
                        device=torch.device("cpu"))
    return learn.fit(epochs)


def test_callback_writes_expected_tags(tmp_path):
    _tiny_run(tmp_path)
    tags = d2l.read_tags(tmp_path)
    assert tags["scalars"] == ["accuracy/train", "accuracy/val", "loss/train", "loss/val", "lr"]
    assert tags["histograms"] == ["weights/0.bias", "weights/0.weight", "weights/3.bias", "weights/3.weight"]
    assert tags["images"] == ["batch"]
    assert tags["graph"] is True


def test_read_scalars_gives_history_values_per_epoch(tmp_path):
    history = _tiny_run(tmp_path, epochs=3)
    scalars = d2l.read_scalars(tmp_path)
    assert [s for s, _ in scalars["loss/train"]] == [1, 2, 3]
    for tag, key in [("loss/train", "loss"), ("accuracy/val", "val_accuracy"), ("lr", "lr")]:
        got = [v for _, v in scalars[tag]]
        assert got == pytest.approx(history.history[key], rel=1e-6)


def test_switches_and_overwrite(tmp_path):
    _tiny_run(tmp_path, histograms=False, images=False, graph=False)
    _tiny_run(tmp_path, epochs=1, histograms=False, images=False, graph=False, overwrite=True)
    tags = d2l.read_tags(tmp_path)
    assert tags["histograms"] == [] and tags["images"] == [] and tags["graph"] is False
    assert len(d2l.read_scalars(tmp_path)["loss/train"]) == 1  # the first run's event file was removed


def test_graph_tracing_leaves_batchnorm_statistics_alone(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3))
    cb = d2l.TensorBoard(tmp_path, histograms=False, images=False)

    class Fake:  # the two attributes the callback reads before the first batch
        model, epoch, xb = net.train(), 0, torch.randn(8, 1, 2, 2)

    cb.before_fit(Fake)
    cb.before_batch(Fake)
    cb.after_fit(Fake)
    assert torch.equal(net[2].running_mean, torch.zeros(3))
    assert net.training
    assert d2l.read_tags(tmp_path)["graph"] is True


def test_reading_an_empty_folder_says_what_to_do(tmp_path):
    with pytest.raises(d2l.NoEventFilesError, match="TensorBoard"):
        d2l.read_scalars(tmp_path)
    with pytest.raises(d2l.NoEventFilesError):
        d2l.read_tags(tmp_path / "missing")

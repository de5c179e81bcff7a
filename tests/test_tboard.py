import io

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
    with pytest.raises(d2l.tboard.NoEventFilesError, match="TensorBoard"):
        d2l.read_scalars(tmp_path)
    with pytest.raises(d2l.tboard.NoEventFilesError):
        d2l.read_tags(tmp_path / "missing")


def _scalars_only(log_dir, runs=("a", "b")):
    from torch.utils.tensorboard import SummaryWriter

    for i, run in enumerate(runs):
        with SummaryWriter(log_dir / run) as w:
            for step in range(1, 4):
                w.add_scalar("loss/train", 1 / step + i, step)


def test_server_serves_the_runs_names_no_machine_path_and_stops(tmp_path):
    import json
    import urllib.request

    from d2lmini.tboard import tensorboard_server

    _scalars_only(tmp_path / "runs")
    with tensorboard_server(tmp_path / "runs") as url:
        with urllib.request.urlopen(f"{url}/data/runs", timeout=5) as r:
            assert sorted(json.loads(r.read())) == ["a", "b"]
        with urllib.request.urlopen(f"{url}/data/environment", timeout=5) as r:
            assert json.loads(r.read())["data_location"] == "runs"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/data/runs", timeout=2)


def test_server_needs_event_files(tmp_path):
    from d2lmini.tboard import tensorboard_server

    with pytest.raises(d2l.tboard.NoEventFilesError, match="No TensorBoard event files under"):
        with tensorboard_server(tmp_path):
            pass


def test_screenshot_without_a_browser_is_one_clear_line(monkeypatch, capsys):
    from d2lmini import tboard

    monkeypatch.setattr(tboard, "_browser", lambda: "no Chromium and chromedriver here")
    assert tboard.screenshot("http://127.0.0.1:1") is None
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "No screenshot: no Chromium" in out and "tensorboard --logdir" in out


def test_screenshot_of_the_scalars_page(tmp_path):
    from d2lmini import tboard

    found = tboard._browser()
    if isinstance(found, str):
        pytest.skip(found)
    _scalars_only(tmp_path / "runs")
    with tboard.tensorboard_server(tmp_path / "runs") as url:
        png = tboard.screenshot(url, size=(900, 700))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    img = Image.open(io.BytesIO(png))
    assert img.width == 900 and img.height > 400
    assert len(img.getcolors(256) or []) > 8  # a drawn page, not a blank one


# ------------------------------------------------------------------ the checks of chapter 13's exercises

def test_exercise_13_1_compares_the_logged_norm_with_its_own():
    from torch.utils.tensorboard import SummaryWriter

    from d2lmini.exercises import check

    class GradNorm(d2l.Callback):
        def __init__(self, log_dir, scale=1.0):
            self.log_dir, self.scale = log_dir, scale

        def before_fit(self, learn):
            self.writer = SummaryWriter(self.log_dir)

        def before_step(self, learn):
            self.norm = torch.sqrt(sum((p.grad**2).sum() for p in learn.model.parameters())).item()

        def after_epoch(self, learn):
            self.writer.add_scalar("grad_norm", self.scale * self.norm, learn.epoch)

        def after_fit(self, learn):
            self.writer.close()

    assert check("13.1", GradNorm, device="cpu")
    v = check("13.1", lambda log_dir: GradNorm(log_dir, scale=2.0), device="cpu")
    assert not v and "the last step's total gradient norm" in v.message

    class Silent(d2l.Callback):
        def __init__(self, log_dir):
            pass

    v = check("13.1", Silent, device="cpu")
    assert not v and "no event files" in v.message


def test_exercise_13_5_reads_the_embedding_back(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from d2lmini.exercises import check

    torch.manual_seed(0)
    net = d2l.models.ModernLeNet().eval()
    images, labels = torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,))
    with torch.no_grad():
        feats = net.classifier[:-1](net.features(images))
    names = [d2l.FASHION_MNIST_CLASSES[c] for c in labels]
    with SummaryWriter(tmp_path / "good") as w:
        w.add_embedding(feats, metadata=names, label_img=images)
    assert check("13.5", tmp_path / "good", model=net, images=images, labels=labels)
    with SummaryWriter(tmp_path / "logits") as w:
        w.add_embedding(net(images).detach(), metadata=names, label_img=images)
    v = check("13.5", tmp_path / "logits", model=net, images=images, labels=labels)
    assert not v and "84 features" in v.message
    v = check("13.5", tmp_path / "nothing", model=net, images=images, labels=labels)
    assert not v and "projector_config.pbtxt" in v.message

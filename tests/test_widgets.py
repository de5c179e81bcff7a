"""The live explorer and the one way to draw training runs, tested without a browser: the slider callback
is a plain method, and the replay is plain HTML (tests/site drive both in a real browser)."""

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import ipywidgets as W  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import d2lmini as d2l  # noqa: E402
from d2lmini.plot import FitResult, plot_history  # noqa: E402
from d2lmini.replay import Replay  # noqa: E402
from d2lmini.widgets import (  # noqa: E402
    Explorer,
    dropdown,
    float_slider,
    int_slider,
    lr_slider,
)

render = plot_history

X = torch.linspace(-2, 2, 64).unsqueeze(1)
Y = X**2 - 1


def train_square(lr: float = 0.05, epochs: int = 20, hidden: int = 8) -> FitResult:
    """A tiny full-batch regression, the shape of chapter 03's train_fn."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    loader = d2l.TensorLoader(X, Y, batch_size=len(X))
    h = d2l.fit(net, loader, epochs=epochs, lr=lr, loss_fn=nn.MSELoss(), metrics=(), verbose=False,
                device=torch.device("cpu"))
    with torch.no_grad():
        pred = net(X)
    return FitResult(h, X, Y, pred, label=f"lr={lr:g}")


def texts(fig: plt.Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def png_outputs(explorer: Explorer) -> list[dict]:
    return [o for o in explorer.out.outputs if "image/png" in o.get("data", {})]


def test_render_regression_draws_fit_and_loss():
    r = train_square(epochs=30)
    fig = render(r)
    assert [ax.get_title() for ax in fig.axes] == ["fitted function", "loss"]
    fit_ax, loss_ax = fig.axes
    assert [line.get_label() for line in fit_ax.lines] == ["data", "model"]
    assert list(loss_ax.lines[0].get_ydata()) == r.history.history["loss"]
    assert "diverged" not in texts(fig)
    plt.close(fig)


def test_render_shows_divergence_on_the_plot(capsys):
    r = train_square(lr=50.0, epochs=50)
    assert r.history.diverged_at is not None
    fig = render(r)
    assert f"diverged at step {r.history.diverged_at}" in texts(fig)
    assert "Training stopped" in capsys.readouterr().out  # d2l.fit's own message
    plt.close(fig)


def test_render_classification_history_and_overlay():
    h1 = d2l.History({"loss": [1.0, 0.6], "val_loss": [1.1, 0.8], "accuracy": [0.5, 0.7],
                      "val_accuracy": [0.4, 0.6]}, step_loss=[1.2, 1.0, 0.8, 0.6])
    fig = render(h1, x_axis="epoch")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    plt.close(fig)
    fig = render(h1)  # auto: few epochs -> the loss is drawn per step, validation at epoch ends
    assert fig.axes[0].get_xlabel() == "step"
    assert list(fig.axes[0].lines[0].get_ydata()) == [1.2, 1.0, 0.8, 0.6]
    assert list(fig.axes[0].lines[1].get_xdata()) == [2.0, 4.0]
    plt.close(fig)
    fig = render(h1, x_axis="step")  # per-step loss in the loss panel only, never in the accuracy panel
    assert fig.axes[0].get_xlabel() == "step" and fig.axes[1].get_xlabel() == "epoch"
    assert list(fig.axes[1].lines[0].get_ydata()) == [0.5, 0.7]
    plt.close(fig)
    h2 = d2l.History({"loss": [1.0], "accuracy": [0.5]}, diverged_at=7)
    fig = render({"SGD": h1, "Adam": h2}, x_axis="epoch")
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["SGD train", "SGD validation", "Adam train"]
    assert "Adam: diverged at step 7" in texts(fig)
    plt.close(fig)
    with pytest.raises(TypeError, match="History, a FitResult"):
        render([1, 2])
    fig = render(h1, panels=["accuracy"])  # one chosen panel, e.g. into an existing axis
    assert [ax.get_title() for ax in fig.axes] == ["accuracy"]
    plt.close(fig)
    with pytest.raises(ValueError, match="x_axis"):
        render(h1, x_axis="time")


def test_epoch_axes_get_integer_ticks():
    fig = render(d2l.History({"loss": [1.0, 0.8, 0.7, 0.6, 0.5, 0.45]}))
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 6]
    assert ticks and all(float(t).is_integer() for t in ticks)
    plt.close(fig)


def test_sliders_report_on_release_only():
    s = lr_slider(0.1)
    assert isinstance(s, W.FloatLogSlider) and not s.continuous_update
    assert math.isclose(10**s.min, 1e-4) and math.isclose(10**s.max, 10.0)
    assert not int_slider(5, 1, 10).continuous_update
    assert not float_slider(0.9, 0.0, 0.99).continuous_update
    assert dropdown(["SGD", "Adam"]).value == "SGD"
    with pytest.raises(ValueError, match="outside"):
        lr_slider(100.0)


def test_explorer_builds_headless_and_button_retrains():
    calls = []

    def train(**kw):
        calls.append(kw)
        return train_square(**kw)

    sliders = {"lr": lr_slider(0.05), "epochs": int_slider(10, 5, 50),
               "hidden": W.IntSlider(8, min=2, max=16)}
    ex = Explorer(train, sliders)
    assert isinstance(ex.widget, W.VBox) and calls == []  # constructing trains nothing, waits for nothing
    assert sliders["hidden"].description == "hidden" and not sliders["hidden"].continuous_update
    sliders["epochs"].value = 15
    ex.button.click()  # exactly what a click in the browser calls
    assert calls == [{"lr": 0.05, "epochs": 15, "hidden": 8}]
    assert len(png_outputs(ex)) == 1
    assert ex.result.history.epochs == 15 and ex.runs == 1 and ex.last_seconds > 0
    assert not ex.button.disabled and ex.button.description == "Run"
    assert "done in" in ex.status.value
    ex.run(epochs=20)  # redraws in place: still one figure, no stacking, no open figures left
    assert len(png_outputs(ex)) == 1 and sliders["epochs"].value == 20
    assert plt.get_fignums() == []
    with pytest.raises(ValueError, match="no slider named"):
        ex.run(momentum=0.9)


def test_explorer_divergence_then_recovers():
    ex = Explorer(train_square, {"lr": lr_slider(0.05), "epochs": int_slider(40, 1, 100)})
    r = ex.run(lr=10.0)
    assert r.history.diverged_at is not None
    stdout = [o["text"] for o in ex.out.outputs if o["output_type"] == "stream"]
    assert stdout and "Training stopped" in stdout[0]  # fit's message is shown under the plot
    r = ex.run(lr=0.05)  # the next slider move works
    assert r.history.diverged_at is None and r.history.epochs == 40
    assert len(ex.out.outputs) == 1


def test_explorer_auto_mode_and_errors_shown_then_raised_under_pytest(monkeypatch):
    def train(lr: float, epochs: int) -> FitResult:
        if epochs > 30:
            raise RuntimeError("out of patience")
        return train_square(lr=lr, epochs=epochs)

    ex = Explorer(train, {"lr": lr_slider(0.05), "epochs": int_slider(5, 1, 50)}, auto=True)
    ex.run()
    assert ex.runs == 1
    ex.sliders["epochs"].value = 8  # releasing a slider retrains at once
    assert ex.runs == 2 and ex.result.history.epochs == 8
    # under pytest (and in smoke mode, i.e. CI) a broken callback fails loudly...
    with pytest.raises(RuntimeError, match="out of patience"):
        ex.run(epochs=40)
    # ...and the reader still sees the message in the widget
    assert ex.result is None and "out of patience" in ex.status.value
    assert "out of patience" in ex.out.outputs[0]["text"]
    assert not ex.button.disabled
    # in reader mode (no pytest, no smoke) the message is shown and the kernel keeps going
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    monkeypatch.delenv("D2LMINI_STRICT", raising=False)
    assert ex.run(epochs=45) is None and "out of patience" in ex.status.value
    monkeypatch.setenv("D2LMINI_SMOKE", "1")
    with pytest.raises(RuntimeError):
        ex.run(epochs=45)
    with pytest.raises(TypeError, match="must be an ipywidgets widget"):
        Explorer(train, {"lr": 0.1})
    with pytest.raises(ValueError, match="at least one slider"):
        Explorer(train, {})


def test_explorer_has_the_classes_the_browser_test_finds():
    ex = Explorer(train_square, {"lr": lr_slider(0.05)})
    assert "d2l-explorer" in ex.widget._dom_classes
    assert "d2l-explorer-status" in ex.status._dom_classes and "d2l-explorer-out" in ex.out._dom_classes


def test_show_displays_the_widget_then_a_replay_of_every_grid_point(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    calls = []

    def train(lr: float, epochs: int) -> FitResult:
        calls.append((lr, epochs))
        return train_square(lr=lr, epochs=epochs)

    ex = Explorer(train, {"lr": lr_slider(0.05), "epochs": int_slider(10, 5, 50)}, title="LR")
    assert ex.show(replay={"lr": [0.01, 0.05, 50.0]}) is None  # nothing returned: nothing shown twice
    assert shown[0] is ex.widget and isinstance(shown[1], Replay) and shown[1] is ex.replay
    assert calls == [(0.01, 10), (0.05, 10), (50.0, 10)]  # the other slider at its value
    assert len(png_outputs(ex)) == 1  # the live area starts with the current setting's frame
    html = ex.replay._repr_html_()
    assert html.count('type="range"') == 1 and 'max="2"' in html and 'value="1"' in html
    assert "lr=50: computed in" in html and "3 runs" in html and "Other settings: epochs=10" in html
    assert "<script>" in html and "http" not in html.split("<script>")[1]  # no network, works from file://
    assert plt.get_fignums() == []
    with pytest.raises(ValueError, match="no slider named"):
        ex.precompute({"momentum": [0.9]})


def test_replay_needs_every_combination_and_keeps_frames_small():
    fig = render(train_square(epochs=10))
    from d2lmini.replay import figure_png

    png = figure_png(fig)
    plt.close(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 40_000
    frames = {(a, b): png for a in (1, 2) for b in ("x", "y")}
    r = Replay({"a": [1, 2], "b": ["x", "y"]}, frames, initial=(2, "y"))
    html = r._repr_html_()
    assert html.count('type="range"') == 2 and 'data-frame="1_1"' in html
    assert r.size_bytes == 4 * len(png) and "4 precomputed results" in repr(r)
    with pytest.raises(ValueError, match="missing frames"):
        Replay({"a": [1, 2, 3]}, {(1,): png, (2,): png})

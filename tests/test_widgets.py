"""The live explorer, tested without a browser: the slider callback is a plain method."""

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import ipywidgets as W  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import d2lmini as d2l  # noqa: E402
from d2lmini.widgets import (  # noqa: E402
    Explorer,
    FitResult,
    dropdown,
    float_slider,
    int_slider,
    lr_slider,
    render,
    render_grid,
)

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


def test_render_grid_one_row_per_result():
    results = {f"lr={lr}": train_square(lr=lr, epochs=10) for lr in (0.01, 0.1)}
    fig = render_grid(results)
    assert len(fig.axes) == 4
    assert fig.axes[0].get_title().startswith("lr=0.01")
    plt.close(fig)
    with pytest.raises(ValueError):
        render_grid({})


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


def test_explorer_auto_mode_and_errors_do_not_escape():
    def train(lr: float, epochs: int) -> FitResult:
        if epochs > 30:
            raise RuntimeError("out of patience")
        return train_square(lr=lr, epochs=epochs)

    ex = Explorer(train, {"lr": lr_slider(0.05), "epochs": int_slider(5, 1, 50)}, auto=True, run_now=True)
    assert ex.runs == 1
    ex.sliders["epochs"].value = 8  # releasing a slider retrains at once
    assert ex.runs == 2 and ex.result.history.epochs == 8
    ex.sliders["epochs"].value = 40
    assert ex.result is None and "out of patience" in ex.status.value
    assert "out of patience" in ex.out.outputs[0]["text"]
    assert not ex.button.disabled
    with pytest.raises(TypeError, match="must be an ipywidgets widget"):
        Explorer(train, {"lr": 0.1})
    with pytest.raises(ValueError, match="at least one slider"):
        Explorer(train, {})

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
from torch import nn  # noqa: E402

import d2lmini as d2l  # noqa: E402


def test_plot_history_draws_train_and_val():
    h = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]}
    fig = d2l.plot_history(h)
    assert len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    assert list(fig.axes[0].lines[1].get_ydata()) == [1.1, 0.7]


def test_show_images_grid_and_titles():
    fig = d2l.show_images(torch.rand(10, 1, 28, 28), titles=[str(i) for i in range(10)], ncols=4)
    assert len(fig.axes) == 12 and fig.axes[9].get_title() == "9"
    assert len(fig.axes[10].images) == 0


def test_confusion_matrix_counts():
    cm = d2l.confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    logits = torch.tensor([[3.0, 0, 0], [0, 3.0, 0]])
    assert d2l.confusion_matrix(logits, torch.tensor([0, 0]), 3).tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]
    fig = d2l.plot_confusion_matrix(cm, ["a", "b", "c"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]


def test_live_plot_updates_one_display_in_place(monkeypatch):
    shown, updates = [], []

    class Handle:
        def update(self, fig):
            updates.append(fig)

    monkeypatch.setattr("d2lmini.callbacks._in_ipython", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda fig, display_id=None: shown.append(fig) or Handle())
    X = torch.randn(32, 2)
    y = (X[:, 0] > 0).long()
    d2l.fit(nn.Linear(2, 2), d2l.TensorLoader(X, y, 8), epochs=3, verbose=False, plot=True)
    assert len(shown) == 1 and len(updates) == 3 and all(f is shown[0] for f in updates)
    assert len(shown[0].axes) == 2


def test_live_plot_outside_ipython_draws_nothing():
    X = torch.randn(16, 2)
    y = (X[:, 0] > 0).long()
    cb = d2l.callbacks.LivePlot()
    d2l.Learner(nn.Linear(2, 2), d2l.TensorLoader(X, y, 8), callbacks=[cb]).fit(1)
    assert cb.handle is None


def test_plot_history_draws_every_metric_and_skips_lr_and_time():
    h = {"loss": [1.0, 0.5], "iou": [0.2, 0.6], "val_loss": [1.1, 0.7], "val_iou": [0.1, 0.5],
         "lr": [0.1, 0.1], "time": [1.0, 1.0]}
    fig = d2l.plot_history(h)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "iou"]
    assert list(fig.axes[1].lines[1].get_ydata()) == [0.1, 0.5]

"""Record the golden training histories that tests/test_golden.py compares against.

    python tests/golden/record.py            # rewrites tests/golden/histories.json

Run it only when a change is *meant* to alter the numbers (and say so in the commit): the point of the
file is that refactoring the loop leaves every printed loss and accuracy on the CPU exactly as it was.
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import re
from functools import partial
from pathlib import Path

import torch
from torch import nn

import d2lmini as d2l

HERE = Path(__file__).resolve().parent


def _printed(fn) -> tuple[object, list[str]]:
    """Run ``fn()``; return its result and the printed lines with the timings cut off."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        out = fn()
    lines = [re.sub(r"\s+\d+\.\d s$", "", ln) for ln in buf.getvalue().splitlines()]
    return out, lines


def _plain(h: d2l.History) -> dict:
    return {"history": {k: v for k, v in h.history.items() if k != "time"}, "step_loss": h.step_loss}


def lenet_fashion_mnist() -> dict:
    """Chapter 06 style: ModernLeNet, 2 epochs on 2,000 Fashion-MNIST images, printed per epoch."""
    L = d2l.fashion_mnist_loaders(batch_size=256, val_size=500, n_train=2000, n_test=500, seed=0)
    torch.manual_seed(0)
    net = d2l.models.ModernLeNet()
    h, lines = _printed(lambda: d2l.fit(net, L.train, epochs=2, lr=0.1, val_data=L.val,
                                        device=torch.device("cpu")))
    return {**_plain(h), "printed": lines}


def mlp_momentum_steplr() -> dict:
    """Chapter 03 style: an MLP with SGD + momentum and a StepLR schedule on 2,000 images."""
    L = d2l.fashion_mnist_loaders(batch_size=128, val_size=500, n_train=2000, n_test=500, seed=0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    sched = d2l.LRScheduler(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5))
    learn = d2l.Learner(net, L.train, L.val, opt=partial(torch.optim.SGD, momentum=0.9), lr=0.05,
                        callbacks=[sched, d2l.PrintMetrics()], device=torch.device("cpu"))
    h, lines = _printed(lambda: learn.fit(3))
    return {**_plain(h), "printed": lines}


def regression_full_batch() -> dict:
    """Chapter 03's first fit: a Tanh MLP on 200 points, one full batch per epoch, MSE, no metrics."""
    torch.manual_seed(0)
    X = torch.linspace(-3, 3, 200).unsqueeze(1)
    Y = torch.sin(X) + 0.1 * torch.randn_like(X)
    net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    h = d2l.fit(net, d2l.TensorLoader(X, Y, batch_size=200), epochs=40, lr=0.05, loss_fn=nn.MSELoss(),
                metrics=(), verbose=False, device=torch.device("cpu"))
    return _plain(h)


CASES = {"lenet_fashion_mnist": lenet_fashion_mnist, "mlp_momentum_steplr": mlp_momentum_steplr,
         "regression_full_batch": regression_full_batch}


def machine() -> dict:
    """What decides bitwise equality: torch build, CPU kernels and thread count."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "machine": platform.machine()}


if __name__ == "__main__":
    data = {"machine": machine(), "cases": {name: fn() for name, fn in CASES.items()}}
    (HERE / "histories.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print({k: v["history"].get("loss", [])[-1:] for k, v in data["cases"].items()})

"""Checks for chapter 04, Building models.  Every expected value is computed here: from a reference
model, by running the experiment the exercise describes, or from the reader's own model."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import by_mode, is_smoke
from . import Feedback, correct, exercise, wrong


def _linear_stack(act: Callable[[], nn.Module], depth: int = 20, width: int = 256) -> nn.Sequential:
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), act())])


def _output_stds(stack: nn.Sequential, width: int = 256) -> list[float]:
    """The std of every activation function's output for 512 random inputs."""
    stds = []
    x = torch.randn(512, width)
    with torch.no_grad():
        for m in stack:
            x = m(x)
            if not isinstance(m, nn.Linear):
                stds.append(x.std().item())
    return stds


@exercise("04.1", title="count parameters", where="section 4.2")
def _count(answer: int) -> Feedback:
    sizes = [(784, 256), (256, 128), (128, 10)]
    ref = nn.Sequential(nn.Linear(*sizes[0]), nn.ReLU(), nn.Linear(*sizes[1]), nn.ReLU(),
                        nn.Linear(*sizes[2]))
    truth = sum(p.numel() for p in ref.parameters())
    if answer == truth:
        return correct("three weight matrices (in × out) and three bias vectors (out); ReLU has none.")
    if answer == sum(a * b for a, b in sizes):
        return wrong("you counted the weights only: every Linear layer also has one bias per output.")
    return wrong("count in × out weights plus out biases for each of the three Linear layers; the ReLUs "
                 "have no parameters.")


@exercise("04.2", title="fix the trap", where="section 4.1")
def _fixed(cls: type) -> Feedback:
    model = cls()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    n = len(list(model.parameters()))
    if len(linears) != 3 or n != 6:
        return wrong(f"the model registers {n} parameter tensors in {len(linears)} Linear layers; all "
                     f"three layers (two hidden, one output) should be registered: 6 tensors. Put the "
                     f"hidden layers in an nn.ModuleList.")
    torch.manual_seed(0)
    out = model(torch.randn(8, 10))
    if out.shape != (8, 1):
        return wrong(f"the output has shape {tuple(out.shape)}, not (8, 1): keep Broken's forward.")
    before = [m.weight.detach().clone() for m in linears]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    nn.functional.mse_loss(model(torch.randn(8, 10)), torch.randn(8, 1)).backward()
    opt.step()
    if not all(not torch.equal(b, m.weight) for b, m in zip(before, linears, strict=True)):
        return wrong("some layer did not change in a training step: is every layer used in forward?")
    return correct("6 parameter tensors, and one SGD step changes every layer.")


@exercise("04.3", title="your own init", where="section 4.3")
def _init_kaiming(init_fn: Callable[[nn.Module], None]) -> Feedback:
    torch.manual_seed(0)
    stack = _linear_stack(nn.ReLU)
    stack.apply(init_fn)
    if not all((m.bias == 0).all() for m in stack if isinstance(m, nn.Linear)):
        return wrong("the biases are not all zero: nn.init.zeros_(m.bias).")
    last = _output_stds(stack)[-1]
    torch.manual_seed(0)
    default = _output_stds(_linear_stack(nn.ReLU))[-1]
    if 0.3 < last < 3:
        return correct(f"the last layer's std is {last:.3g} (PyTorch's default init gives {default:.3g}).")
    return wrong(f"the last layer's std is {last:.3g}, not between 0.3 and 3: use "
                 f"nn.init.kaiming_normal_(m.weight, nonlinearity='relu') on every nn.Linear.")


@exercise("04.4", title="sharing", where="section 4.4",
          discuss=["what the shared layer's .grad holds after one backward pass through both uses"])
def _sharing(answer: bool) -> Feedback:
    if not isinstance(answer, bool):
        return wrong("answer with what the changed check prints: True or False.")
    torch.manual_seed(0)
    shared = nn.Linear(8, 8)
    tied = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))
    untied = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8),
                           nn.ReLU(), nn.Linear(8, 1))
    for i in range(7):
        if isinstance(tied[i], nn.Linear):
            untied[i].load_state_dict(tied[i].state_dict())
    x = torch.randn(16, 4)
    tied(x).sum().backward()
    untied(x).sum().backward()
    printed = bool(torch.allclose(shared.weight.grad, untied[2].weight.grad))
    if answer == printed:
        return correct(f"it prints {printed}: the shared layer's gradient is the sum over both of its "
                       f"uses, not the gradient of the first use alone.")
    return wrong("not what the check prints. What does the shared layer's .grad hold after backward: one "
                 "use's gradient, or both added?")


@exercise("04.5", title="the gain of another activation function", where="section 4.3",
          discuss=["how your gain compares with ReLU's, and why",
                   "how your gain compares with calculate_gain('leaky_relu', 0.5)"])
def _leaky_gain(gain: float) -> Feedback:
    gain = float(gain)
    if not gain > 0:
        return wrong("a gain is a positive number.")
    torch.manual_seed(0)
    stack = _linear_stack(lambda: nn.LeakyReLU(0.5))
    for m in stack:
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight, gain=gain)
            nn.init.zeros_(m.bias)
    stds = _output_stds(stack)
    ratio = stds[-1] / stds[0]
    if 0.5 <= ratio <= 2:
        return correct(f"with gain {gain:.3g} the std goes from {stds[0]:.3g} (layer 1) to {stds[-1]:.3g} "
                       f"(layer 20); calculate_gain('leaky_relu', 0.5) says "
                       f"{nn.init.calculate_gain('leaky_relu', 0.5):.4f}.")
    way = "fades" if ratio < 0.5 else "grows"
    return wrong(f"with gain {gain:.3g} the signal {way}: layer 20's std is {ratio:.3g} times layer 1's. "
                 f"{'Raise' if ratio < 0.5 else 'Lower'} the gain (the signal changes by about the same "
                 f"factor at every layer).")


@exercise("04.6", title="a script's checkpoint", where="section 4.6")
def _script_checkpoint(model: nn.Module, path: str | Path, test_data: Any) -> Feedback:
    path = Path(path)
    if not path.is_file():
        return wrong(f"there is no checkpoint at {path.name} yet: run the script with --checkpoint.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = state.get("model", {})
    if saved.get("1.weight") is None or tuple(saved["1.weight"].shape) != (64, 784):
        shape = tuple(saved["1.weight"].shape) if "1.weight" in saved else None
        return wrong(f"the checkpoint's first layer has shape {shape}, not (64, 784): run the script with "
                     f"--hidden 64.")
    if state.get("epoch") != 2:
        return wrong(f"the checkpoint was saved after epoch {state.get('epoch')}: train for 2 epochs "
                     f"(--epochs 2).")
    mine = model.state_dict()
    if list(mine) != list(saved) or not all(torch.equal(mine[k].cpu(), saved[k]) for k in saved):
        return wrong("your model does not hold the checkpoint's weights: build the same architecture "
                     "(784 -> 64 -> 10 with Flatten and ReLU) and d2l.load_checkpoint(path, model).")
    from ..train import evaluate

    acc = evaluate(model, test_data)["accuracy"]
    need = by_mode(0.75, 0.3)
    smoke = " (smoke mode: the threshold is relaxed for the tiny run)" if is_smoke() else ""
    if acc >= need and math.isfinite(acc):
        return correct(f"the loaded model reaches test accuracy {acc:.4f} (at least {need}){smoke}.")
    return wrong(f"test accuracy {acc:.4f}, below {need}: did the script train with a sensible learning "
                 f"rate (--lr 0.1)?{smoke}")

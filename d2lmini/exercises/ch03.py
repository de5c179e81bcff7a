"""Checks for chapter 03, Training loops.  Every expected value is computed here from the reader's own
model, data or function, or by running the experiment the exercise asks about."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import by_mode, is_smoke
from . import Feedback, correct, exercise, wrong


def _n_items(loader: Any) -> int:
    """How many examples a loader serves (a TensorLoader's ``X``, or a DataLoader's dataset)."""
    if hasattr(loader, "X"):
        return len(loader.X)
    return len(loader.dataset)


def _smoke_note() -> str:
    return " (smoke mode: the threshold is relaxed for the tiny run)" if is_smoke() else ""


@exercise("03.1", title="the five steps", where="section 3.1")
def _train_step(train_step: Callable[..., float]) -> Feedback:
    torch.manual_seed(0)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    nets = [nn.Linear(3, 1) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in nets]
    for n in nets:  # leftover gradients that a correct step must clear first
        n.weight.grad = torch.ones_like(n.weight)
        n.bias.grad = torch.ones_like(n.bias)
    got = train_step(nets[0], x, y, nn.MSELoss(), opts[0])
    opts[1].zero_grad()
    want = nn.MSELoss()(nets[1](x), y)
    want.backward()
    opts[1].step()
    if not isinstance(got, float):
        return wrong(f"train_step returned a {type(got).__name__}; return loss.item(), a Python float.")
    if not math.isclose(got, want.item(), rel_tol=1e-6, abs_tol=1e-7):
        return wrong("the returned loss is not the loss of this batch before the step: compute it with "
                     "the current weights, before opt.step().")
    pairs = zip(nets[0].parameters(), nets[1].parameters(), strict=True)
    if not all(torch.allclose(p, q, atol=1e-7) for p, q in pairs):
        return wrong("the weights after your step differ from one SGD step: did you zero the gradients "
                     "before backward() (the model came with leftover gradients) and call opt.step()?")
    return correct("one clean SGD step, with the loss returned before the step.")


@exercise("03.2", title="the largest learning rate", where="section 3.4",
          discuss=["why a wider network diverges at a smaller learning rate",
                   "why the edge is found by halving and doubling, not by a fine grid"])
def _largest_lr(lr: float, train_fn: Callable[..., Any]) -> Feedback:
    lr = float(lr)
    if not lr > 0:
        return wrong("a learning rate is a positive number.")
    epochs = 1000
    ok = train_fn(lr=lr, epochs=epochs, hidden=32)
    if ok.history.diverged_at is not None:
        return wrong(f"at lr={lr:g} the loss diverged at step {ok.history.diverged_at}: your rate is "
                     f"too large, try half of it.")
    twice = train_fn(lr=2 * lr, epochs=epochs, hidden=32)
    if twice.history.diverged_at is None:
        return wrong(f"lr={lr:g} trains, but so does lr={2 * lr:g}: the largest stable rate is at "
                     f"least twice yours. Keep doubling until it diverges.")
    return correct(f"lr={lr:g} trains for {epochs} epochs and lr={2 * lr:g} diverges at step "
                   f"{twice.history.diverged_at}: the edge lies in between.")


def _momentum_run(resume_weights_only: bool, steps: int = 10) -> list[float]:
    """SGD with momentum on a small regression; optionally 'interrupted' halfway and resumed from the
    model's state_dict alone (a fresh optimizer, so momentum restarts at zero)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(128, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(steps):
        if resume_weights_only and step == steps // 2:
            saved = {k: v.clone() for k, v in model.state_dict().items()}
            model = nn.Linear(8, 1)
            model.load_state_dict(saved)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@exercise("03.3", title="what the checkpoint must hold", where="section 3.7",
          discuss=["what SGD with momentum remembers from one step to the next, and where"])
def _resume(answer: bool) -> Feedback:
    if not isinstance(answer, bool):
        return wrong("answer True or False.")
    straight, resumed = _momentum_run(False), _momentum_run(True)
    diff = max(abs(a - b) for a, b in zip(straight, resumed, strict=True))
    coincide = diff < 1e-6
    measured = (f"the checker trained 10 steps of SGD with momentum straight through, and again "
                f"restarted after 5 from the weights alone: the losses differ by up to {diff:.3g}")
    if answer == coincide:
        return correct(f"{measured}. A fresh optimizer starts with zero momentum, so the steps after "
                       f"resuming are not the steps the uninterrupted run takes.")
    return wrong(f"not what the experiment shows: {measured}. Think about what SGD with momentum "
                 f"remembers between steps, and where that memory lives.")


@exercise("03.4", title="more data against overfitting", where="section 3.6",
          discuss=["when early stopping came in each run, and why",
                   "what the best validation loss says about how much the model memorised",
                   "the gap between training and validation loss at the best epoch"])
def _more_data(history: Any, train_data: Any, baseline: Any, baseline_data: Any) -> Feedback:
    if train_data is None:
        return wrong("pass the training loader of your run as train_data=.")
    n_new, n_old = _n_items(train_data), _n_items(baseline_data)
    if n_new < 3.5 * n_old:
        return wrong(f"your run trained on {n_new} images, the baseline on {n_old}: use about 4x as "
                     f"many (n_train= in d2l.fashion_mnist_loaders).")
    val = history.history.get("val_loss", [])
    if not val:
        return wrong("your history has no val_loss: pass val_data= (the same validation images) to fit.")
    best_new, best_old = min(val), min(baseline.history["val_loss"])
    stop_new = 1 + val.index(best_new)
    stop_old = 1 + baseline.history["val_loss"].index(best_old)
    summary = (f"best validation loss {best_new:.4f} at epoch {stop_new} on {n_new} images, against "
               f"{best_old:.4f} at epoch {stop_old} on {n_old}")
    if best_new < best_old or is_smoke():
        return correct(summary + "." + _smoke_note())
    return wrong(summary + ": more data should lower the best validation loss. Did you validate on the "
                 "same validation images, with the same model, optimizer and early stopping?")


@exercise("03.5", title="your own function", where="section 3.2",
          discuss=["which learning rate and how many epochs you needed, and how you found them",
                   "what made your function harder or easier than the chapter's"])
def _own_function(my_f: Callable[[torch.Tensor], torch.Tensor], net: nn.Module | None,
                  chapter_f: Callable[[torch.Tensor], torch.Tensor]) -> Feedback:
    x = torch.linspace(-3, 3, 200).unsqueeze(1)
    with torch.no_grad():
        y = torch.as_tensor(my_f(x), dtype=torch.float32).reshape(200, 1)
        if not torch.isfinite(y).all():
            return wrong("your f(x) is not finite everywhere on [-3, 3].")
        if torch.allclose(y, chapter_f(x), atol=1e-4):
            return wrong("that is the chapter's f: define a function of your own.")
        var = y.var().item()
        line = torch.linalg.lstsq(torch.cat([x, torch.ones_like(x)], 1), y).solution
        curved = ((torch.cat([x, torch.ones_like(x)], 1) @ line - y) ** 2).mean().item()
        if var < 1e-6 or curved < 0.01 * var:
            return wrong("your f(x) is (almost) a straight line: make it curve, e.g. with sin, "
                         "a square or an abs.")
        if net is None:
            return wrong("your function is fine; now train a network on it and pass it as net=.")
        device = next(net.parameters()).device
        pred = net(x.to(device)).cpu().reshape(200, 1)
    r2 = 1 - ((pred - y) ** 2).mean().item() / var
    need = by_mode(0.99, 0.5)
    if r2 >= need:
        return correct(f"R² = {r2:.4f} on 200 points of your f (at least {need} needed)." + _smoke_note())
    return wrong(f"R² = {r2:.4f}, below {need}: the fit does not follow your f yet. Try a larger "
                 f"learning rate (up to the edge of divergence), more epochs, or more hidden units.")


@exercise("03.6", title="hand in model.pth", where="section 3.8")
def _model_pth(loaded: nn.Module, trained: nn.Module | None, path: str | Path) -> Feedback:
    path = Path(path)
    if trained is None:
        return wrong("pass your trained network from exercise 5 as trained=.")
    if path.name != "model.pth":
        return wrong(f"the course wants a file named model.pth, not {path.name}.")
    if not path.is_file():
        return wrong(f"there is no file {path.name} yet: torch.save(net.state_dict(), path).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        return wrong(f"{path.name} cannot be loaded with weights_only=True ({type(e).__name__}): save "
                     f"net.state_dict(), not the whole model.")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return wrong(f"{path.name} is not a plain state_dict (a dict from names to tensors): save "
                     f"net.state_dict() itself, not a checkpoint dict or the model.")
    want = trained.state_dict()
    if list(state) != list(want) or not all(torch.equal(state[k].cpu(), want[k].cpu()) for k in want):
        return wrong(f"{path.name} does not hold the weights of your trained network: save it again "
                     f"after training.")
    if loaded is trained:
        return wrong("that is the trained network itself: build a fresh one and load the file into it.")
    if any(p.data_ptr() == q.data_ptr() for p in loaded.parameters() for q in trained.parameters()):
        return wrong("the copy shares tensors with the trained network: load the file into a freshly "
                     "built network.")
    x = torch.linspace(-3, 3, 200).unsqueeze(1)
    with torch.no_grad():
        a = loaded(x.to(next(loaded.parameters()).device)).cpu()
        b = trained(x.to(next(trained.parameters()).device)).cpu()
    if not torch.equal(a, b):
        return wrong("the loaded copy predicts differently from the trained network: did "
                     "load_state_dict run on the copy?")
    return correct(f"{path.name} holds a state_dict of {len(state)} tensors, and the copy loaded from "
                   f"it predicts exactly what the trained network predicts.")

"""Checks for chapter 10, Optimizers and learning-rate schedules.  Every expected value is computed here,
by running torch.optim, its schedulers or the experiment the exercise asks about."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..config import by_mode
from . import Feedback, correct, exercise, wrong


def _number(answer: Any) -> float:
    return float(answer.item() if isinstance(answer, Tensor) else answer)


def _loss(p: Tensor, t: int) -> Tensor:
    """A loss whose gradient changes from step to step, so the rule's memory matters."""
    w = torch.arange(1.0, p.numel() + 1, dtype=p.dtype).view_as(p)
    return ((p - 0.1 * t) ** 2 * w).sum() + p.sin().sum()


def _start() -> Tensor:
    return torch.linspace(-1, 1, 6, dtype=torch.float64).view(2, 3)


@exercise("10.1", title="heavy-ball momentum", where="section 10.1")
def _heavy_ball(rule: Callable[..., Any]) -> Feedback:
    lr, mu, steps = 0.02, 0.9, 20
    p = _start().requires_grad_()
    state: dict[str, Any] = {}
    for t in range(steps):
        _loss(p, t).backward()
        with torch.no_grad():
            rule(p, state, lr=lr, momentum=mu)
        p.grad = None
    mine = p.detach()
    if torch.equal(mine, _start()):
        return wrong("the rule did not change p: update it in place (p -= ..., p.add_(...)).")

    def run_sgd(momentum: float) -> Tensor:
        q = _start().requires_grad_()
        opt = torch.optim.SGD([q], lr=lr, momentum=momentum)
        for t in range(steps):
            opt.zero_grad()
            _loss(q, t).backward()
            opt.step()
        return q.detach()

    if torch.allclose(mine, run_sgd(mu), rtol=0, atol=1e-10):
        return correct("20 steps equal torch.optim.SGD(momentum=0.9): the heavy ball and the velocity form "
                       "are the same method.")
    if torch.allclose(mine, run_sgd(0.0), rtol=0, atol=1e-10):
        return wrong("that is plain SGD: add momentum * (p - p_previous), keeping p_previous in state.")
    return wrong("the parameters differ from torch.optim.SGD(momentum=0.9) after 20 steps: at the first step "
                 "there is no previous point (take a plain SGD step), and remember the point *before* "
                 "the update (state['prev'] = p.clone()) before you change p.")


def _rosenbrock(q: Tensor) -> Tensor:
    return (1 - q[0]) ** 2 + 100 * (q[1] - q[0] ** 2) ** 2


@exercise("10.2", title="the largest stable LR near a minimum", where="section 10.2 and exercise 2",
          discuss=["why SGD needed a tiny LR on Rosenbrock but not on the quadratic",
                   "what the ratio of the Hessian's eigenvalues (its condition number) says about speed"])
def _stable_lr(answer: float) -> Feedback:
    value = _number(answer)
    h = torch.autograd.functional.hessian(_rosenbrock, torch.tensor([1.0, 1.0], dtype=torch.float64))
    lam = torch.linalg.eigvalsh(h)
    want = 2 / lam.max().item()
    if math.isclose(value, want, rel_tol=1e-2):
        return correct("2 / λ_max of the Hessian at (1, 1): a step above it makes the steep direction grow "
                       "every step.")
    if math.isclose(value, want / 2, rel_tol=1e-2):
        return wrong("that is 1 / λ_max; gradient descent on a quadratic is stable up to 2 / λ_max.")
    if math.isclose(value, 2 / lam.min().item(), rel_tol=1e-2):
        return wrong("that is 2 / λ_min, the flat direction's limit; the steep direction (λ_max) decides.")
    if math.isclose(value, 0.5, rel_tol=1e-2):
        return wrong("0.5 is the quadratic's limit; compute the Hessian of the Rosenbrock function at "
                     "(1, 1).")
    return wrong("not this value: take torch.autograd.functional.hessian of the Rosenbrock function at "
                 "(1., 1.), its largest eigenvalue λ_max, and 2 / λ_max.")


@exercise("10.3", title="Adam's first step", where="section 10.1 (bias correction)")
def _adam_first(answer: float) -> Feedback:
    value = _number(answer)
    lr = 0.1
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr)
    p.grad = torch.tensor([1e-3, 1.0, 1e3], dtype=torch.float64)
    opt.step()
    moved = (p.detach().abs() / lr)
    if math.isclose(value, moved.mean().item(), rel_tol=1e-3):
        return correct("the bias-corrected m̂ / sqrt(v̂) is g / |g| at t = 1: every coordinate moves by η, "
                       "whatever the gradient's size.")
    if math.isclose(value, 0.1, rel_tol=1e-3):
        return wrong("that leaves out the bias correction: m̂ = m / (1 - β1) and v̂ = v / (1 - β2).")
    return wrong("not this value: print p after one Adam step from zero with that gradient, divided by lr.")


@exercise("10.4", title="warm-up plus cosine", where="section 10.4")
def _warmup_cosine(factor: Callable[[int], float]) -> Feedback:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    got = []
    for _ in range(100):
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [(s + 1) / 10 if s < 10 else 0.5 * (1 + math.cos(math.pi * (s - 10) / 90)) for s in range(100)]
    bad = [s for s in range(100) if abs(got[s] - want[s]) > 1e-6]
    if not bad:
        return correct("100 learning rates equal to the formula: a linear warm-up, then a cosine to 0.")
    s = bad[0]
    where = "the warm-up (steps 0-9)" if s < 10 else "the cosine part (from step 10)"
    return wrong(f"the first wrong step is {s}, in {where}: your factor gives {got[s]:.4f} there.")


def _val_accs(runs: Sequence[Any]) -> Tensor:
    """Validation accuracies from train_reg results (h, train_acc, val_acc, val_loss) or plain numbers."""
    values = [r[2] if isinstance(r, tuple | list) else r for r in runs]
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


@exercise("10.5", title="two remedies at once", where="section 10.5",
          discuss=["whether the two remedies add up, and why (do they act on the same thing?)",
                   "what each combination costs in epochs and seconds",
                   "why one seed's gain is not enough to call a winner"])
def _two_remedies(answer: Any, reg: Mapping[str, Sequence[Any]]) -> Feedback:
    mine = _val_accs(answer)
    base = _val_accs(reg["baseline"])
    if len(mine) != len(base):
        return wrong(f"give one result per seed in REG_SEEDS ({len(base)}), from train_reg, in seed order.")
    if not ((mine >= 0) & (mine <= 1)).all():
        return wrong("validation accuracies lie between 0 and 1: pass what train_reg returns.")
    gain = mine - base
    noise = 2 * gain.std().item() if len(gain) > 1 else 0.0
    singles = {k: _val_accs(v).mean().item() for k, v in reg.items() if k != "baseline"}
    best = max(singles, key=singles.get)
    spread = 2 * max(mine.std().item(), _val_accs(reg[best]).std().item())
    diff = mine.mean().item() - singles[best]
    place = ("above" if diff > spread else "below" if -diff > spread else "within noise of")
    summary = (f"mean validation accuracy {mine.mean().item():.3f} ± {mine.std().item():.3f}, "
               f"{gain.mean().item():+.3f} over the baseline of the same seeds; {place} the best single "
               f"remedy ({best}, {singles[best]:.3f})")
    if by_mode(gain.mean().item() > noise and gain.mean().item() > 0, True):
        return correct(summary + "." + by_mode("", " (smoke mode: the threshold is relaxed for the tiny "
                                                   "run)"))
    return wrong(summary + ": the pair does not beat the baseline by more than the seed-to-seed noise; "
                 "check that both remedies are switched on (train_reg's keyword arguments).")


@exercise("10.6", title="parameter groups", where="section 10.3")
def _groups(opt: Any, net: nn.Sequential) -> Feedback:
    if not isinstance(opt, torch.optim.SGD):
        return wrong("build a torch.optim.SGD from a list of parameter groups (dicts with 'params').")
    owner: dict[int, dict[str, Any]] = {}
    for g in opt.param_groups:
        for p in g["params"]:
            if id(p) in owner:
                return wrong("a parameter appears in two groups; each must be in exactly one.")
            owner[id(p)] = g
    want = {"0.weight": (0.01, 5e-4), "0.bias": (0.01, 0.0), "2.weight": (0.1, 5e-4), "2.bias": (0.1, 0.0)}
    for name, p in net.named_parameters():
        g = owner.get(id(p))
        if g is None:
            return wrong(f"net's {name} is in no group: the optimizer would never update it.")
        lr, wd = want[name]
        if not math.isclose(g["lr"], lr):
            return wrong(f"{name} learns at lr={g['lr']:g}; the first layer should use 0.01, the last 0.1.")
        if not math.isclose(g["weight_decay"], wd, abs_tol=1e-12):
            return wrong(f"{name} has weight_decay={g['weight_decay']:g}: decay the weight matrices (5e-4), "
                         f"not the biases (0).")
        if not math.isclose(g.get("momentum", 0.0), 0.9):
            return wrong("give every group momentum 0.9 (as a keyword of SGD, it applies to all groups).")
    return correct(f"{len(opt.param_groups)} groups: each layer at its own rate, the biases undecayed.")

"""Optimizer update rules written out by hand (chapter 10), each equal to its ``torch.optim`` twin.

Every rule is a plain function that updates *one* parameter tensor ``p`` in place from its gradient
``p.grad``, keeping what it must remember between steps (velocity, running averages, the step count) in
``state``, a dict that belongs to that parameter::

    state = {}
    for _ in range(3):
        loss_fn(p).backward()
        adam_step(p, state, lr=1e-3)
        p.grad = None

:class:`HandOptimizer` wraps a rule as a real ``torch.optim.Optimizer`` (so it has ``param_groups``,
``zero_grad``, ``state_dict``, and works with :class:`~d2lmini.Learner` and LR schedulers).
The formulas follow the PyTorch documentation of each optimizer, with the same defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

Rule = Callable[..., None]


@torch.no_grad()
def sgd_step(p: Tensor, state: dict[str, Any], lr: float,
             weight_decay: float = 0.0) -> None:
    """Plain SGD: ``g = grad + wd * p``; ``p -= lr * g``
    (``torch.optim.SGD``)."""
    g = p.grad + weight_decay * p
    p -= lr * g


@torch.no_grad()
def momentum_step(p: Tensor, state: dict[str, Any], lr: float,
                  momentum: float = 0.9, weight_decay: float = 0.0,
                  nesterov: bool = False) -> None:
    """SGD with momentum (动量): ``v = mu * v + g`` (``v = g`` at the
    first step); ``p -= lr * v``.  With ``nesterov=True`` the step looks
    ahead: ``p -= lr * (g + mu * v)``
    (``torch.optim.SGD(momentum=mu, nesterov=...)``)."""
    g = p.grad + weight_decay * p
    if "v" not in state:
        state["v"] = g.clone()
    else:
        state["v"] = momentum * state["v"] + g
    v = state["v"]
    p -= lr * (g + momentum * v if nesterov else v)


@torch.no_grad()
def nesterov_step(p: Tensor, state: dict[str, Any], lr: float,
                  momentum: float = 0.9, weight_decay: float = 0.0) -> None:
    """Nesterov momentum: :func:`momentum_step` with ``nesterov=True``."""
    momentum_step(p, state, lr, momentum, weight_decay, nesterov=True)


@torch.no_grad()
def adagrad_step(p: Tensor, state: dict[str, Any], lr: float = 0.01,
                 eps: float = 1e-10, weight_decay: float = 0.0) -> None:
    """Adagrad: ``s += g**2``; ``p -= lr * g / (sqrt(s) + eps)``
    (``torch.optim.Adagrad``)."""
    g = p.grad + weight_decay * p
    state["s"] = state.get("s", torch.zeros_like(p)) + g * g
    p -= lr * g / (state["s"].sqrt() + eps)


@torch.no_grad()
def rmsprop_step(p: Tensor, state: dict[str, Any], lr: float = 0.01,
                 alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
    """RMSprop: ``s = alpha * s + (1 - alpha) * g**2``;
    ``p -= lr * g / (sqrt(s) + eps)`` (``torch.optim.RMSprop``)."""
    g = p.grad + weight_decay * p
    s = state.get("s", torch.zeros_like(p))
    state["s"] = alpha * s + (1 - alpha) * g * g
    p -= lr * g / (state["s"].sqrt() + eps)


@torch.no_grad()
def adam_step(p: Tensor, state: dict[str, Any], lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.0, decoupled: bool = False) -> None:
    """Adam: running averages of the gradient ``m`` and of its square
    ``v``, bias-corrected: ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with
    ``m_hat = m / (1 - b1**t)``, ``v_hat = v / (1 - b2**t)``.

    ``weight_decay`` is added to the gradient (L2, ``torch.optim.Adam``),
    or, with ``decoupled=True``, applied straight to the weights,
    ``p *= 1 - lr * wd`` (``torch.optim.AdamW``)."""
    b1, b2 = betas
    if decoupled:
        p *= 1 - lr * weight_decay
        g = p.grad
    else:
        g = p.grad + weight_decay * p
    t = state["t"] = state.get("t", 0) + 1
    state["m"] = b1 * state.get("m", torch.zeros_like(p)) + (1 - b1) * g
    state["v"] = b2 * state.get("v", torch.zeros_like(p)) + (1 - b2) * g * g
    m_hat = state["m"] / (1 - b1**t)
    v_hat = state["v"] / (1 - b2**t)
    p -= lr * m_hat / (v_hat.sqrt() + eps)


@torch.no_grad()
def adamw_step(p: Tensor, state: dict[str, Any], lr: float = 1e-3,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 0.01) -> None:
    """AdamW: Adam with decoupled weight decay (default 0.01, as
    ``torch.optim.AdamW``)."""
    adam_step(p, state, lr, betas, eps, weight_decay, decoupled=True)


RULES: dict[str, Rule] = {
    "SGD": sgd_step, "Momentum": momentum_step, "Nesterov": nesterov_step, "Adagrad": adagrad_step,
    "RMSprop": rmsprop_step, "Adam": adam_step, "AdamW": adamw_step,
}


class HandOptimizer(torch.optim.Optimizer):
    """Any rule above as a ``torch.optim.Optimizer``: ``HandOptimizer(net.parameters(), adam_step, lr=1e-3)``.

    Keyword arguments are the rule's hyper-parameters (they land in ``param_groups``, so LR schedulers
    and per-layer groups work); each parameter's ``state`` dict is the one the rule reads and writes."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], rule: Rule | str,
                 lr: float, **hyper: Any) -> None:
        if isinstance(rule, str):
            if rule not in RULES:
                raise ValueError(f"unknown rule {rule!r}; choose one of {sorted(RULES)}")
            rule = RULES[rule]
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.rule = rule
        super().__init__(params, {"lr": lr, **hyper})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:  # type: ignore[override]
        """Apply the rule to every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyper = {k: group[k] for k in self.defaults}  # schedulers add keys (initial_lr) the rule ignores
            for p in group["params"]:
                if p.grad is not None:
                    self.rule(p, self.state[p], **hyper)
        return loss

    def __repr__(self) -> str:
        return f"HandOptimizer({self.rule.__name__}, {self.defaults})"

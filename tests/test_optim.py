"""Each hand-written update rule must match its torch.optim twin, step for step."""

from __future__ import annotations

import pytest
import torch

from d2lmini import optim as O

# (rule, hyper-parameters for the rule, torch class, the same hyper-parameters in torch's names)
CASES = [
    ("sgd", O.sgd_step, {"lr": 0.1, "weight_decay": 0.01}, torch.optim.SGD,
     {"lr": 0.1, "weight_decay": 0.01}),
    ("momentum", O.momentum_step, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, torch.optim.SGD,
     {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
    ("nesterov", O.nesterov_step, {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01}, torch.optim.SGD,
     {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01, "nesterov": True}),
    ("adagrad", O.adagrad_step, {"lr": 0.1, "weight_decay": 0.01}, torch.optim.Adagrad,
     {"lr": 0.1, "weight_decay": 0.01}),
    ("rmsprop", O.rmsprop_step, {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.01}, torch.optim.RMSprop,
     {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.01}),
    ("adam", O.adam_step, {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}, torch.optim.Adam,
     {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("adamw", O.adamw_step, {"lr": 0.01, "weight_decay": 0.1}, torch.optim.AdamW,
     {"lr": 0.01, "weight_decay": 0.1}),
]


def _loss(p: torch.Tensor, step: int) -> torch.Tensor:
    """A loss whose gradient changes from step to step (so state matters)."""
    return ((p - step) ** 2 * torch.arange(1, p.numel() + 1, dtype=p.dtype).view_as(p)).sum() + p.sin().sum()


def _run_rule(rule, hyper, steps=6):
    p = torch.linspace(-1, 1, 6, dtype=torch.float64).view(2, 3).requires_grad_()
    state = {}
    for t in range(steps):
        _loss(p, t).backward()
        rule(p, state, **hyper)
        p.grad = None
    return p.detach()


def _run_torch(cls, hyper, steps=6):
    p = torch.linspace(-1, 1, 6, dtype=torch.float64).view(2, 3).requires_grad_()
    opt = cls([p], **hyper)
    for t in range(steps):
        opt.zero_grad()
        _loss(p, t).backward()
        opt.step()
    return p.detach()


@pytest.mark.parametrize(("name", "rule", "hyper", "cls", "torch_hyper"), CASES, ids=[c[0] for c in CASES])
def test_rule_matches_torch(name, rule, hyper, cls, torch_hyper):
    mine, theirs = _run_rule(rule, hyper), _run_torch(cls, torch_hyper)
    start = torch.linspace(-1, 1, 6, dtype=torch.float64).view(2, 3)
    assert not torch.equal(mine, start)  # it moved
    torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("name", "rule", "hyper", "cls", "torch_hyper"), CASES, ids=[c[0] for c in CASES])
def test_weight_decay_changes_the_result(name, rule, hyper, cls, torch_hyper):
    no_wd = {**hyper, "weight_decay": 0.0}
    assert (_run_rule(rule, hyper) - _run_rule(rule, no_wd)).abs().max() > 1e-6


def test_hand_optimizer_matches_torch_and_resumes():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2).double()
    twin = torch.nn.Linear(4, 2).double()
    twin.load_state_dict(net.state_dict())
    mine = O.HandOptimizer(net.parameters(), "Adam", lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    ref = torch.optim.Adam(twin.parameters(), lr=0.01)
    x = torch.randn(8, 4, dtype=torch.float64)
    for _ in range(5):
        for model, opt in ((net, mine), (twin, ref)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for a, b in zip(net.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # state_dict round trip keeps the step count and the running averages
    again = O.HandOptimizer(net.parameters(), "Adam", lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    again.load_state_dict(mine.state_dict())
    p0 = next(net.parameters())
    assert again.state[p0]["t"] == 5
    torch.testing.assert_close(again.state[p0]["m"], mine.state[p0]["m"])


def test_hand_optimizer_works_with_lr_scheduler_and_groups():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    groups = [{"params": [a]}, {"params": [b], "lr": 0.01}]
    opt = O.HandOptimizer(groups, O.sgd_step, lr=0.1, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    (a.sum() + b.sum()).backward()
    opt.step()
    sched.step()
    torch.testing.assert_close(a.detach(), torch.full((2,), 0.9))
    torch.testing.assert_close(b.detach(), torch.full((2,), 0.99))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.005])


def test_bad_inputs_say_what_to_do():
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="unknown rule"):
        O.HandOptimizer([p], "Adamm", lr=0.1)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        O.HandOptimizer([p], "SGD", lr=-1.0)

"""Checks for chapter 15, Distributed data parallel.

Expected values are computed here: batch sizes from the exercise's numbers (15.1), the indices each rank
gets by asking ``DistributedSampler`` itself (15.2, 15.3), the linearly scaled learning rate (15.4), the
full-batch gradient of a model built here (15.5), and a checkpoint saved here through a DDP-style
``module.`` prefix (15.6).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DistributedSampler, TensorDataset

from . import Feedback, close, correct, exercise, wrong


def _as_ints(value: Any) -> list[int] | None:
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError):
        return None


@exercise("15.1", title="batch arithmetic", where="section 15.2")
def _batches(answer: Any) -> Feedback:
    per_process, effective = 512 // 4, 64 * 8
    got = _as_ints(answer)
    if got is None or len(got) != 2:
        return wrong("give a tuple of two ints: (per-process batch, effective batch).")
    if got == [per_process, effective]:
        return correct("the global batch is split over the processes; a per-process batch is "
                       "multiplied by them.")
    if got[0] != per_process:
        return wrong("the per-process batch: 4 processes share a global batch of 512.")
    return wrong("the effective batch: every one of the 8 GPUs takes a batch of 64 per step.")


def _shards(n: int, world: int, drop_last: bool) -> dict[int, list[int]]:
    data = TensorDataset(torch.arange(n))
    return {r: list(DistributedSampler(data, num_replicas=world, rank=r, shuffle=False,
                                       drop_last=drop_last)) for r in range(world)}


@exercise("15.2", title="padding: 10 items on 4 ranks", where="section 15.2",
          discuss=["how many indices each rank gets, and which ones are seen twice per epoch",
                   "what drop_last=True would give instead, and when each choice is right"])
def _padding(answer: Any) -> Feedback:
    expected = _shards(10, 4, drop_last=False)
    if not isinstance(answer, dict) or set(answer) != set(expected):
        return wrong("give a dict {rank: [indices]} with one entry for each of the ranks 0, 1, 2, 3.")
    got = {r: _as_ints(v) for r, v in answer.items()}
    if got == expected:
        return correct("10 items do not split into 4 equal shares, so the sampler pads to 12 by "
                       "repeating the first indices.")
    if got == _shards(10, 4, drop_last=True):
        return wrong("that is drop_last=True; by default the sampler pads instead of dropping.")
    if all(v is not None and len(v) == 3 for v in got.values()):
        return wrong("each rank gets 3 indices, but not these: with shuffle=False rank r takes "
                     "every 4th position of the padded list, starting at r.")
    return wrong("every rank gets the same number of indices: ceil(10 / 4) = 3, so the list of 10 is "
                 "padded to 12 first.")


@exercise("15.3", title="forgetting set_epoch", where="section 15.2",
          discuss=["what the model sees in epoch 2 without set_epoch, and why it hurts (no reshuffle)",
                   "why every rank must call set_epoch with the same epoch number"])
def _set_epoch(answer: Any) -> Feedback:
    data = TensorDataset(torch.arange(12))

    def orders(call_set_epoch: bool) -> int:
        sampler = DistributedSampler(data, num_replicas=2, rank=0, shuffle=True, seed=0)
        seen = set()
        for epoch in range(3):
            if call_set_epoch:
                sampler.set_epoch(epoch)
            seen.add(tuple(sampler))
        return len(seen)

    expected = [orders(False), orders(True)]
    got = _as_ints(answer)
    if got is None or len(got) != 2:
        return wrong("give a tuple of two ints: (distinct orders without set_epoch, with set_epoch).")
    if got == expected:
        return correct("without set_epoch the sampler shuffles with the same seed every epoch, so "
                       "every epoch repeats the first one's order.")
    if got[0] != expected[0]:
        return wrong("without set_epoch: the sampler's shuffle depends only on seed + epoch, and the "
                     "epoch stays 0.")
    return wrong("with set_epoch(0), set_epoch(1), set_epoch(2) each epoch gets its own shuffle.")


@exercise("15.4", title="the learning rate for a larger global batch", where="section 15.2",
          discuss=["the linear scaling rule: the learning rate grows with the global batch",
                   "why a warm-up is often added, and that the rule stops working for very large "
                   "batches"])
def _linear_scaling(answer: Any) -> Feedback:
    base_lr, base_batch, new_batch = 0.05, 256, 2 * 256
    expected = base_lr * new_batch / base_batch
    try:
        lr = float(answer)
    except (TypeError, ValueError):
        return wrong("give the learning rate as a number.")
    if close(lr, expected, rtol=1e-6):
        return correct("twice the global batch, twice the learning rate (the linear scaling rule).")
    if close(lr, base_lr, rtol=1e-6):
        return wrong("the global batch doubled, so each step averages over twice as many examples and "
                     "there are half as many steps: keeping the learning rate trains more slowly.")
    if lr < base_lr:
        return wrong("a larger batch gives a less noisy gradient: the rule raises the learning rate.")
    return wrong("scale the learning rate by the ratio of the global batches, no more.")


def _small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


@exercise("15.5", title="gradient accumulation", where="section 15.6",
          discuss=["why each micro-batch's loss is scaled before backward()",
                   "what no_sync() adds under DDP: one all-reduce per optimizer step instead of one per "
                   "micro-batch"])
def _accumulate(fn: Any) -> Feedback:
    if not callable(fn):
        return wrong("pass your function accumulate(model, x, y, k) itself.")
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(24, 6, generator=g), torch.randint(0, 3, (24,), generator=g)
    loss_fn = nn.CrossEntropyLoss()
    reference = _small_net()
    loss_fn(reference(x), y).backward()
    expected = [p.grad.clone() for p in reference.parameters()]
    for k in (3, 4):
        net = _small_net()
        fn(net, x, y, k)
        grads = [p.grad for p in net.parameters()]
        if any(gr is None for gr in grads):
            return wrong("the model has no gradients afterwards: call backward() on each micro-batch's "
                         "loss, and do not zero the gradients between micro-batches.")
        if all(close(a, e, rtol=1e-4, atol=1e-6) for a, e in zip(grads, expected, strict=True)):
            continue
        if all(close(a, e * k, rtol=1e-4, atol=1e-6) for a, e in zip(grads, expected, strict=True)):
            return wrong(f"with k={k} your gradient is {k} times too large: divide each micro-batch's "
                         f"loss by k (the losses are means over a k-th of the batch).")
        return wrong(f"with k={k} the accumulated gradient differs from the full batch's: split x and y "
                     f"into k equal micro-batches in order, and add up the gradients of loss / k.")
    return correct("k micro-batches with loss / k give the gradient of the whole batch.")


@exercise("15.6", title="loading a checkpoint saved without model.module", where="section 15.7",
          discuss=["where the 'module.' prefix comes from",
                   "why saving model.module.state_dict() on rank 0 avoids the problem"])
def _strip_module(fn: Any) -> Feedback:
    if not callable(fn):
        return wrong("pass your function strip_module(state_dict) itself.")
    source = _small_net()
    saved = {f"module.{k}": v.clone() for k, v in source.state_dict().items()}
    out = fn(dict(saved))
    if not isinstance(out, dict):
        return wrong(f"return a dict (a state_dict), not a {type(out).__name__}.")
    target = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    missing, unexpected = target.load_state_dict(out, strict=False)
    if missing or unexpected:
        example = (unexpected or missing)[0]
        return wrong(f"the plain model does not know the key {example!r}: remove the leading 'module.' "
                     f"from every key, and keep the rest of the name.")
    same = all(torch.equal(a, b) for a, b in zip(target.state_dict().values(),
                                                  source.state_dict().values(), strict=True))
    if not same:
        return wrong("the keys are right but the values changed: keep every tensor as it is.")
    return correct("the keys lose their 'module.' prefix and load into the plain model.")

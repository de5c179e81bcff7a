"""Checks for chapter 12, Mixed precision.  Every expected value is computed here, with PyTorch's own
number formats, the reader's checkpoint or the reader's gradients; none is stored as a literal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import Feedback, correct, exercise, wrong


def _exact(k: int, dtype: torch.dtype) -> bool:
    return torch.tensor(float(k), dtype=dtype).item() == k


@exercise("12.1", title="integers in bfloat16", where="section 12.1")
def _largest_integer(n: int) -> Feedback:
    n = int(n)
    want = 0
    while _exact(want + 1, torch.bfloat16):
        want += 1
    if n == want:
        return correct(f"every integer up to {n} fits in 8 significant bits (7 stored plus the implicit "
                       f"leading 1); {n + 1} falls between two bfloat16 numbers and rounds.")
    if n < want:
        return wrong(f"{n + 1} is representable too: bfloat16 has 8 significant bits, counting the "
                     f"implicit leading 1.")
    first_lost = next(k for k in range(want + 1, n + 1) if not _exact(k, torch.bfloat16))
    return wrong(f"{first_lost} is not representable in bfloat16: it rounds to "
                 f"{torch.tensor(float(first_lost), dtype=torch.bfloat16).item():g}.")


EXPRESSIONS = ("torch.tensor(300.0).half()", "torch.tensor(1e5).half()", "torch.tensor(1e-9).bfloat16()")


def _kind(value: torch.Tensor) -> str:
    v = value.item()
    return "inf" if v in (float("inf"), float("-inf")) else "0" if v == 0 else "neither"


@exercise("12.2", title="inf, 0, or neither?", where="section 12.1")
def _inf_or_zero(answer: dict[str, str]) -> Feedback:
    if not isinstance(answer, dict):
        return wrong('answer with a dict such as {"torch.tensor(300.0).half()": "neither", ...}.')
    canon = {" ".join(str(k).split()): " ".join(str(v).lower().split()) for k, v in answer.items()}
    missing = [e for e in EXPRESSIONS if e not in canon]
    if missing:
        return wrong(f"the dict has no entry for {missing[0]} (copy the expressions exactly).")
    values = {"torch.tensor(300.0).half()": torch.tensor(300.0).half(),
              "torch.tensor(1e5).half()": torch.tensor(1e5).half(),
              "torch.tensor(1e-9).bfloat16()": torch.tensor(1e-9).bfloat16()}
    for expr in EXPRESSIONS:
        got, want = canon[expr], _kind(values[expr])
        if got not in ("inf", "0", "neither"):
            return wrong(f'answer "inf", "0" or "neither" for {expr}, not {got!r}.')
        if got != want:
            return wrong(f"{expr} is not {got!r}: compare the value with the largest and the smallest "
                         f"positive number of its format in the table of section 12.1.")
    return correct("300 fits float16 easily, 10⁵ is above its largest number 65,504, and 10⁻⁹ is far "
                   "inside bfloat16's range, which is float32's.")


@exercise("12.3", title="resume a float16 run", where="section 12.6")
def _resume(scaler: Any, path: str | Path) -> Feedback:
    from ..checkpoint import load_checkpoint

    if not isinstance(scaler, torch.amp.GradScaler):
        return wrong(f"pass the torch.amp.GradScaler you restored, not a {type(scaler).__name__}.")
    saved = load_checkpoint(path).get("scaler")
    if saved is None:
        return wrong("the checkpoint holds no scaler: save it with d2l.save_checkpoint(..., scaler=...).")
    got = scaler.state_dict()
    if got == saved:
        return correct(f"the scaler goes on at scale {got['scale']:.0f} with {got['_growth_tracker']} "
                       f"good steps counted, instead of starting again at 2^16.")
    if got.get("scale") == 65536.0 and got.get("_growth_tracker") == 0:
        return wrong("this scaler is fresh: pass it to d2l.load_checkpoint(path, model, opt, scaler=...).")
    return wrong(f"the scaler's state differs from the checkpoint's ({got} vs {saved}): build it with "
                 f"growth_interval=GROWTH and load the checkpoint of section 12.6.")


def _toy_gradient(k: int) -> float:
    w = torch.tensor(1.0, dtype=torch.float16, requires_grad=True)
    x16 = torch.tensor(1e-4, dtype=torch.float16)
    (w * x16 * x16 * 2.0**k).backward()
    return w.grad.item()


@exercise("12.4", title="a scale that overflows", where="section 12.4",
          discuss=["that the toy's first gradient is S itself, because its loss is the float16 product",
                   "that GradScaler scales the float32 loss, and the gradients reaching float16 layers are "
                   "S times small numbers",
                   "what GradScaler does when a step overflows anyway"])
def _largest_scale(k: int) -> Feedback:
    k = int(k)
    finite = [j for j in range(0, 40) if torch.isfinite(torch.tensor(_toy_gradient(j)))]
    want = max(finite)
    if k == want:
        return correct(f"S = 2^{k} gives a finite float16 gradient; S = 2^{k + 1} is larger than 65,504, "
                       f"the largest float16 number, so the backward pass starts with inf.")
    if k > want:
        return wrong(f"with S = 2^{k} the toy's float16 gradient is {_toy_gradient(k)}: run it.")
    return wrong(f"S = 2^{k + 1} still works: the limit is where S itself stops fitting in float16.")


def _round_to_format(x: torch.Tensor, e: int, m: int) -> torch.Tensor:
    bias = 2 ** (e - 1) - 1
    tiny, largest = 2.0 ** (1 - bias), (2 - 2.0**-m) * 2.0**bias
    x = x.double()
    step = 2.0 ** (torch.floor(torch.log2(x.abs().clamp(min=tiny))) - m)
    q = torch.round(x / step) * step
    return torch.where(q.abs() > largest, torch.sign(x) * torch.inf, q)


@exercise("12.5", title="eight-bit gradients", where="section 12.5")
def _e5m2(answer: tuple[float, float], grads: torch.Tensor) -> Feedback:
    if not isinstance(answer, tuple | list) or len(answer) != 2:
        return wrong("answer with a tuple (fraction unscaled, fraction scaled by 2**16).")
    want = [float((_round_to_format(grads.double() * s, 5, 2) == 0).double().mean()) for s in (1, 2.0**16)]
    got = [float(a) for a in answer]
    if any(g > 1 for g in got):
        return wrong("give fractions between 0 and 1, not percentages.")
    for name, g, w in zip(("unscaled", "scaled"), got, want, strict=True):
        if abs(g - w) > max(1e-4, 0.02 * w):
            return wrong(f"the {name} fraction is off: round g{'' if name == 'unscaled' else ' * 2**16'} "
                         f"with round_to_format(..., 5, 2) and count the exact zeros.")
    return correct(f"{want[0]:.1%} of the gradients vanish in E5M2 unscaled, {want[1]:.1%} scaled by 2^16: "
                   f"E5M2 has float16's range, so it needs loss scaling just as much.")

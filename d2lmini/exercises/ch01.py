"""Checks for the exercises of chapter 01, tensors and automatic differentiation.

Every expected value is computed here, from PyTorch itself: the shapes by running the operations on
``meta`` tensors (shapes, no data), memory sharing with ``untyped_storage().data_ptr()``, derivatives and
gradients with autograd, the sparse break-even by measuring bytes, the node names by walking the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import Feedback, close, correct, exercise, wrong

# ----------------------------------------------------------------------------------------- 01.1 shapes

#: The seven expressions of exercise 1: (operator, shape of a, shape of b).
SHAPE_CASES: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("+", (5, 1, 4), (3, 1)),
    ("+", (2, 3), (2,)),
    ("+", (64, 1, 28, 28), (1, 10, 1, 1)),
    ("+", (7,), (7, 1)),
    ("@", (10, 3, 4), (4, 5)),
    ("@", (2, 1, 3, 4), (3, 4, 2)),
    ("@", (8, 5), (4, 5)),
)


def result_shape(op: str, shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> tuple[int, ...] | str:
    """What PyTorch makes of ``a + b`` or ``a @ b`` for these shapes: the result's shape, or ``"error"``."""
    a, b = torch.empty(shape_a, device="meta"), torch.empty(shape_b, device="meta")
    try:
        return tuple((a + b if op == "+" else a @ b).shape)
    except RuntimeError:
        return "error"


def _as_shape(value: Any) -> tuple[int, ...] | str | None:
    """A reader's shape answer in one form: a tuple of ints, ``"error"``, or None if it is neither."""
    if isinstance(value, str):
        return "error" if value.strip().lower() == "error" else None
    if isinstance(value, int):  # (5) is 5 in Python: accept it for a 1-D shape
        return (value,)
    try:
        return tuple(int(d) for d in value)
    except (TypeError, ValueError):
        return None


def _list_of(answer: Any, n: int, what: str) -> list[Any] | Feedback:
    if isinstance(answer, str | bytes) or not hasattr(answer, "__len__"):
        return wrong(f"give a list of {n} {what}, one per expression, in order.")
    answer = list(answer)
    if len(answer) != n:
        return wrong(f"give one answer per expression: {n} of them, not {len(answer)}.")
    return answer


@exercise("01.1", title="predict broadcast and matmul shapes", where="sections 1.5 and 1.9")
def _shapes(answer: Any) -> Feedback:
    items = _list_of(answer, len(SHAPE_CASES), "shapes or 'error'")
    if isinstance(items, Feedback):
        return items
    off = []
    for k, ((op, sa, sb), given) in enumerate(zip(SHAPE_CASES, items, strict=True), start=1):
        if _as_shape(given) != result_shape(op, sa, sb):
            off.append(f"{k} ({sa} {op} {sb})")
    if not off:
        return correct("all seven shapes are right: broadcasting pads on the left and stretches 1s; "
                       "matmul broadcasts only the axes in front of the last two.")
    return wrong(f"{len(SHAPE_CASES) - len(off)} of {len(SHAPE_CASES)} right. Look again at "
                 + ", ".join(off) + ": for '+' align the shapes on the right; for '@' the last axis of a "
                 "must equal the second-last of b, and only the axes in front of the matrices broadcast.")


# ------------------------------------------------------------------------------------ 01.2 shared or copied

#: The seven expressions of exercise 2, applied to ``x = torch.arange(12.0).reshape(3, 4)``.
SHARE_CASES: tuple[tuple[str, Callable[[torch.Tensor], torch.Tensor]], ...] = (
    ("x[:, 1:3]", lambda x: x[:, 1:3]),
    ("x.t().reshape(12)", lambda x: x.t().reshape(12)),
    ("x.t().t().view(12)", lambda x: x.t().t().view(12)),
    ("x[x > 5]", lambda x: x[x > 5]),
    ("x[0].unsqueeze(0).expand(5, 4)", lambda x: x[0].unsqueeze(0).expand(5, 4)),
    ("x.t().flatten()", lambda x: x.t().flatten()),
    ("x.transpose(0, 1)[1:]", lambda x: x.transpose(0, 1)[1:]),
)


def shares_memory(make: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Does ``make(x)`` share memory with a fresh ``x = torch.arange(12.0).reshape(3, 4)``?"""
    x = torch.arange(12.0).reshape(3, 4)
    return make(x).untyped_storage().data_ptr() == x.untyped_storage().data_ptr()


@exercise("01.2", title="shared or copied", where="sections 1.3, 1.4 and 1.6")
def _shares(answer: Any) -> Feedback:
    items = _list_of(answer, len(SHARE_CASES), "True/False values")
    if isinstance(items, Feedback):
        return items
    if not all(isinstance(v, bool) for v in items):
        return wrong("write True (shares memory with x) or False (a copy) for each expression.")
    off = [name for (name, make), given in zip(SHARE_CASES, items, strict=True)
           if given != shares_memory(make)]
    if not off:
        return correct("all seven right: views only rewrite shape and strides; advanced indexing, and "
                       "reshape or flatten of a non-contiguous tensor, copy.")
    return wrong(f"{len(SHARE_CASES) - len(off)} of {len(SHARE_CASES)} right; look again at "
                 + ", ".join(f"`{name}`" for name in off)
                 + ". Ask: can the result be described by new shape and strides over x's memory?")


# ------------------------------------------------------------------------------------ 01.3 a derivative

def g(x: torch.Tensor) -> torch.Tensor:
    """The function of exercise 3: exp(-x²) x³."""
    return torch.exp(-x**2) * x**3


@exercise("01.3", title="a derivative by hand", where="section 1.12")
def _derivative(my_g_prime: Callable[[torch.Tensor], torch.Tensor]) -> Feedback:
    xs = torch.linspace(-3, 3, 101, requires_grad=True)
    g(xs).sum().backward()
    mine = my_g_prime(xs.detach().clone())
    if mine is None:
        return wrong("my_g_prime returns None: return a tensor, computed with torch functions from x.")
    mine = torch.as_tensor(mine, dtype=torch.float32)
    if mine.shape != xs.shape:
        return wrong(f"my_g_prime(x) should have x's shape {tuple(xs.shape)}, not {tuple(mine.shape)}.")
    if close(mine, xs.grad, rtol=1e-4, atol=1e-5):
        return correct("your derivative matches autograd at all 101 points.")
    worst = (mine - xs.grad).abs().argmax()
    return wrong(f"differs from autograd by up to {(mine - xs.grad).abs().max():.3g} (worst at "
                 f"x = {xs[worst].item():.2f}). Use the product rule on e^(-x²) · x³, and the chain rule "
                 f"for e^(-x²).")


# ------------------------------------------------------------------------------------ 01.4 accumulation

def accumulated_grad() -> float:
    """``w.grad`` after the loop of exercise 4."""
    w = torch.tensor(1.0, requires_grad=True)
    for k in range(1, 4):
        (k * w**2).backward()
    return w.grad.item()


@exercise("01.4", title="gradients accumulate", where="section 1.16")
def _accumulation(answer: Any) -> Feedback:
    truth = accumulated_grad()
    if close(float(answer), truth, rtol=0, atol=1e-6):
        return correct("every backward() adds its gradient to w.grad; nothing zeroes it in between.")
    if close(float(answer), 2 * 3 * 1.0, rtol=0, atol=1e-6):
        return wrong("that is the gradient of the last call only: backward() adds to w.grad, it does not "
                     "overwrite it.")
    return wrong("not right. Each call adds the derivative of k·w² at w = 1 to w.grad; which values of k "
                 "run, and what do their derivatives add up to?")


# ------------------------------------------------------------------------------------ 01.5 sparse break-even

def _nbytes(t: torch.Tensor) -> int:
    if t.is_sparse:
        t = t.coalesce()
        return t.indices().nbytes + t.values().nbytes
    return t.nbytes


def measured_break_even(dtype: torch.dtype = torch.float64) -> float:
    """The density below which a 2-D COO tensor of ``dtype`` takes fewer bytes than the dense one."""
    m = torch.eye(100, dtype=dtype)
    s = m.to_sparse()
    return (_nbytes(m) / m.numel()) / (_nbytes(s) / s._nnz())


@exercise("01.5", title="sparse break-even for float64", where="section 1.11")
def _break_even(answer: Any) -> Feedback:
    value = float(answer)
    truth = measured_break_even(torch.float64)
    if close(value, truth, rtol=0, atol=2e-3):
        return correct(f"measured: sparse float64 wins below {truth:.1%} non-zeros.")
    if value > 1:
        return wrong("give a fraction between 0 and 1, not a percentage.")
    if close(value, measured_break_even(torch.float32), rtol=0, atol=2e-3):
        return wrong("that is the float32 break-even; with float64 values each entry takes more bytes, "
                     "both in the dense tensor and per non-zero.")
    return wrong("not right. Count the bytes: one dense entry, and one non-zero of the COO tensor (its "
                 "coordinates and its value).")


# ------------------------------------------------------------------------------------ 01.6 a graph by hand

def node_names(out: torch.Tensor) -> set[str]:
    """The set of node names (``type(fn).__name__``) in the graph that ends in ``out``."""
    names, todo = set(), [out.grad_fn]
    while todo:
        fn = todo.pop()
        names.add(type(fn).__name__)
        todo += [child for child, _ in fn.next_functions if child is not None]
    return names


@exercise("01.6", title="a graph by hand", where="section 1.13")
def _graph(answer: Any) -> Feedback:
    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        return wrong("give a set of node names, e.g. {\"AccumulateGrad\", ...}.")
    given = {str(a).strip() for a in answer}
    a = torch.tensor(0.5, requires_grad=True)
    b = torch.tensor(-1.5, requires_grad=True)
    truth = node_names(torch.sigmoid(a * b).log())
    if given == truth:
        return correct("one node per operation, and the leaves end in AccumulateGrad.")
    extra = sorted(given - truth)
    missing = len(truth - given)
    parts = []
    if extra:
        parts.append("not in this graph: " + ", ".join(extra))
    if missing:
        parts.append(f"{missing} node name(s) missing")
    return wrong("; ".join(parts) + ". One node per operation (named like MulBackward0, as "
                 "type(fn).__name__ prints them), plus the node that ends each leaf.")

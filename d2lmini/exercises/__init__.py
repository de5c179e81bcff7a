"""Exercises that check themselves: one API for every chapter.

In a chapter, an exercise cell ends with a check of the reader's answer::

    from d2lmini.exercises import check
    answer = None          # your answer here
    check("03.2", answer)

``check`` prints one line: ``✓`` and why the answer is right, ``✗`` and a hint (what is off, where in the
chapter to look), or "not answered yet" while the answer is still ``None``.  It never raises, so a notebook
with unanswered exercises still runs top to bottom.  Open-ended exercises check what the reader produced
(a trained model's accuracy, a schedule's learning rate at some epoch) and list what a good answer
discusses.

Each chapter's checks live in ``d2lmini/exercises/chNN.py``, registered with :func:`exercise`.  Expected
values are computed by the checker (from the reader's own model, say) or compared through a salted hash
(:func:`digest`), never stored as a literal a reader could read off.  The solutions notebooks
(``solutions/NN_name.ipynb``) call the same ``check`` and end with :func:`report`, which fails unless every
exercise of the chapter was checked and found correct: that is how CI proves the solutions.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import is_smoke

__all__ = ["Feedback", "Verdict", "check", "correct", "digest", "exercise", "exercises_of",
           "matches_digest", "close", "report", "wrong"]

Status = Literal["correct", "wrong", "unanswered", "error"]
_MARK = {"correct": "✓", "wrong": "✗", "unanswered": "…", "error": "✗"}
WIDTH = 79  # printed lines stay within the book's code column


@dataclass(frozen=True)
class Feedback:
    """What a checker returns: right or wrong, and the sentence the reader sees."""

    ok: bool
    message: str


def correct(message: str = "correct.") -> Feedback:
    """A right answer, with a sentence saying why (or what it shows)."""
    return Feedback(True, message)


def wrong(hint: str) -> Feedback:
    """A wrong answer, with a hint: what is off and where in the chapter to look."""
    return Feedback(False, hint)


@dataclass
class Exercise:
    """One registered exercise: its id (``"03.2"``), checker, where to look, and for open-ended ones what
    a good answer discusses."""

    id: str
    checker: Callable[..., Feedback]
    title: str = ""
    where: str = ""
    discuss: tuple[str, ...] = ()


@dataclass
class Verdict:
    """The result of :func:`check`: ``bool(verdict)`` is True only for a correct answer."""

    exercise: str
    status: Status
    message: str
    discuss: tuple[str, ...] = field(default=())

    def __bool__(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        """The verdict as printed: wrapped to the book's 79 columns."""
        text = textwrap.fill(f"{_MARK[self.status]} Exercise {self.exercise}: {self.message}", WIDTH,
                             subsequent_indent="  ", break_on_hyphens=False)
        if self.discuss and self.status in ("correct", "unanswered"):
            text += "\n" + textwrap.fill("A good answer discusses: " + "; ".join(self.discuss) + ".", WIDTH,
                                         initial_indent="  ", subsequent_indent="    ",
                                         break_on_hyphens=False)
        return text

    def _ipython_display_(self) -> None:
        """Nothing: :func:`check` has printed the message already (no second copy under the cell)."""


_REGISTRY: dict[str, Exercise] = {}
_RESULTS: dict[str, Verdict] = {}
_ID = re.compile(r"^(\d{2})\.(\d+)$")


def exercise(exercise_id: str, title: str = "", where: str = "",
             discuss: Sequence[str] = ()) -> Callable[[Callable[..., Feedback]], Callable[..., Feedback]]:
    """Register a checker for ``exercise_id`` (``"NN.k"``: chapter NN, exercise k)::

        @exercise("03.2", title="the loss of a constant model", where="section 3.2")
        def _(answer: float) -> Feedback:
            ...
    """
    if not _ID.match(exercise_id):
        raise ValueError(f"exercise id {exercise_id!r} must look like '03.2' (chapter.exercise)")

    def register(fn: Callable[..., Feedback]) -> Callable[..., Feedback]:
        _REGISTRY[exercise_id] = Exercise(exercise_id, fn, title, where, tuple(discuss))
        return fn

    return register


def _load_chapter(chapter: str) -> None:
    try:
        importlib.import_module(f"{__name__}.ch{chapter}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.ch{chapter}":
            raise


def exercises_of(chapter: int | str) -> list[str]:
    """The ids of chapter ``chapter``'s exercises, in order: ``exercises_of(3) == ['03.1', '03.2', ...]``."""
    chapter = f"{int(chapter):02d}"
    _load_chapter(chapter)
    ids = [k for k in _REGISTRY if k.startswith(chapter + ".")]
    return sorted(ids, key=lambda k: int(k.split(".")[1]))


def check(exercise_id: str, answer: Any = None, /, **context: Any) -> Verdict:
    """Check the reader's ``answer`` to exercise ``exercise_id``, print the verdict, and return it.

    ``answer=None`` means "not answered yet", and so does an answer function that still raises
    ``NotImplementedError`` (an exercise's "your code here" stub).  ``context`` passes what a checker
    needs besides the answer (e.g. ``check("06.3", net, loaders=loaders)``).  A checker that fails on a
    malformed answer gives a "could not check" message instead of an exception, so the notebook keeps
    running.
    """
    m = _ID.match(exercise_id)
    if not m:
        raise ValueError(f"exercise id {exercise_id!r} must look like '03.2' (chapter.exercise)")
    _load_chapter(m.group(1))
    ex = _REGISTRY.get(exercise_id)
    if ex is None:
        known = ", ".join(exercises_of(m.group(1))) or "none"
        raise KeyError(f"no exercise {exercise_id}; chapter {m.group(1)} has: {known}")
    if answer is None:
        verdict = Verdict(exercise_id, "unanswered",
                          "not answered yet: replace None with your answer and run the cell again.",
                          ex.discuss)
    else:
        try:
            fb = ex.checker(answer, **context)
            status: Status = "correct" if fb.ok else "wrong"
            message = fb.message
            if not fb.ok and ex.where and ex.where not in message:
                message += f" (See {ex.where}.)"
            verdict = Verdict(exercise_id, status, message, ex.discuss)
        except NotImplementedError:
            verdict = Verdict(exercise_id, "unanswered",
                              "not answered yet: your function still raises NotImplementedError.",
                              ex.discuss)
        except Exception as e:  # noqa: BLE001 - a malformed answer must not stop the notebook
            verdict = Verdict(exercise_id, "error",
                              f"could not check this answer ({type(e).__name__}: {e}). "
                              f"Check its type and shape against the exercise text.", ex.discuss)
    _RESULTS[exercise_id] = verdict
    print(verdict)
    return verdict


def report(chapter: int | str) -> dict[str, Status]:
    """Print how each exercise of ``chapter`` fared in this session, and raise ``AssertionError`` unless
    every one was checked and correct.  The solutions notebooks end with it, so CI fails when a solution
    stops passing its check (or an exercise has no solution)."""
    ids = exercises_of(chapter)
    if not ids:
        raise AssertionError(f"chapter {chapter} has no registered exercises")
    status = {i: (_RESULTS[i].status if i in _RESULTS else "not checked") for i in ids}
    n_ok = sum(s == "correct" for s in status.values())
    print(f"Chapter {int(chapter):02d}: {n_ok} of {len(ids)} exercises checked correct"
          + (" (smoke mode: thresholds for trained models are relaxed)" if is_smoke() else ""))
    bad = {i: s for i, s in status.items() if s != "correct"}
    if bad:
        raise AssertionError("not correct: " + ", ".join(f"{i} ({s})" for i, s in bad.items()))
    return status  # type: ignore[return-value]


# ------------------------------------------------------------------------------------ helpers for checkers

def _canonical(value: Any) -> str:
    """A stable text form: numbers without trailing zeros, strings stripped and lower-cased, sequences
    element by element, dict items sorted."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(round(value, 10))
    if isinstance(value, str):
        return " ".join(value.strip().lower().split())
    if isinstance(value, dict):
        return "{" + ",".join(f"{_canonical(k)}:{_canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, set | frozenset):
        return "{" + ",".join(sorted(_canonical(v) for v in value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return repr(value)


def digest(exercise_id: str, value: Any) -> str:
    """The salted SHA-256 (first 16 hex digits) of ``value``'s canonical form, for a checker to compare
    against without storing the answer: ``python -m d2lmini.exercises digest 03.2 42`` prints it."""
    return hashlib.sha256(f"d2lmini:{exercise_id}:{_canonical(value)}".encode()).hexdigest()[:16]


def matches_digest(exercise_id: str, value: Any, expected_digest: str) -> bool:
    """True when ``digest(exercise_id, value) == expected_digest``."""
    return digest(exercise_id, value) == expected_digest


def close(value: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """True when the number or tensor ``value`` equals ``expected`` within the tolerances (shape too)."""
    import torch

    if isinstance(value, torch.Tensor) or isinstance(expected, torch.Tensor):
        v, e = torch.as_tensor(value, dtype=torch.float64), torch.as_tensor(expected, dtype=torch.float64)
        return v.shape == e.shape and bool(torch.allclose(v, e, rtol=rtol, atol=atol))
    v, e = float(value), float(expected)
    return math.isclose(v, e, rel_tol=rtol, abs_tol=atol)

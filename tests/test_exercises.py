"""The one checking API of the book's exercises (d2lmini.exercises)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from d2lmini import exercises as ex
from d2lmini.exercises import check, close, correct, digest, exercise, matches_digest, report, wrong

SECRET = digest("99.1", 42)


@exercise("99.1", title="a number", where="section 99.1")
def _number(answer: int) -> ex.Feedback:
    if matches_digest("99.1", answer, SECRET):
        return correct("42 is the answer.")
    return wrong("too small." if answer < 42 else "too large.")


@exercise("99.2", discuss=["why the gradient is 2x"])
def _tensor(answer: torch.Tensor, x: torch.Tensor) -> ex.Feedback:
    return correct() if close(answer, 2 * x, rtol=1e-3) else wrong("compare with 2 * x")


@exercise("99.3")
def _function(fn) -> ex.Feedback:
    return correct() if fn(2) == 4 else wrong("fn(2) should be 4")



def test_right_answer_says_so(capsys):
    v = check("99.1", 42)
    assert v and v.status == "correct"
    assert "✓ Exercise 99.1: 42 is the answer." in capsys.readouterr().out


def test_wrong_answer_gets_its_hint_and_where_to_look(capsys):
    v = check("99.1", 7)
    assert not v and v.status == "wrong"
    out = capsys.readouterr().out
    assert "✗ Exercise 99.1: too small. (See section 99.1.)" in out


def test_none_is_not_answered_and_never_raises(capsys):
    v = check("99.2", None)
    assert v.status == "unanswered" and not v
    out = capsys.readouterr().out
    assert "not answered yet" in out and "A good answer discusses: why the gradient is 2x" in out


def test_a_stub_that_raises_not_implemented_is_not_answered():
    def stub(x):
        raise NotImplementedError("your code here")

    assert check("99.3", stub).status == "unanswered"
    assert check("99.3", lambda x: x * x).status == "correct"


def test_a_malformed_answer_gives_a_message_not_an_exception(capsys):
    v = check("99.2", "not a tensor", x=torch.ones(3))
    assert v.status == "error" and "could not check" in capsys.readouterr().out


def test_tolerance_edges():
    x = torch.tensor([1.0, 2.0])
    assert check("99.2", 2 * x * (1 + 0.9e-3), x=x)
    assert not check("99.2", 2 * x * (1 + 1.1e-3), x=x)
    assert not check("99.2", torch.tensor([2.0, 4.0, 0.0]), x=x)  # wrong shape
    assert close(1.0, 1.0 + 1e-7) and not close(1.0, 1.001)


def test_the_answer_is_not_stored_in_plain_text():
    assert SECRET != "42" and len(SECRET) == 16
    assert digest("99.1", 42) == digest("99.1", 42.0) != digest("99.2", 42)
    assert digest("99.1", " Adam ") == digest("99.1", "adam")
    assert digest("99.1", {1.0, 0.1}) == digest("99.1", {0.1, 1.0})


def test_report_fails_until_every_exercise_is_correct(capsys):
    check("99.1", 42)
    with pytest.raises(AssertionError, match=r"99.2 \(not checked\), 99.3 \(not checked\)"):
        report(99)
    check("99.2", torch.ones(2) * 2, x=torch.ones(2))
    check("99.3", lambda v: v + 2)
    assert report("99") == {"99.1": "correct", "99.2": "correct", "99.3": "correct"}
    assert "3 of 3 exercises checked correct" in capsys.readouterr().out


def test_unknown_ids_are_named():
    with pytest.raises(KeyError, match="chapter 99 has: 99.1, 99.2, 99.3"):
        check("99.9", 1)
    with pytest.raises(ValueError, match="must look like"):
        check("3.2", 1)
    with pytest.raises(ValueError):
        exercise("99")


def test_verdict_does_not_display_twice():
    v = check("99.1", 42)
    assert v._ipython_display_() is None


def test_command_line_prints_the_digest():
    out = subprocess.run([sys.executable, "-m", "d2lmini.exercises", "digest", "99.1", "42"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == SECRET

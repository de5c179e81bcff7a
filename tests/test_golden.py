"""The same seeds give the same printed losses and accuracies as the histories recorded in
tests/golden/histories.json (by tests/golden/record.py, before the training loop was restructured).

On the machine that recorded them (same torch build, CPU kernels and thread count) the numbers must be
equal bit for bit; elsewhere floating-point kernels may differ in the last digits, so they must agree to
1e-4 (the 4 decimals PrintMetrics prints).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "golden"
GOLDEN = json.loads((HERE / "histories.json").read_text(encoding="utf-8"))
_spec = importlib.util.spec_from_file_location("golden_record", HERE / "record.py")
record = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(record)


@pytest.fixture(autouse=True)
def _reader_mode(monkeypatch):
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    monkeypatch.delenv("D2LMINI_LANG", raising=False)


@pytest.mark.parametrize("case", list(record.CASES))
def test_same_seeds_same_histories(case):
    import d2lmini as d2l

    try:
        got = record.CASES[case]()
    except d2l.DatasetUnavailableError as e:
        pytest.skip(f"Fashion-MNIST is not available: {e}")
    want = GOLDEN["cases"][case]
    same_machine = record.machine() == GOLDEN["machine"]
    for key in ("history", "step_loss", "printed"):
        if key not in want:
            continue
        if same_machine:
            assert got[key] == want[key], key
        elif key == "history":
            for name, values in want[key].items():
                assert got[key][name] == pytest.approx(values, rel=1e-4, abs=1e-4), name
        elif key == "step_loss":  # the printed lines hold the same numbers, rounded: covered by history
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-4)

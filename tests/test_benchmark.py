"""Fast checks of benchmarks/data_pipeline.py on tiny sizes (the real run takes minutes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("data_pipeline", ROOT / "benchmarks" / "data_pipeline.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["data_pipeline"] = bench  # dataclasses look the module up by name
_spec.loader.exec_module(bench)


def test_loaders_serve_the_same_images():
    """Both paths give float batches [B, 1, 28, 28] in [0, 1] holding exactly the same images."""
    loaders = bench.loaders_to_compare(100, 32, workers=[0])
    assert list(loaders)[0].startswith("tensor path")
    seen = {}
    for name, loader in loaders.items():
        batches = list(loader)
        assert [len(xb) for xb, _ in batches] == [32, 32, 32, 4]
        xb = batches[0][0]
        assert xb.shape == (32, 1, 28, 28) and xb.dtype == torch.float32
        assert 0 <= xb.min() and xb.max() <= 1
        X = torch.cat([xb for xb, _ in batches])
        seen[name] = X.flatten(1).sum(1).sort().values  # order differs (shuffled); the set must not
    a, b = seen.values()
    torch.testing.assert_close(a, b)


class Slow:
    """Batches that each take ``delay`` seconds to produce: a known time for the timers to measure."""

    def __init__(self, loader, delay=0.02):
        self.loader, self.delay = loader, delay

    def __iter__(self):
        import time

        for batch in self.loader:
            time.sleep(self.delay)
            yield batch


def test_time_pass_counts_images_and_measures_the_pass():
    secs, seen = bench.time_pass(bench.tensor_loader(300, 64))
    assert seen == 300 and 0 < secs < 5
    slow_secs, seen = bench.time_pass(Slow(bench.tensor_loader(300, 64)))  # 5 batches of 0.02 s
    assert seen == 300 and slow_secs >= 0.1 and slow_secs > secs


def test_bench_data_pass_rows_and_ratios():
    rows = bench.bench_data_pass(200, 50, workers=[0])
    assert [r.name for r in rows] == ["tensor path (d2l.TensorLoader)", "DataLoader(ToTensor), 0 workers"]
    assert rows[0].ratio is None
    assert rows[1].ratio == pytest.approx(rows[1].seconds / rows[0].seconds)
    assert bench.speedup_vs(rows, 0) == rows[1].ratio
    assert bench.speedup_vs(rows, 2) is None


def test_bare_loop_trains_the_model():
    """The bare loop really takes optimizer steps (the weights change) and both loops run on the same data."""
    model = bench.make_model(0)
    before = [p.detach().clone() for p in model.parameters()]
    secs = bench.train_epoch_bare(model, Slow(bench.tensor_loader(128, 64), delay=0.05))
    assert secs >= 2 * 0.05  # the two batches' delays are inside the measured time
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(bench.make_model(0).parameters(),
                                                   bench.make_model(0).parameters(), strict=True))


def test_fit_and_bare_loop_reach_the_same_weights():
    """Same model, same batches: Learner.fit and the bare loop do the same arithmetic."""
    loader = bench.tensor_loader(128, 64)
    m1, m2 = bench.make_model(0), bench.make_model(0)
    loader.set_epoch(0)
    bench.train_epoch_bare(m1, loader)
    loader.set_epoch(0)
    bench.train_epoch_fit(m2, loader)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_fit_overhead_rows():
    rows = bench.bench_fit_overhead(64, 32, repeats=2)
    assert [r.name for r in rows] == ["bare hand-written loop", "d2l.Learner.fit"]
    assert bench.overhead_pct(rows) == pytest.approx((rows[1].seconds / rows[0].seconds - 1) * 100)


def test_overhead_pct_and_targets_table():
    R = bench.Row
    rows = [R("s", "bare", 2.0), R("s", "fit", 2.06, 1.03)]
    assert bench.overhead_pct(rows) == pytest.approx(3.0)
    met = bench.targets_table(45.0, 3.0)
    assert "45.0×" in met and "+3.0%" in met and "**no**" not in met
    missed = bench.targets_table(12.0, 7.5)
    assert missed.count("**no**") == 2
    assert "not measured" in bench.targets_table(None, 1.0)


def test_results_table_is_markdown():
    R = bench.Row
    rows = [R("1. pass", "tensor", 0.1), R("1. pass", "dl", 5.0, 50.0), R("3. fit", "bare", 2.0),
            R("3. fit", "fit", 2.02, 1.01)]
    lines = bench.results_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line.startswith("|") and line.endswith("|") and line.count("|") == 5 for line in lines)
    assert "1 (reference)" in lines[2] and "50.0×" in lines[3] and "1.010×" in lines[5]
    assert lines[3].startswith("|  |")  # the section is named once


def test_main_writes_the_report(tmp_path):
    out = tmp_path / "bench.md"
    text = bench.main(["--n", "128", "--train-n", "64", "--batch-size", "32", "--workers", "0",
                       "--repeats", "1", "--out", str(out)])
    assert out.read_text(encoding="utf-8") == text
    assert "| measurement |" in text and "| target |" in text and "Learner.fit overhead" in text
    assert "not measured" in text  # no 2-worker run was asked for


def test_report_names_the_gpu_when_sections_ran_on_one(monkeypatch):
    monkeypatch.setattr(bench.d2l, "device_info", lambda device: f"cuda: Fake GPU ({device.type})")
    assert "Fake GPU" not in bench.machine_line()
    assert ", cuda: Fake GPU (cuda), " in bench.machine_line("cuda")
    R = bench.Row
    text = bench.report([R("3. fit", "bare", 2.0), R("3. fit", "fit", 2.0, 1.0)], None, 0.0, "cuda")
    assert text.startswith("Measured on: ") and "Fake GPU" in text.splitlines()[0]


def test_sections_say_where_they_trained():
    rows = bench.bench_fit_overhead(64, 32, repeats=1)
    assert rows[0].section == "3. fit-loop overhead (ModernLeNet, 64 images, median of 1)"


def test_on_a_gpu_the_tensor_path_trains_from_data_put_there_once(monkeypatch):
    """``--device cuda``: section 2's tensor path holds its data on the device, as Learner.fit does
    ('meta' stands in for a GPU here: shapes and dtypes, no memory; the DataLoader batches are copied)."""
    moved = []
    real_to = bench.d2l.TensorLoader.to
    monkeypatch.setattr(bench.d2l.TensorLoader, "to",
                        lambda self, d: moved.append(str(d)) or real_to(self, d))
    rows = bench.bench_train_epoch(64, 32, workers=[0], device="meta")
    assert moved == ["meta"] and [r.name for r in rows][0] == "tensor path (d2l.TensorLoader)"
    assert all(r.section == "2. one ModernLeNet training epoch (64 images) on meta" for r in rows)
    assert bench.bench_train_epoch(64, 32, workers=[], device="cpu")[0].section.endswith("(64 images)")
    assert moved == ["meta"]  # on the CPU nothing is moved

#!/usr/bin/env python3
"""Benchmark the book's data path and training loop, side by side in one run.

    python benchmarks/data_pipeline.py                  # full sizes (60,000 images), a few minutes
    python benchmarks/data_pipeline.py --quick          # small sizes, under a minute
    python benchmarks/data_pipeline.py --out results.md # also write the Markdown to a file
    python benchmarks/data_pipeline.py --device cuda    # sections 2 and 3 on a GPU (named in the report)

It measures

1. one pass over the Fashion-MNIST training images: the book's tensor path (``d2l.TensorLoader``)
   against the textbook path ``DataLoader(FashionMNIST(transform=ToTensor()))`` with 0 and 2 workers;
2. one training epoch of ``d2l.models.ModernLeNet`` fed by each of these loaders;
3. the overhead of ``d2l.Learner.fit`` (one epoch, no callbacks, no validation) against a bare
   hand-written loop (forward, loss, backward, step, zero_grad) on the same batches and the same model.

and prints Markdown tables (times, ratios, and whether the targets are met) ready to paste into a README.
Run it on a quiet machine: other processes on the same cores inflate every number.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

import d2lmini as d2l

Batches = Iterable[tuple[Tensor, Tensor]]

#: Targets from the issue that asked for this benchmark.
TARGET_SPEEDUP = 30.0  # tensor path at least 30x faster than DataLoader(ToTensor) with 2 workers
TARGET_OVERHEAD_PCT = 5.0  # Learner.fit at most 5% slower than a bare loop


@dataclass
class Row:
    """One line of the results table: what was measured, its time, and its ratio to the reference."""

    section: str
    name: str
    seconds: float
    ratio: float | None = None  # seconds / reference seconds (None for the reference itself)


# ---------------------------------------------------------------------------------------------- loaders
def tensor_loader(n: int, batch_size: int = 256, seed: int = 0) -> d2l.TensorLoader:
    """The book's path: the first ``n`` training images as ``uint8`` tensors, served in shuffled batches."""
    X, y = d2l.fashion_mnist_tensors(train=True)
    return d2l.TensorLoader(X[:n], y[:n], batch_size, shuffle=True, seed=seed)


def dataloader_totensor(n: int, batch_size: int = 256, num_workers: int = 0,
                        seed: int = 0) -> torch.utils.data.DataLoader:
    """The textbook path: ``DataLoader(FashionMNIST(transform=ToTensor()))`` over the first ``n`` images
    (what ``d2l.torchvision_loader`` builds; every image goes through PIL and back, one at a time)."""
    from torchvision.transforms import ToTensor

    ds = d2l.load_fashion_mnist(train=True, transform=ToTensor())
    if n < len(ds):
        ds = torch.utils.data.Subset(ds, range(n))
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                                       generator=torch.Generator().manual_seed(seed))


def loaders_to_compare(n: int, batch_size: int, workers: Sequence[int], seed: int = 0) -> dict[str, Batches]:
    """``{"tensor path": ..., "DataLoader(ToTensor), 0 workers": ..., ...}``, the tensor path first."""
    out: dict[str, Batches] = {"tensor path (d2l.TensorLoader)": tensor_loader(n, batch_size, seed)}
    for w in workers:
        out[f"DataLoader(ToTensor), {w} worker{'s' if w != 1 else ''}"] = dataloader_totensor(
            n, batch_size, w, seed)
    return out


# ---------------------------------------------------------------------------------------------- timing
def time_pass(loader: Batches) -> tuple[float, int]:
    """Seconds for one full pass over ``loader`` (worker start-up included), and the images seen."""
    start = time.perf_counter()
    seen = 0
    for xb, _ in loader:
        seen += len(xb)
    return time.perf_counter() - start, seen


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch_bare(model: nn.Module, loader: Batches, lr: float = 0.1, device: str = "cpu") -> float:
    """A bare hand-written training epoch (the five steps, nothing else); returns its seconds.  On a
    GPU, batches not already there are copied to it, and the time includes waiting for the GPU."""
    device = torch.device(device)
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    _sync(device)
    start = time.perf_counter()
    for xb, yb in loader:
        if device.type != "cpu":
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        loss = loss_fn(model(xb), yb)   # 1. forward, 2. loss
        loss.backward()                 # 3. backward
        opt.step()                      # 4. step
        opt.zero_grad()                 # 5. zero the gradients
    _sync(device)
    return time.perf_counter() - start


def train_epoch_fit(model: nn.Module, loader: Batches, lr: float = 0.1, device: str = "cpu") -> float:
    """One epoch of ``d2l.Learner.fit`` (no callbacks, no validation data); returns its seconds."""
    device = torch.device(device)
    learn = d2l.Learner(model, loader, lr=lr, device=device)
    _sync(device)
    start = time.perf_counter()
    learn.fit(1)
    _sync(device)
    return time.perf_counter() - start


def make_model(seed: int = 0) -> nn.Module:
    """A freshly initialised ``ModernLeNet`` (the same weights for the same seed)."""
    torch.manual_seed(seed)
    return d2l.models.ModernLeNet()


def bench_data_pass(n: int, batch_size: int, workers: Sequence[int], seed: int = 0) -> list[Row]:
    """Section 1: one pass over ``n`` images with each loader."""
    rows = []
    for name, loader in loaders_to_compare(n, batch_size, workers, seed).items():
        secs, seen = time_pass(loader)
        if seen != n:
            raise RuntimeError(f"{name} served {seen} images, expected {n}")
        rows.append(Row(f"1. one pass over {n:,} training images", name, secs))
    return _with_ratios(rows)


def bench_train_epoch(n: int, batch_size: int, workers: Sequence[int], seed: int = 0,
                      device: str = "cpu") -> list[Row]:
    """Section 2: one ModernLeNet training epoch over ``n`` images fed by each loader (on ``device``)."""
    rows = []
    where = "" if torch.device(device).type == "cpu" else f" on {device}"
    for name, loader in loaders_to_compare(n, batch_size, workers, seed).items():
        if isinstance(loader, d2l.TensorLoader) and torch.device(device).type != "cpu":
            loader.to(device)  # the data set on the GPU once, as Learner.fit puts it there
        secs = train_epoch_bare(make_model(seed), loader, device=device)
        rows.append(Row(f"2. one ModernLeNet training epoch ({n:,} images){where}", name, secs))
    return _with_ratios(rows)


def bench_fit_overhead(n: int, batch_size: int, repeats: int = 3, seed: int = 0,
                       device: str = "cpu") -> list[Row]:
    """Section 3: ``Learner.fit`` against a bare loop, same model weights and the same batches.

    The two alternate (bare, fit, fit, bare, ...) so that a slow patch of the machine hits both, and each
    is reported as the median of ``repeats`` epochs.
    """
    loader = tensor_loader(n, batch_size, seed)
    if torch.device(device).type != "cpu":
        loader.to(device)  # what Learner.fit does on a GPU; the bare loop gets the same batches
    model0 = make_model(seed)
    runs: dict[str, list[float]] = {"bare": [], "fit": []}
    fns: dict[str, Callable[..., float]] = {"bare": train_epoch_bare, "fit": train_epoch_fit}
    for r in range(repeats):
        for kind in ("bare", "fit") if r % 2 == 0 else ("fit", "bare"):
            loader.set_epoch(0)  # the same shuffled batches every time
            runs[kind].append(fns[kind](copy.deepcopy(model0), loader, device=device))
    where = "" if torch.device(device).type == "cpu" else f", on {device}"
    section = f"3. fit-loop overhead (ModernLeNet, {n:,} images, median of {repeats}{where})"
    return _with_ratios([
        Row(section, "bare hand-written loop", statistics.median(runs["bare"])),
        Row(section, "d2l.Learner.fit", statistics.median(runs["fit"])),
    ])


def _with_ratios(rows: list[Row]) -> list[Row]:
    """Give every row after the first its time relative to the first (the reference)."""
    ref = rows[0].seconds
    return [rows[0]] + [Row(r.section, r.name, r.seconds, r.seconds / ref) for r in rows[1:]]


# ---------------------------------------------------------------------------------------------- report
def overhead_pct(rows: list[Row]) -> float:
    """Percent by which ``Learner.fit`` is slower than the bare loop (negative: faster)."""
    return (rows[1].seconds / rows[0].seconds - 1) * 100


def speedup_vs(rows: list[Row], workers: int) -> float | None:
    """How many times faster the tensor path is than ``DataLoader(ToTensor)`` with ``workers`` workers."""
    for r in rows:
        if r.name.startswith(f"DataLoader(ToTensor), {workers} worker"):
            return r.ratio
    return None


def targets_table(speedup: float | None, overhead: float) -> str:
    """A Markdown table: each target, the measured value, and whether it is met."""
    lines = ["| target | measured | met? |", "|---|---:|:---:|"]
    if speedup is None:
        lines.append(f"| data pass ≥ {TARGET_SPEEDUP:.0f}× faster than DataLoader(ToTensor), 2 workers "
                     "| not measured (no 2-worker run) | – |")
    else:
        lines.append(f"| data pass ≥ {TARGET_SPEEDUP:.0f}× faster than DataLoader(ToTensor), 2 workers "
                     f"| {speedup:.1f}× | {'yes' if speedup >= TARGET_SPEEDUP else '**no**'} |")
    lines.append(f"| Learner.fit overhead < {TARGET_OVERHEAD_PCT:.0f}% over a bare loop "
                 f"| {overhead:+.1f}% | {'yes' if overhead < TARGET_OVERHEAD_PCT else '**no**'} |")
    return "\n".join(lines)


def results_table(rows: list[Row]) -> str:
    """All measurements as one Markdown table; the ratio column is relative to each section's first row."""
    lines = ["| measurement | loader / loop | seconds | ratio to first row |", "|---|---|---:|---:|"]
    for i, r in enumerate(rows):
        section = r.section if i == 0 or rows[i - 1].section != r.section else ""
        if r.ratio is None:
            ratio = "1 (reference)"
        else:
            ratio = f"{r.ratio:.1f}×" if r.ratio >= 10 else f"{r.ratio:.3f}×"
        lines.append(f"| {section} | {r.name} | {r.seconds:.3f} | {ratio} |")
    return "\n".join(lines)


def machine_line(device: str = "cpu") -> str:
    """What the numbers were measured on (and the GPU, when sections 2 and 3 ran on one)."""
    threads = torch.get_num_threads()
    gpu = "" if torch.device(device).type == "cpu" else f", {d2l.device_info(torch.device(device))}"
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} with "
            f"{threads} thread{'s' if threads != 1 else ''}, Python {platform.python_version()}{gpu}, "
            f"{time.strftime('%Y-%m-%d')}")


def report(rows: list[Row], speedup: float | None, overhead: float, device: str = "cpu") -> str:
    """The whole Markdown report: machine, results, targets."""
    return (f"Measured on: {machine_line(device)}\n\n{results_table(rows)}\n\n"
            f"{targets_table(speedup, overhead)}\n")


def main(argv: Sequence[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (6,000 / 3,000 images, 1 repeat)")
    ap.add_argument("--n", type=int, help="images in the data pass (default 60,000; --quick: 6,000)")
    ap.add_argument("--train-n", type=int, help="images per training epoch (default 60,000; --quick: 3,000)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    ap.add_argument("--repeats", type=int,
                    help="epochs per loop in the fit-overhead test (default 3; --quick 1)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="where sections 2 and 3 train (e.g. cuda)")
    ap.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    args = ap.parse_args(argv)
    n = args.n or (6000 if args.quick else 60000)
    train_n = args.train_n or (3000 if args.quick else 60000)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"Measured on: {machine_line(args.device)}", file=sys.stderr)
    data_rows = bench_data_pass(n, args.batch_size, args.workers, args.seed)
    print("1/3 data pass done", file=sys.stderr)
    train_rows = bench_train_epoch(train_n, args.batch_size, args.workers, args.seed, args.device)
    print("2/3 training epochs done", file=sys.stderr)
    fit_rows = bench_fit_overhead(train_n, args.batch_size, repeats, args.seed, args.device)
    print("3/3 fit overhead done\n", file=sys.stderr)
    text = report(data_rows + train_rows + fit_rows, speedup_vs(data_rows, 2), overhead_pct(fit_rows),
                  args.device)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()

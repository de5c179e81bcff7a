#!/usr/bin/env python3
"""Execute chapters top to bottom (restart kernel, run all) and save them with their outputs.

    python tools/execute.py notebooks/03_training_loops.ipynb     # reader mode, written in place
    python tools/execute.py --smoke notebooks/*.ipynb             # smoke mode, outputs NOT saved

Each notebook runs in a fresh process; its wall time and the kernel's peak memory (max RSS) are printed
and, in reader mode, recorded in notebooks/run_log.json (the numbers the README's chapter table quotes).
Metadata is cleaned (no per-cell timings, a plain python3 kernelspec) so diffs show content only, and
live-widget outputs are dropped: a saved widget view is an empty box without its kernel, so the committed
notebook keeps what a reader with no kernel can use (each explorer's replay, its static figures).
Peak memory is read with the Unix-only ``resource`` module; on Windows it is not recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "notebooks" / "run_log.json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

try:
    import resource
except ImportError:  # Windows: no getrusage
    resource = None


def children_peak_mb() -> float | None:
    """The largest resident size of any finished child process so far, in MB (None on Windows)."""
    if resource is None:
        return None
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def clean(nb) -> None:
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)


def run_one(path: Path, smoke: bool, timeout: int, report: Path | None = None) -> None:
    """Child process: execute one notebook, write it back unless smoke, and write the kernel's peak
    memory (its process tree's largest resident size) to ``report``."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    if report is not None:
        report.write_text(json.dumps({"peak_rss_mb": children_peak_mb()}))
    if not smoke:
        clean(nb)
        nbformat.write(nb, path)


def log_key(nb: Path) -> str:
    """``run_log.json``'s key: the file name for a chapter, the path from the repository otherwise."""
    nb = nb.resolve()
    return nb.name if nb.parent == LOG.parent else nb.relative_to(ROOT).as_posix()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--smoke", action="store_true", help="run with D2LMINI_SMOKE=1 and do not save outputs")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_report", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        run_one(args.notebooks[0].resolve(), args.smoke, args.timeout, args._report)
        return 0
    env = dict(os.environ)
    if args.smoke:
        env["D2LMINI_SMOKE"] = "1"
    else:
        env.pop("D2LMINI_SMOKE", None)
    failed = 0
    for nb in args.notebooks:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "peak.json"
            cmd = [sys.executable, __file__, "--_child", "--timeout", str(args.timeout),
                   "--_report", str(report), str(nb)]
            cmd += ["--smoke"] if args.smoke else []
            rc = subprocess.call(cmd, env=env)
            peak_mb = json.loads(report.read_text())["peak_rss_mb"] if report.exists() else None
        wall = time.perf_counter() - start
        mode = "smoke" if args.smoke else "reader"
        peak = ("peak RSS not measured" if peak_mb is None
                else f"kernel peak RSS {peak_mb:.0f} MB")
        print(f"{nb.name}: {mode} mode, {'ok' if rc == 0 else 'FAILED'}, {wall:.1f} s, {peak}",
              flush=True)
        failed += rc != 0
        if rc == 0 and not args.smoke:
            log = json.loads(LOG.read_text()) if LOG.exists() else {}  # re-read: runs may overlap
            log[log_key(nb)] = {"seconds": round(wall, 1),
                                "peak_rss_mb": None if peak_mb is None else round(peak_mb),
                                "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
            LOG.write_text(json.dumps(dict(sorted(log.items())), indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

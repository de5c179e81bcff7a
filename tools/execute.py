#!/usr/bin/env python3
"""Execute chapters top to bottom (restart kernel, run all) and save them with their outputs.

    python tools/execute.py notebooks/03_training_loops.ipynb     # reader mode, written in place
    python tools/execute.py --smoke notebooks/*.ipynb             # smoke mode, outputs NOT saved

Each notebook runs in a fresh process; its wall time and the kernel's peak memory (max RSS) are printed
and, in reader mode, recorded in notebooks/run_log.json (the numbers the README's chapter table quotes).
Metadata is cleaned (no per-cell timings, a plain python3 kernelspec) so diffs show content only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "notebooks" / "run_log.json"


def clean(nb) -> None:
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        **({"widgets": nb.metadata["widgets"]} if "widgets" in nb.metadata else {}),
    }
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)


def run_one(path: Path, smoke: bool, timeout: int) -> None:
    """Child process: execute one notebook, write it back unless smoke."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    if not smoke:
        clean(nb)
        nbformat.write(nb, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--smoke", action="store_true", help="run with D2LMINI_SMOKE=1 and do not save outputs")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        run_one(args.notebooks[0].resolve(), args.smoke, args.timeout)
        return 0
    env = dict(os.environ)
    if args.smoke:
        env["D2LMINI_SMOKE"] = "1"
    else:
        env.pop("D2LMINI_SMOKE", None)
    failed = 0
    for nb in args.notebooks:
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        cmd = [sys.executable, __file__, "--_child", "--timeout", str(args.timeout), str(nb)]
        cmd += ["--smoke"] if args.smoke else []
        rc = subprocess.call(cmd, env=env)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        mode = "smoke" if args.smoke else "reader"
        note = "" if peak_mb > before / 1024 else " (peak not above an earlier notebook's; run alone)"
        print(f"{nb.name}: {mode} mode, {'ok' if rc == 0 else 'FAILED'}, {wall:.1f} s, "
              f"kernel peak RSS {peak_mb:.0f} MB{note}", flush=True)
        failed += rc != 0
        if rc == 0 and not args.smoke:
            log = json.loads(LOG.read_text()) if LOG.exists() else {}  # re-read: runs may overlap
            log[nb.name] = {"seconds": round(wall, 1), "peak_rss_mb": round(peak_mb),
                            "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
            LOG.write_text(json.dumps(dict(sorted(log.items())), indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

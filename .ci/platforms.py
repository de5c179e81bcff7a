#!/usr/bin/env python3
"""Check that the pinned install (constraints.txt + pyproject's dependencies) resolves on Linux, macOS
and Windows, from wheels only, without installing anything.

    python .ci/platforms.py --uv /path/to/uv                 # every platform (uv resolves for a target)
    python .ci/platforms.py --extras book,dev,site

uv's ``pip compile --python-platform`` evaluates environment markers for the target platform.  Without
uv, ``pip install --dry-run --platform`` is used, which is right only for the machine's own OS: pip
evaluates markers such as ``platform_system == "Linux"`` (torch's nvidia-* dependencies) on the machine
that runs it, so a Linux machine cannot check Windows or macOS that way.  Needs the package index
(internet); it is not part of ``make test``.  A machine-wide pip constraint is bypassed, so that only
constraints.txt decides.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent

#: name -> (uv --python-platform, MACOSX_DEPLOYMENT_TARGET or None, pip --platform tags, OS it is)
PLATFORMS = {
    "Linux x86_64": ("x86_64-manylinux_2_28", None,
                     [f"manylinux_2_{v}_x86_64" for v in range(28, 16, -1)] + ["manylinux2014_x86_64"],
                     "Linux"),
    "Linux aarch64": ("aarch64-manylinux_2_28", None,
                      [f"manylinux_2_{v}_aarch64" for v in range(28, 16, -1)] + ["manylinux2014_aarch64"],
                      "Linux"),
    "macOS 14+ arm64 (Apple silicon)": ("aarch64-apple-darwin", "14.0",
                                        [f"macosx_{v}_0_arm64" for v in (14, 13, 12, 11)], "Darwin"),
    "macOS 14+ x86_64 (Intel)": ("x86_64-apple-darwin", "14.0",
                                 [f"macosx_{v}_0_x86_64" for v in (14, 13, 12, 11)], "Darwin"),
    "Windows x86_64": ("x86_64-pc-windows-msvc", None, ["win_amd64"], "Windows"),
}


def requirements(extras: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return reqs


def _summary(versions: dict[str, str]) -> dict:
    return {"ok": True, "n": len(versions), "torch": versions.get("torch"),
            "torchvision": versions.get("torchvision"),
            "unpinned": sorted(k for k in versions if k not in _pinned())}


def _pinned() -> set[str]:
    names = set()
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            names.add(re.sub(r"[-_.]+", "-", line.split("==")[0]).lower())
    return names


def _failure(output: str) -> dict:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not ln.startswith("WARNING")]
    hint = next((ln for ln in lines if ln.startswith("hint")), "")
    why = next((ln for ln in lines if "ERROR" in ln or ln.startswith("error") or "×" in ln), "?")
    return {"ok": False, "why": f"{why} {hint}".strip()}


def resolve_uv(uv: str, target: tuple, reqs: list[str], python: str) -> dict:
    uv_platform, macos, _, _ = target
    with tempfile.TemporaryDirectory() as tmp:
        req_in = Path(tmp) / "requirements.in"
        req_in.write_text("\n".join(reqs) + "\n")
        env = {**os.environ, **({"MACOSX_DEPLOYMENT_TARGET": macos} if macos else {})}
        proc = subprocess.run([uv, "pip", "compile", str(req_in), "-c", str(ROOT / "constraints.txt"),
                               "--python-version", python, "--python-platform", uv_platform,
                               "--only-binary", ":all:", "--no-header", "--no-annotate", "-q"],
                              capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        return _failure(proc.stderr + proc.stdout)
    pins = [ln.split("==") for ln in proc.stdout.splitlines() if "==" in ln and not ln.startswith("#")]
    return _summary({re.sub(r"[-_.]+", "-", n).lower(): v.split(";")[0].strip() for n, v in pins})


def resolve_pip(target: tuple, reqs: list[str], python: str) -> dict:
    _, _, tags, os_name = target
    if os_name != platform.system():
        return {"ok": False, "why": f"not checked: pip evaluates markers for {platform.system()}, "
                                    f"not {os_name} (pass --uv)"}
    with tempfile.TemporaryDirectory() as tmp:
        empty, report = Path(tmp) / "empty.txt", Path(tmp) / "report.json"
        empty.write_text("")
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
               "--only-binary=:all:", "--python-version", python, "--report", str(report),
               "-c", str(ROOT / "constraints.txt"), *[a for t in tags for a in ("--platform", t)]]
        env = {**os.environ, "PIP_CONSTRAINT": str(empty)}
        proc = subprocess.run([*cmd, *reqs], capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            return _failure(proc.stderr + proc.stdout)
        installs = json.loads(report.read_text())["install"]
    return _summary({re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["metadata"]["version"]
                     for i in installs})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extras", default="book", help="comma-separated extras of pyproject.toml")
    ap.add_argument("--python", default="3.11.7", help="the Python version to resolve for")
    ap.add_argument("--uv", default=shutil.which("uv"), help="path to uv (default: uv on PATH)")
    args = ap.parse_args(argv)
    reqs = requirements([e for e in args.extras.split(",") if e])
    how = "uv pip compile" if args.uv else "pip install --dry-run"
    print(f"Resolved with {how}, Python {args.python}, extras {args.extras or '(none)'}, "
          f"-c constraints.txt, wheels only:\n")
    print("| platform | resolves? | torch | torchvision | packages | not in constraints.txt |")
    print("|---|---|---|---|---:|---|")
    failed = 0
    for name, target in PLATFORMS.items():
        if args.uv:
            r = resolve_uv(args.uv, target, reqs, args.python)
        else:
            r = resolve_pip(target, reqs, args.python)
        if r["ok"]:
            print(f"| {name} | yes | {r['torch']} | {r['torchvision']} | {r['n']} | "
                  f"{', '.join(r['unpinned']) or '–'} |")
        else:
            failed += 1
            print(f"| {name} | **no** | – | – | – | {r['why'][:200]} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

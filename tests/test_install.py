"""The install does not rot: one constraints file pins what CI tests, and every way in uses it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            out[_norm(name)] = version.strip()
    return out


def direct_requirements() -> list[str]:
    reqs = list(PROJECT["dependencies"])
    for extra in PROJECT["optional-dependencies"].values():
        reqs += extra
    return reqs


def test_constraints_pin_every_direct_dependency_at_its_floor():
    p = pins()
    for req in direct_requirements():
        m = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([^,\s]+)", req)
        assert m, f"{req}: every dependency states its tested floor (name>=version)"
        name, floor = _norm(m.group(1)), m.group(2)
        assert name in p, f"{name} is not pinned in constraints.txt"
        assert p[name] == floor, f"{name}: pyproject says >={floor}, constraints.txt pins {p[name]}"


def test_constraints_are_what_is_installed_here():
    """constraints.txt is the freeze of the tested environment: where a pinned package is installed, its
    version is the pinned one (run in CI, this proves CI tests exactly the pins)."""
    wrong = []
    for name, version in pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. the site extras before `make site`
        if installed != version and installed.split("+")[0] != version:
            wrong.append(f"{name}: installed {installed}, pinned {version}")
    assert not wrong, "\n".join(wrong)


def test_python_floor_is_the_tested_one():
    assert PROJECT["requires-python"] == ">=3.11"
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_every_way_in_uses_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert "CONSTRAINTS ?= constraints.txt" in makefile and makefile.count("$(PIP_C)") >= 4
    binder = (ROOT / "binder" / "requirements.txt").read_text()
    env = (ROOT / "environment.yml").read_text()
    assert "-c ../constraints.txt" in binder and "- -c constraints.txt" in env
    for text in (binder, env):  # no '+cpu' local versions: macOS wheels have none
        assert "+cpu" not in "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_license_is_mit_and_named_by_pyproject():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]


def test_contributing_does_not_send_to_a_tool_the_extras_lack():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    dev = " ".join(PROJECT["optional-dependencies"]["dev"])
    if "jupytext" not in dev:
        assert ".venv/bin/jupytext" not in text and "not a dependency of the book" in text


# ------------------------------------------------------------------------------------- the Makefile
@pytest.fixture
def fake_venv(tmp_path):
    """A venv whose python only logs what it is asked to do, so `make install` runs in milliseconds."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "log"
    for prog in ("python", "jupyter"):
        (bin_dir / prog).write_text(f'#!/bin/sh\necho "{prog} $*" >> {log}\n')
        (bin_dir / prog).chmod(0o755)
    return tmp_path / "venv", log


def _make(venv, *args, env=None):
    proc = subprocess.run(["make", "-s", "-C", str(ROOT), f"VENV={venv}", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _calls(log):
    text = log.read_text() if log.exists() else ""
    log.unlink(missing_ok=True)
    return text.splitlines()


def test_install_stamp_follows_torch_spec_and_constraints(fake_venv, tmp_path):
    venv, log = fake_venv
    _make(venv, "install")
    first = _calls(log)
    assert any("-c constraints.txt torch torchvision" in c for c in first)
    assert any("-c constraints.txt -e .[book,dev]" in c for c in first)
    _make(venv, "install")
    assert _calls(log) == []  # nothing changed: nothing reinstalled
    _make(venv, "install", "TORCH_SPEC=torch torchvision --index-url https://example.org/cu126")
    assert any("--index-url https://example.org/cu126" in c for c in _calls(log))
    _make(venv, "install", "TORCH_SPEC=torch torchvision --index-url https://example.org/cu126")
    assert _calls(log) == []
    other = tmp_path / "other-constraints.txt"
    other.write_text("torch==2.14.1\n")
    _make(venv, "install", f"CONSTRAINTS={other}")
    assert any(f"-c {other} torch torchvision" in c for c in _calls(log))


def test_make_book_as_root_says_what_to_do_in_one_line(fake_venv, tmp_path):
    venv, log = fake_venv
    _make(venv, "install")
    _calls(log)
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    (fake_bin / "id").write_text("#!/bin/sh\necho 0\n")  # pretend to be root
    (fake_bin / "id").chmod(0o755)
    out = _make(venv, "book", env={"PATH": f"{fake_bin}:{os.environ['PATH']}"})
    assert out.strip().count("\n") == 0 and "make book ALLOW_ROOT=1" in out and "root" in out
    assert _calls(log) == []  # JupyterLab was not started
    _make(venv, "book", "ALLOW_ROOT=1", env={"PATH": f"{fake_bin}:{os.environ['PATH']}"})
    assert _calls(log) == ["jupyter lab --allow-root notebooks/"]


def test_a_built_wheel_holds_every_module_of_the_package(tmp_path):
    """A non-editable install (a wheel, as pip builds it) contains every subpackage, d2lmini.exercises
    included, and the LICENSE."""
    import sys
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "d2lmini", src / "d2lmini", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "wheel"), str(src)], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("d2lmini-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "d2lmini").rglob("*.py")}
    assert "d2lmini/exercises/__init__.py" in names and modules <= names, sorted(modules - names)
    assert any(n.endswith("licenses/LICENSE") for n in names)

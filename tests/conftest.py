"""Shared fixtures: small fake Fashion-MNIST files in a temporary mirror, a clean environment, and no
exercise results carried from one test to the next."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from d2lmini.data import _FILES


def write_idx(path: Path, name: str, n: int | None = None, gz: bool = False, rng_seed: int = 0) -> None:
    """Write a well-formed idx file ``name`` (the real header, random content)."""
    magic, count = _FILES[name]
    n = count if n is None else n
    rng = np.random.default_rng(rng_seed)
    if magic == 2051:
        pixels = rng.integers(0, 256, n * 784, dtype=np.uint8)
        body = struct.pack(">IIII", magic, n, 28, 28) + pixels.tobytes()
    else:
        body = struct.pack(">II", magic, n) + rng.integers(0, 10, n, dtype=np.uint8).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(body)


@pytest.fixture
def fake_mirror(tmp_path, monkeypatch):
    """A mirror folder with the four files gzipped (like Debian's package), and an empty data root."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in _FILES:
        write_idx(mirror / f"{name}.gz", name, gz=True)
    root = tmp_path / "data"
    monkeypatch.setenv("D2LMINI_FASHION_MNIST_MIRROR", str(mirror))
    monkeypatch.setenv("D2LMINI_DATA", str(root))
    monkeypatch.setattr("d2lmini.config.DEBIAN_FASHION_MNIST", tmp_path / "no-debian-mirror")
    return mirror, root


@pytest.fixture
def no_network(monkeypatch):
    """Make any download attempt fail at once, as on a machine with no internet."""
    import urllib.request

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", refuse)


@pytest.fixture(autouse=True)
def _no_open_figures():
    """Each test starts with no open matplotlib figures (some tests check that none are left open)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close("all")
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def _fresh_exercise_results():
    """Every test starts with no exercise checked (``report(N)`` counts what was checked so far)."""
    import sys

    ex = sys.modules.get("d2lmini.exercises")
    if ex is not None:
        ex._RESULTS.clear()
    yield
    ex = sys.modules.get("d2lmini.exercises")
    if ex is not None:
        ex._RESULTS.clear()

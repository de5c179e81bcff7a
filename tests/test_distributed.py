"""Launch the chapter-14 script for real: 2 gloo processes on 127.0.0.1, smoke size."""

import json
import socket
from pathlib import Path

import pytest

import d2lmini as d2l

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ddp_train.py"


@pytest.fixture
def smoke_env(monkeypatch):
    monkeypatch.setenv("D2LMINI_SMOKE", "1")
    import os

    return dict(os.environ, D2LMINI_SMOKE="1", OMP_NUM_THREADS="1")


def test_two_processes_train_identical_replicas(tmp_path, smoke_env):
    args = ["--epochs", "2", "--n-train", "2048", "--batch-size", "128", "--lr", "0.05",
            "--out", str(tmp_path)]
    proc = d2l.distributed.launch(SCRIPT, nproc=2, args=args, timeout=120, env=smoke_env)
    assert "replicas identical: True" in proc.stdout
    result = json.loads((tmp_path / "ddp_world2.json").read_text())
    assert result["world_size"] == 2 and result["backend"] == "gloo"
    assert result["replica_max_abs_diff"] == 0.0
    assert result["loss"][-1] < result["loss"][0]
    ck = d2l.load_checkpoint(tmp_path / "ddp_world2.pt")
    assert ck["epoch"] == 2


def test_port_in_use_gives_clear_message():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert d2l.distributed.port_in_use(port)
        with pytest.raises(d2l.distributed.LaunchError, match=f"Port {port} on 127.0.0.1 is already in use"):
            d2l.distributed.launch(SCRIPT, nproc=2, port=port)


def test_free_port_is_free():
    assert not d2l.distributed.port_in_use(d2l.distributed.free_port())


def test_world_size_must_divide_the_batch(tmp_path, smoke_env):
    args = ["--epochs", "1", "--batch-size", "63", "--out", str(tmp_path)]
    with pytest.raises(d2l.distributed.LaunchError, match=r"global batch size \(63\).*divisible by .* \(2\)"):
        d2l.distributed.launch(SCRIPT, nproc=2, args=args, timeout=120, env=smoke_env)

import os
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_mlp.py"


def _run(*args, smoke=True):
    env = dict(os.environ)
    if smoke:
        env["D2LMINI_SMOKE"] = "1"
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_help_lists_the_options():
    r = _run("--help")
    assert r.returncode == 0
    for opt in ("--lr", "--batch-size", "--epochs", "--seed", "--checkpoint"):
        assert opt in r.stdout


def test_smoke_run_trains_and_saves_a_loadable_checkpoint(tmp_path):
    ckpt = tmp_path / "sub" / "mlp.pt"
    r = _run("--epochs", "1", "--batch-size", "128", "--hidden", "32", "--checkpoint", str(ckpt))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["epoch", "loss"])  # the table
    assert lines[header + 1].split()[0] == "1/1" and "test accuracy" in r.stdout
    assert f"checkpoint saved to {ckpt} (after epoch 1)" in r.stdout  # outside the data root: as given
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1
    assert state["model"]["1.weight"].shape == (32, 784)
    assert state["model"]["3.weight"].shape == (10, 32)


def test_bad_learning_rate_is_one_clear_error():
    r = _run("--lr", "-0.1")
    assert r.returncode == 2
    assert "--lr: must be > 0" in r.stderr
    assert "Traceback" not in r.stderr


def test_log_shows_paths_relative_to_the_data_root(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_mlp", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    root = tmp_path / "data"
    assert mod.shown(root / "checkpoints" / "mlp.pt", root) == "<data_root>/checkpoints/mlp.pt"
    outside = tmp_path / "elsewhere" / "mlp.pt"
    assert mod.shown(outside, root) == str(outside)


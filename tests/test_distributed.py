"""d2lmini.distributed.launch and the chapter-15 script, run for real: gloo processes on this machine.

The two training tests start real DDP runs (smoke size), one with each launcher; the others use tiny
scripts without torch, so they take about a second each.
"""

import json
import os
import sys
import textwrap
import time

import pytest
import torch

import d2lmini as d2l

SCRIPT = d2l.book_file("scripts/ddp_train.py")


@pytest.fixture
def smoke_env(monkeypatch):
    monkeypatch.setenv("D2LMINI_SMOKE", "1")
    return dict(os.environ, D2LMINI_SMOKE="1", OMP_NUM_THREADS="1")


def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ddp_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torchrun_pads_accumulates_with_no_sync_and_keeps_replicas_identical(tmp_path, smoke_env):
    # 2001 images on 2 ranks: the sampler pads one index; 2 micro-batches per step under no_sync()
    args = ["--epochs", "2", "--n-train", "2001", "--batch-size", "128", "--accum", "2",
            "--lr", "0.05", "--out", str(tmp_path)]
    proc = d2l.distributed.launch(SCRIPT, nproc=2, args=args, timeout=300, env=smoke_env,
                                  launcher="torchrun")
    assert "replicas identical: True" in proc.stdout
    r = json.loads((tmp_path / "ddp_world2.json").read_text())
    assert r["world_size"] == 2 and r["backend"] == "gloo"
    assert r["replica_max_abs_diff"] == 0.0
    assert (r["samples_per_rank"], r["padded"], r["dropped"]) == (1001, 1, 0)
    assert r["micro_batch"] == 32 and r["steps_per_epoch"] == 16  # ceil(ceil(1001 / 32) / 2)
    assert r["allreduces_per_rank"] == 2 * r["steps_per_epoch"]  # one per step: no_sync() works
    assert len(r["step_loss"]) == 2 * r["steps_per_epoch"]
    assert r["loss"][-1] < r["loss"][0]
    # rank 0 saved model.module: the checkpoint loads into the plain model, no "module." prefix
    net = _load_script().make_model()
    ck = d2l.load_checkpoint(tmp_path / "ddp_world2.pt", net)
    assert ck["epoch"] == 2


def test_processes_launcher_drop_last_and_sync_every_micro_batch(tmp_path, smoke_env):
    args = ["--epochs", "1", "--n-train", "1001", "--batch-size", "64", "--accum", "2",
            "--drop-last", "--sync-every-micro-batch", "--out", str(tmp_path)]
    proc = d2l.distributed.launch(SCRIPT, nproc=2, args=args, timeout=300, env=smoke_env,
                                  launcher="processes")
    assert "replicas identical: True" in proc.stdout
    r = json.loads((tmp_path / "ddp_world2.json").read_text())
    assert (r["samples_per_rank"], r["padded"], r["dropped"]) == (500, 0, 1)
    assert r["steps_per_epoch"] == 16  # ceil(ceil(500 / 16) / 2)
    assert r["allreduces_per_rank"] == 32  # without no_sync(): one per micro-batch


def test_a_batch_that_does_not_split_names_the_worker_error(tmp_path, smoke_env):
    args = ["--epochs", "1", "--batch-size", "63", "--out", str(tmp_path)]
    with pytest.raises(d2l.distributed.LaunchError,
                       match=r"2-process run failed: .*global batch of 63 does not split into 2 processes"):
        d2l.distributed.launch(SCRIPT, nproc=2, args=args, timeout=300, env=smoke_env)


def _script(tmp_path, body: str):
    path = tmp_path / "worker.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_processes_get_torchrun_variables_and_the_loopback_interface(tmp_path):
    worker = _script(tmp_path, """
        import os
        keys = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "GLOO_SOCKET_IFNAME"]
        print(" ".join(os.environ.get(k, "-") for k in keys), flush=True)
    """)
    env = {k: v for k, v in os.environ.items() if k != "GLOO_SOCKET_IFNAME"}
    proc = d2l.distributed.launch(worker, nproc=3, launcher="processes", env=env, timeout=60)
    lines = proc.stdout.splitlines()
    assert [ln.split()[:4] for ln in lines] == [[str(r), str(r), "3", "127.0.0.1"] for r in range(3)]
    loopback = d2l.distributed._loopback_interface()
    assert {ln.split()[4] for ln in lines} == {loopback or "-"}


def test_the_launcher_hosts_the_store_so_it_outlives_rank_0(tmp_path):
    # Rank 1 reaches the run's store after rank 0 has exited.  Were rank 0 the store's host, as with a
    # plain env:// rendezvous, the store would be gone with it.
    worker = _script(tmp_path, f"""
        import os, time
        from datetime import timedelta
        import torch.distributed as dist
        dist.init_process_group("gloo")
        pid_file = {str(tmp_path / "rank0.pid")!r}
        if dist.get_rank() == 0:
            open(pid_file, "w").write(str(os.getpid()))
        dist.barrier()
        dist.destroy_process_group()
        if os.environ["RANK"] == "1":
            pid, deadline = int(open(pid_file).read()), time.monotonic() + 30
            while time.monotonic() < deadline:  # wait until rank 0 has gone
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError("rank 0 did not exit")
            store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                                  is_master=False, timeout=timedelta(seconds=10))
            store.set("after rank 0", "still here")
            print("store reachable:", store.get("after rank 0").decode(), flush=True)
    """)
    proc = d2l.distributed.launch(worker, nproc=2, launcher="processes", timeout=120)
    assert "store reachable: still here" in proc.stdout


def test_a_failing_rank_stops_the_others_and_its_error_is_shown(tmp_path):
    worker = _script(tmp_path, """
        import os, time
        if os.environ["RANK"] == "1":
            raise RuntimeError("rank 1 ran out of patience")
        time.sleep(120)  # rank 0 would wait forever at its next collective
    """)
    start = time.monotonic()
    with pytest.raises(d2l.distributed.LaunchError, match="failed: RuntimeError: rank 1 ran out of patience"):
        d2l.distributed.launch(worker, nproc=2, launcher="processes", timeout=100)
    assert time.monotonic() - start < 60  # rank 0 was stopped, not waited for


def test_a_run_past_its_timeout_is_stopped(tmp_path):
    worker = _script(tmp_path, "import time\ntime.sleep(120)\n")
    start = time.monotonic()
    with pytest.raises(d2l.distributed.LaunchError, match="took longer than 2 s"):
        d2l.distributed.launch(worker, nproc=2, launcher="processes", timeout=2)
    assert time.monotonic() - start < 30


def test_bad_arguments_are_refused_before_anything_starts(tmp_path):
    with pytest.raises(ValueError, match="nproc must be at least 1"):
        d2l.distributed.launch(SCRIPT, nproc=0)
    with pytest.raises(ValueError, match="launcher must be 'torchrun' or 'processes'"):
        d2l.distributed.launch(SCRIPT, nproc=1, launcher="mpirun")


def test_default_launcher_avoids_torchrun_on_windows(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    assert d2l.distributed.default_launcher() == "processes"
    monkeypatch.setattr(sys, "platform", "linux")
    assert d2l.distributed.default_launcher() == "torchrun"


def test_worker_error_picks_the_workers_own_line():
    report = ("[rank1]: Traceback (most recent call last):\n"
              "[rank1]: ValueError: a global batch of 63 does not split\n"
              "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n")
    assert d2l.distributed._worker_error(report) == "ValueError: a global batch of 63 does not split"
    assert d2l.distributed._worker_error("") == "no output"
    # no error line (a worker killed by a signal): the exit code says what happened
    assert (d2l.distributed._worker_error("world size 2: replicas identical: True\n", -6)
            == "a worker exited with code -6; last output: world size 2: replicas identical: True")
    # a C++ abort: the exception's own message, not the last line the other rank printed
    abort = ("terminate called after throwing an instance of 'gloo::IoException'\n"
             "  what():  [pair.cc:598] Connection closed by peer [127.0.0.1]:40123\n"
             "Fatal Python error: Aborted\n\n"
             "world size 2: replicas identical: True\n")
    assert (d2l.distributed._worker_error(abort, -6)
            == "what():  [pair.cc:598] Connection closed by peer [127.0.0.1]:40123")


def test_the_script_model_has_no_batch_norm():
    # the chapter compares 1 and 2 processes step by step: that needs a model without BatchNorm
    net = _load_script().make_model()
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert sum(p.numel() for p in net.parameters()) == 61_706

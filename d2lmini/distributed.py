"""Start a training script on several processes of this machine, from a notebook or a test.

The script itself (``scripts/ddp_train.py``) holds the ``torch.distributed`` code the chapter teaches; this
module only starts it and turns a failed run into one clear message.  Two launchers:

* ``"torchrun"`` (the default on Linux and macOS): ``python -m torch.distributed.run --standalone
  --nproc_per_node=N script ...``.  ``--standalone`` lets torchrun pick a free port on this machine, so no
  port is chosen by hand.
* ``"processes"`` (the default on Windows): start the N processes directly, each with the environment
  variables torchrun would give it (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``,
  ``MASTER_ADDR``, ``MASTER_PORT``).  PyTorch's Windows wheels are built without libuv, and torchrun's
  rendezvous asks for a libuv TCP store whatever ``USE_LIBUV`` says (PyTorch issue #148283), so torchrun
  stops there with "use_libuv was requested but PyTorch was built without libuv support".  The script's
  ``init_process_group()`` itself works on Windows, so starting the processes without torchrun does too.
  Like torchrun's agent, the launcher itself hosts the rendezvous store (``TORCHELASTIC_USE_AGENT_STORE``),
  so the store outlives every worker: no worker is left talking to a store that rank 0 took down on exit.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import D2LMiniError

__all__ = ["LaunchError", "launch"]


class LaunchError(D2LMiniError):
    """A worker process failed, or the run took longer than its timeout."""


def _loopback_interface() -> str | None:
    """The loopback network interface's name (``lo`` on Linux, ``lo0`` on macOS), if there is one."""
    try:
        names = {name for _, name in socket.if_nameindex()}
    except (OSError, AttributeError):  # pragma: no cover - platforms without if_nameindex
        return None
    return next((n for n in ("lo", "lo0") if n in names), None)


def default_launcher() -> str:
    """``"processes"`` on Windows (torchrun cannot start there, see the module docstring), else
    ``"torchrun"``."""
    return "processes" if sys.platform == "win32" else "torchrun"


def launch(
    script: str | Path,
    nproc: int = 2,
    args: list[str] | None = None,
    timeout: float = 900,
    env: dict[str, str] | None = None,
    launcher: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``script args`` on ``nproc`` processes of this machine and return the finished run.

    ``launcher`` is ``"torchrun"`` (``torchrun --standalone --nproc_per_node=nproc``) or ``"processes"``
    (the processes started directly, with torchrun's environment variables); ``None`` picks
    :func:`default_launcher`.  The returned ``stdout`` holds what the workers printed (with
    ``"processes"``, rank 0's first).  A worker that fails, or a run longer than ``timeout`` seconds,
    raises :class:`LaunchError` with the worker's own last error line instead of torchrun's long report;
    every process of the run is stopped first.
    """
    launcher = launcher or default_launcher()
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    base = dict(os.environ if env is None else env)
    loopback = _loopback_interface()
    if loopback and "GLOO_SOCKET_IFNAME" not in base:
        base["GLOO_SOCKET_IFNAME"] = loopback  # one machine: talk over the loopback interface
    base.setdefault("PYTHONFAULTHANDLER", "1")  # a worker killed by a signal prints where it was
    script_args = [str(script), *(args or [])]
    if launcher == "torchrun":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", *script_args]
        runs = [(cmd, base)]
    elif launcher == "processes":
        store = _host_store(nproc)  # kept alive until every worker has exited
        runs = [([sys.executable, *script_args],
                 dict(base, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(nproc),
                      LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(store.port), TORCHELASTIC_USE_AGENT_STORE="True",
                      USE_LIBUV="0", OMP_NUM_THREADS=base.get("OMP_NUM_THREADS", "1")))
                for r in range(nproc)]
    else:
        raise ValueError(f"launcher must be 'torchrun' or 'processes', not {launcher!r}")
    returncode, stdout, stderr = _run_all(runs, timeout)
    if returncode != 0:
        what = (f"took longer than {timeout:g} s" if returncode is None
                else f"failed: {_worker_error(stderr + stdout, returncode)}")
        raise LaunchError(f"The {nproc}-process run {what}")
    return subprocess.CompletedProcess(runs[0][0], 0, stdout, stderr)


def _host_store(nproc: int):
    """A TCP store on a free loopback port for ``nproc`` workers, served by this process, as torchrun's
    agent serves its workers' store.  libuv where the wheel has it (not on Windows)."""
    from torch.distributed import TCPStore

    return TCPStore("127.0.0.1", 0, nproc, is_master=True, wait_for_workers=False,
                    use_libuv=sys.platform != "win32")


def _run_all(runs: list[tuple[list[str], dict[str, str]]], timeout: float) -> tuple[int | None, str, str]:
    """Start every ``(cmd, env)`` at once and wait for all of them.  As soon as one fails (or the
    timeout passes) the others are stopped.  Returns (the first non-zero return code, 0 if all succeeded,
    None on a timeout; all stdout; all stderr).  Output goes to temporary files, so a chatty worker can
    never block on a full pipe."""
    files = [(tempfile.TemporaryFile(), tempfile.TemporaryFile()) for _ in runs]
    procs = [subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
             for (cmd, env), (out, err) in zip(runs, files, strict=True)]
    deadline = time.monotonic() + timeout
    failed: int | None = 0
    try:
        while True:
            codes = [p.poll() for p in procs]  # poll every process, every time
            bad = [c for c in codes if c not in (None, 0)]
            if bad:
                failed = bad[0]
                break
            if all(c == 0 for c in codes):
                break
            if time.monotonic() > deadline:
                failed = None
                break
            time.sleep(0.05)
    finally:
        for p in procs:
            _stop(p)
    texts = []
    for out, err in files:
        out.seek(0)
        err.seek(0)
        texts.append((out.read().decode(errors="replace"), err.read().decode(errors="replace")))
        out.close()
        err.close()
    return failed, "".join(o for o, _ in texts), "".join(e for _, e in texts)


def _stop(proc: subprocess.Popen) -> None:
    """Ask a still-running process to stop (torchrun passes it on to its workers), then kill it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _worker_error(output: str, returncode: int | None = None) -> str:
    """The most telling line of a failed run: the workers' own error, else the exit code (a negative
    one is the signal that killed the worker) and the last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    markers = ("ValueError:", "RuntimeError:", "D2LMiniError", "Error:",
               "what():", "terminate called", "Fatal Python error")  # the last three: C++ aborts
    for marker in markers:
        hits = [ln for ln in lines if marker in ln]
        if hits:
            return re.sub(r"^\[rank\d+\]:", "", hits[-1]).strip()  # torchrun's rank prefix
    code = f"a worker exited with code {returncode}" if returncode is not None else ""
    last = lines[-1] if lines else "no output"
    return f"{code}; last output: {last}" if code else last

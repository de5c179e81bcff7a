"""Launch a training script on several processes with ``torchrun`` from a notebook or a test.

The script itself (``scripts/ddp_train.py``) holds the ``torch.distributed`` code the chapter teaches;
this module only starts it, on the loopback address, and turns the usual failures into one clear message.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from .errors import D2LMiniError


class LaunchError(D2LMiniError):
    """torchrun could not start, or a worker process failed."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if another process already holds ``port`` on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def launch(
    script: str | Path,
    nproc: int = 2,
    args: list[str] | None = None,
    port: int | None = None,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``torchrun --nproc_per_node=nproc script args`` on 127.0.0.1 and return the finished process.

    ``port=None`` picks a free port.  A port already in use, or a worker that fails, raises
    :class:`LaunchError` with the worker's own last error line instead of torchrun's long report.
    """
    if port is None:
        port = free_port()
    elif port_in_use(port):
        raise LaunchError(
            f"Port {port} on 127.0.0.1 is already in use (another training run, or another program). "
            f"Pass a different port, or port=None to let d2lmini pick a free one."
        )
    cmd = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
        "--master_addr=127.0.0.1", f"--master_port={port}", str(script), *(args or []),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise LaunchError(f"The {nproc}-process run failed: {_worker_error(proc.stderr + proc.stdout)}")
    return proc


def _worker_error(output: str) -> str:
    """The most telling line of a failed run: the workers' own error, else the last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for marker in ("ValueError:", "RuntimeError:", "D2LMiniError", "Error:"):
        hits = [ln for ln in lines if marker in ln]
        if hits:
            return hits[-1].split("]:", 1)[-1].strip()
    return lines[-1] if lines else "no output"

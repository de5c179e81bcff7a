"""TensorBoard logging as a :class:`~d2lmini.train.Learner` callback, and readers for the event files.

``TensorBoard(log_dir)`` writes, through ``torch.utils.tensorboard.SummaryWriter``:

* scalars after every epoch: ``loss/train``, ``loss/val``, ``accuracy/train``, ``accuracy/val``, ``lr``
  (one point per epoch, step = epoch number 1, 2, …);
* histograms of every parameter after every epoch: ``weights/<name>`` (e.g. ``weights/features.0.weight``);
* once per fit, an image grid of the first training batch (``batch``) and the model graph (``add_graph``).

Open it with ``tensorboard --logdir <log_dir>`` (or ``%tensorboard`` in JupyterLab), or read the numbers
back without a server with :func:`read_scalars` / :func:`read_tags`.  :func:`tensorboard_server` runs the
real server for the length of a ``with`` block, and :func:`screenshot` photographs one of its pages with
headless Chromium, so that a page without a live server (the website) shows what the UI shows.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from .callbacks import Callback
from .errors import D2LMiniError
from .train import Learner, eval_mode

EVENT_GLOB = "events.out.tfevents.*"


class NoEventFilesError(D2LMiniError):
    """A folder holds no TensorBoard event files."""


def _scalar_tag(key: str) -> str:
    """History key -> TensorBoard tag: ``val_loss`` -> ``loss/val``, ``accuracy`` -> ``accuracy/train``."""
    if key == "lr":
        return "lr"
    if key.startswith("val_"):
        return f"{key[4:]}/val"
    return f"{key}/train"


class TensorBoard(Callback):
    """Log a training run to TensorBoard event files in ``log_dir``.

    ``histograms``, ``images`` and ``graph`` switch off the heavier parts; ``n_images`` is how many
    images of the first batch go into the grid.  With ``overwrite=True`` earlier event files in
    ``log_dir`` are deleted first, so re-running a cell does not mix two runs in one curve.
    """

    order = 40

    def __init__(self, log_dir: str | Path, histograms: bool = True, images: bool = True,
                 graph: bool = True, n_images: int = 32, overwrite: bool = False) -> None:
        self.log_dir = Path(log_dir)
        self.histograms, self.images, self.graph, self.n_images = histograms, images, graph, n_images
        self.overwrite = overwrite
        self.writer = None

    def before_fit(self, learn: Learner) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if self.overwrite and self.log_dir.is_dir():
            for f in self.log_dir.glob(EVENT_GLOB):
                f.unlink()
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        self._first_batch = True

    def before_batch(self, learn: Learner) -> None:
        if not self._first_batch:
            return
        self._first_batch = False
        xb = learn.xb
        if self.images and xb.ndim == 4 and xb.shape[1] in (1, 3):
            from torchvision.utils import make_grid

            grid = make_grid(xb[: self.n_images].detach().cpu(), nrow=8, normalize=True, pad_value=1.0)
            self.writer.add_image("batch", grid, global_step=learn.epoch)
        if self.graph:
            self._add_graph(learn.model, xb[:2])

    def _add_graph(self, model: torch.nn.Module, x: Tensor) -> None:
        """Trace the model once in eval mode (so batch-norm statistics are not touched) and log its graph."""
        with eval_mode(model):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # tracer warnings about Python control flow
                    self.writer.add_graph(model, x)
            except Exception as e:  # noqa: BLE001 - tracing fails for some models; the run must go on
                print(f"TensorBoard: could not trace the model graph ({type(e).__name__}); skipped.")

    def after_epoch(self, learn: Learner) -> None:
        step = learn.epoch
        for key, values in learn.history.history.items():
            if key != "time" and values:
                self.writer.add_scalar(_scalar_tag(key), values[-1], step)
        if self.histograms:
            for name, p in learn.model.named_parameters():
                self.writer.add_histogram(f"weights/{name}", p.detach().cpu(), step)
        self.writer.flush()

    def after_fit(self, learn: Learner) -> None:
        if self.writer is not None:
            self.writer.close()


def _accumulator(log_dir: str | Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = Path(log_dir)
    if not log_dir.is_dir() or not any(log_dir.glob(EVENT_GLOB)):
        raise NoEventFilesError(
            f"No TensorBoard event files ({EVENT_GLOB}) in {log_dir}. Train with "
            f"callbacks=[d2l.TensorBoard('{log_dir}')] first, or check the folder name."
        )
    # size_guidance 0 = keep every event (the default keeps a sample of at most 500 scalars per tag)
    ea = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    ea.Reload()
    return ea


def read_tags(log_dir: str | Path) -> dict[str, list[str]]:
    """What the event files in ``log_dir`` hold: ``{'scalars': [...], 'histograms': [...], 'images': [...],
    'graph': True/False}`` (tags sorted).  Raises :class:`NoEventFilesError` if there are none."""
    tags = _accumulator(log_dir).Tags()
    return {
        "scalars": sorted(tags.get("scalars", [])),
        "histograms": sorted(tags.get("histograms", [])),
        "images": sorted(tags.get("images", [])),
        "graph": bool(tags.get("graph", False)),
    }


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar logged in ``log_dir``, read back from the event files without a TensorBoard server:
    ``{'loss/train': [(1, 0.61), (2, 0.42), ...], ...}`` as ``(step, value)`` pairs in step order."""
    ea = _accumulator(log_dir)
    return {tag: sorted((e.step, e.value) for e in ea.Scalars(tag)) for tag in sorted(ea.Tags()["scalars"])}



# ------------------------------------------------------------------------- a real server, and its picture

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its data-server child (they share a process group on POSIX)."""
    if proc.poll() is None:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGTERM)
        else:  # pragma: no cover - Windows
            proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:  # pragma: no cover - a server that ignores SIGTERM
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()


@contextlib.contextmanager
def tensorboard_server(log_dir: str | Path, timeout: float = 60.0) -> Iterator[str]:
    """Run ``tensorboard --logdir log_dir`` on a free local port for the length of a ``with`` block::

        with tensorboard_server(d2l.data_root() / "runs") as url:
            print(url)           # http://127.0.0.1:<port>: open it in a browser, or take a screenshot

    The server is started from ``log_dir``'s parent with the folder's own name as ``--logdir``, so its page
    shows ``runs``, not a path of this machine.  It is stopped when the block ends, even after an error.
    Raises :class:`NoEventFilesError` if ``log_dir`` holds no event files, ``RuntimeError`` (with the
    server's own last words) if it does not answer within ``timeout`` seconds.
    """
    log_dir = Path(log_dir).resolve()
    if not log_dir.is_dir() or not any(log_dir.rglob(EVENT_GLOB)):
        raise NoEventFilesError(f"No TensorBoard event files under {log_dir.name}/: train with "
                                f"callbacks=[d2l.TensorBoard(...)] first, or check the folder name.")
    port = _free_port()
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", log_dir.name, "--port", str(port),
           "--host", "127.0.0.1"]
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, cwd=log_dir.parent, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:  # up when it answers, and ready when it has found the runs
            try:
                with urllib.request.urlopen(f"{url}/data/runs", timeout=2) as r:
                    if json.loads(r.read()):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"TensorBoard did not start within {timeout:.0f} s:\n{log.read()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        _stop(proc)
        log.close()


#: How headless Chromium is started: no GPU, no network of its own, nothing remembered between runs.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage")

# Counts the drawn chart lines inside TensorBoard's pages (their charts live in shadow DOMs).
_COUNT_LINES_JS = """
function deep(root, out) {
  root.querySelectorAll('svg path').forEach(p => {
    if ((p.getAttribute('d') || '').length > 20) out.push(p);
  });
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) deep(e.shadowRoot, out); });
  return out;
}
return deep(document, []).length;
"""


def _browser() -> tuple[str, str] | str:
    """``(chromium, chromedriver)`` paths, or the reason there is no browser to use."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "Selenium is not installed (pip install selenium)"

    def first(*candidates: str | None) -> str | None:
        return next((p for p in candidates if p and Path(p).exists()), None)

    chromium = first(shutil.which("chromium"), shutil.which("chromium-browser"),
                     shutil.which("google-chrome"), "/usr/bin/chromium")
    driver = first(shutil.which("chromedriver"), "/usr/bin/chromedriver")
    if chromium is None or driver is None:
        return "no Chromium and chromedriver here (apt-get install chromium chromium-driver)"
    return chromium, driver


def screenshot(url: str, page: str = "scalars", size: tuple[int, int] = (1200, 900),
               timeout: float = 60.0, colors: int = 64) -> bytes | None:
    """A PNG of one page of the TensorBoard at ``url`` (``"scalars"``, ``"images"``, ``"graphs"``, ...),
    taken with headless Chromium through Selenium once its charts have been drawn, with smoothing off.

    Returns ``None`` and prints one line saying what to do instead when there is no browser (Chromium,
    chromedriver or Selenium missing).  The browser starts with :data:`CHROMIUM_FLAGS` and a fresh
    profile, never downloads anything, and is closed afterwards.  ``colors`` reduces the PNG to a palette
    (a few tens of kB).
    """
    found = _browser()
    if isinstance(found, str):
        print(f"No screenshot: {found}. Run `tensorboard --logdir data/runs` and open "
              f"http://localhost:6006 to see the page.")
        return None
    chromium, driver_path = found
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download a driver or browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="d2lmini-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        driver.set_window_size(*size)
        driver.get(f"{url}/#{page}&_smoothingWeight=0")
        deadline, last, stable = time.monotonic() + timeout, -1, 0
        while stable < 3:  # drawn: lines present and their number unchanged for three polls
            time.sleep(0.4)
            n = driver.execute_script(_COUNT_LINES_JS)
            stable = stable + 1 if n == last and n > 0 else 0
            last = n
            if time.monotonic() > deadline:
                raise RuntimeError(f"TensorBoard's {page} page drew no charts within {timeout:.0f} s")
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=colors)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()

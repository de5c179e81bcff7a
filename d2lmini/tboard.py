"""TensorBoard logging as a :class:`~d2lmini.train.Learner` callback, and readers for the event files.

``TensorBoard(log_dir)`` writes, through ``torch.utils.tensorboard.SummaryWriter``:

* scalars after every epoch: ``loss/train``, ``loss/val``, ``accuracy/train``, ``accuracy/val``, ``lr``
  (one point per epoch, step = epoch number 1, 2, …);
* histograms of every parameter after every epoch: ``weights/<name>`` (e.g. ``weights/features.0.weight``);
* once per fit, an image grid of the first training batch (``batch``) and the model graph (``add_graph``).

Open it with ``tensorboard --logdir <log_dir>`` (or ``%tensorboard`` in JupyterLab), or read the numbers
back without a server with :func:`read_scalars` / :func:`read_tags`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor

from .errors import D2LMiniError
from .train import Callback, Learner

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
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about Python control flow
                self.writer.add_graph(model, x)
        except Exception as e:  # noqa: BLE001 - tracing fails for some models; the run must go on
            print(f"TensorBoard: could not trace the model graph ({type(e).__name__}); skipped.")
        finally:
            model.train(was_training)

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

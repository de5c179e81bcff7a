"""Errors that d2lmini shows a reader as one clear message instead of a long traceback."""

from __future__ import annotations


class D2LMiniError(RuntimeError):
    """Base class.  In Jupyter the error prints as one message (IPython calls ``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class DatasetUnavailableError(D2LMiniError):
    """The dataset is neither on disk, nor in a local mirror, nor downloadable."""


class DatasetCorruptError(D2LMiniError):
    """A dataset file exists but is truncated or is not the file it claims to be."""


class CheckpointError(D2LMiniError):
    """A checkpoint file cannot be loaded safely into the given model."""

"""Configuration read from environment variables, in one place.

* ``D2LMINI_SMOKE=1`` turns on smoke mode: the same code runs on less data and fewer epochs, so CI can
  execute the whole book in minutes.  Chapters ask :func:`by_mode` for their sizes.
* ``D2LMINI_DATA`` is the folder where datasets and checkpoints land (default: the repository's ``data/``).
* ``D2LMINI_FASHION_MNIST_MIRROR`` is a folder holding a local copy of the Fashion-MNIST files
  (``*.gz`` or decompressed ``*-ubyte``); Debian's ``/usr/share/datasets/fashion-mnist`` is looked at too.
* ``D2LMINI_LANG`` (``en`` or ``zh``) is the language of the messages (see :mod:`d2lmini.messages`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from .messages import msg

T = TypeVar("T")

SMOKE_ENV = "D2LMINI_SMOKE"
DATA_ENV = "D2LMINI_DATA"
MIRROR_ENV = "D2LMINI_FASHION_MNIST_MIRROR"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_REPO_ROOT = Path(__file__).resolve().parent.parent


def is_smoke() -> bool:
    """True when ``D2LMINI_SMOKE`` is set to a true value (1, true, yes, on)."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def by_mode(reader: T, smoke: T) -> T:
    """Return ``reader`` normally and ``smoke`` in smoke mode: ``epochs = by_mode(10, 1)``."""
    return smoke if is_smoke() else reader


def data_root() -> Path:
    """The folder datasets are stored in: ``$D2LMINI_DATA``, else the repository's ``data/``.

    When d2lmini is installed outside a checkout of the book, ``~/.cache/d2lmini`` is used.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    if (_REPO_ROOT / "pyproject.toml").exists():
        return _REPO_ROOT / "data"
    return Path.home() / ".cache" / "d2lmini"


def book_file(relative: str | Path) -> Path:
    """A file of the book's repository, e.g. ``book_file("scripts/ddp_train.py")``, found from the
    installed package rather than from the working directory (the Chinese notebooks in ``notebooks/zh/``
    run the same code as the English ones).  Raises ``FileNotFoundError`` outside a checkout of the book."""
    path = _REPO_ROOT / relative
    if not path.exists():
        raise FileNotFoundError(f"{relative} is not in the book's repository ({_REPO_ROOT.name}/); "
                                f"d2lmini seems to be installed outside a checkout of the book")
    return path


def mirror_dirs() -> list[Path]:
    """Folders searched for a local Fashion-MNIST mirror, in order: ``$D2LMINI_FASHION_MNIST_MIRROR``,
    then Debian's ``/usr/share/datasets/fashion-mnist``."""
    dirs = []
    env = os.environ.get(MIRROR_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(DEBIAN_FASHION_MNIST)
    return dirs


def mode_banner() -> str:
    """One line saying which mode the book runs in.  Notebooks call it (through :func:`setup`) at the top."""
    return msg("banner_smoke") if is_smoke() else msg("banner_reader")

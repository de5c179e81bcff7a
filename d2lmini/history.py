"""What a training run returns: plain data, one list per logged name, as in Keras."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """What :meth:`~d2lmini.Learner.fit` returns.

    ``history`` maps a name (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``time``) to a
    list with one value per epoch; ``step_loss`` holds every training batch's loss (on a GPU it is filled
    at the end of each epoch); ``stop_reason`` says why training ended early, and ``diverged_at`` at which
    step (counted from 1) the loss became NaN/inf.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    step_loss: list[float] = field(default_factory=list)
    stop_reason: str | None = None
    diverged_at: int | None = None

    def log(self, **values: float) -> None:
        """Append one value to each named list (one epoch's numbers)."""
        for k, v in values.items():
            self.history.setdefault(k, []).append(float(v))

    @property
    def epochs(self) -> int:
        """How many epochs are logged."""
        return len(self.history.get("loss", []))

    def last(self, name: str) -> float:
        """The last logged value of ``name`` (e.g. ``history.last('val_accuracy')``)."""
        if not self.history.get(name):
            known = ", ".join(self.history) or "nothing yet"
            raise KeyError(f"{name!r} was not logged; the history holds: {known}")
        return self.history[name][-1]

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v)
        return f"History({self.epochs} epochs: {last})"

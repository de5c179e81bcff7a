#!/usr/bin/env python3
"""Train chapter 04's MLP on Fashion-MNIST from the command line.

    python scripts/train_mlp.py --lr 0.1 --batch-size 256 --epochs 10 --seed 0 --checkpoint data/mlp.pt
    D2LMINI_SMOKE=1 python scripts/train_mlp.py        # tiny data and 1 epoch (CI)

The story, top to bottom: read the options, seed, build the data and the model, train with d2lmini's
``fit``, save a checkpoint (a dict of state_dicts), evaluate on the test set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

# torch and d2lmini are imported inside the functions that need them, after the options are parsed:
# importing torch takes seconds, and `--help` or a mistyped option should answer at once.


def build_mlp(hidden: int = 256, num_classes: int = 10) -> nn.Sequential:
    """The chapter's MLP: 784 -> hidden -> ReLU -> num_classes."""
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def shown(path: Path, root: Path) -> str:
    """``path`` as the log prints it: relative to the data root when it lies inside it (so that a log, or a
    notebook that shows one, holds no machine paths), else as given."""
    try:
        return f"<data_root>/{path.resolve().relative_to(root.resolve()).as_posix()}"
    except ValueError:
        return str(path)


def positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Train a one-hidden-layer MLP on Fashion-MNIST with d2lmini.")
    ap.add_argument("--lr", type=positive(float), default=0.1, help="learning rate of SGD (default 0.1)")
    ap.add_argument("--batch-size", type=positive(int), default=256, help="mini-batch size (default 256)")
    ap.add_argument("--epochs", type=positive(int), default=None,
                    help="number of epochs (default 10; 1 when D2LMINI_SMOKE=1)")
    ap.add_argument("--hidden", type=positive(int), default=256, help="hidden units (default 256)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="where to save the trained model (default <data_root>/checkpoints/mlp.pt)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import d2lmini as d2l

    epochs = args.epochs if args.epochs is not None else d2l.by_mode(10, 1)
    checkpoint = args.checkpoint or d2l.data_root() / "checkpoints" / "mlp.pt"

    device = d2l.setup(args.seed)
    loaders = d2l.fashion_mnist_loaders(batch_size=args.batch_size, seed=args.seed)
    net = build_mlp(args.hidden)
    print(f"lr={args.lr} batch_size={args.batch_size} epochs={epochs} hidden={args.hidden} seed={args.seed}")

    history = d2l.fit(net, loaders.train, epochs=epochs, lr=args.lr, val_data=loaders.val, device=device,
                      callbacks=[d2l.Checkpoint(checkpoint)])
    test = d2l.evaluate(net, loaders.test)
    print(f"test accuracy {test['accuracy']:.4f}, test loss {test['loss']:.4f}")
    print(f"checkpoint saved to {shown(checkpoint, d2l.data_root())} (after epoch {history.epochs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

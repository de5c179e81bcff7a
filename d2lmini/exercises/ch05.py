"""Checks for chapter 05, Convolution and pooling.  Every expected value is computed here: with the
output-size formula of :mod:`d2lmini.conv`, with PyTorch's own layers, or with autograd."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..conv import conv_output_size
from . import Feedback, correct, exercise, wrong

#: The settings (n, k, p, s) of exercise 1, as the chapter prints them.
SIZES = ((32, 3, 1, 2), (28, 5, 0, 1), (224, 11, 2, 4), (7, 3, 1, 3))


@exercise("05.1", title="output sizes", where="section 5.4")
def _sizes(answer: Mapping[tuple[int, int, int, int], int]) -> Feedback:
    missing = [c for c in SIZES if c not in answer or answer[c] is None]
    if missing:
        return wrong(f"give a size for every setting (n, k, p, s); missing: {missing}.")
    off = [c for c in SIZES if answer[c] != conv_output_size(*c)]
    if off:
        n, k, p, s = off[0]
        return wrong(f"{len(off)} of {len(SIZES)} sizes are off, e.g. n={n}, k={k}, p={p}, s={s}: "
                     f"compute ⌊(n + 2p − k) / s⌋ + 1, rounding down before adding 1.")
    return correct("all four match ⌊(n + 2p − k) / s⌋ + 1 (and what nn.Conv2d returns).")


@exercise("05.2", title="'same' padding and halving", where="section 5.4")
def _padding(answer: Sequence[int]) -> Feedback:
    p_same, p_half = answer
    got_same = conv_output_size(28, 7, p_same, 1)
    got_half = conv_output_size(28, 3, p_half, 2)
    if got_same != 28:
        return wrong(f"with k=7, s=1, p={p_same} a 28×28 image becomes {got_same}×{got_same}: "
                     f"'same' padding for an odd k is p = (k − 1) / 2.")
    if got_half != 14:
        return wrong(f"with k=3, s=2, p={p_half} a 28×28 image becomes {got_half}×{got_half}, not 14×14.")
    return correct("p = (k − 1)/2 keeps the size at stride 1; at stride 2 the same padding halves it.")


def _receptive_side(strides: Sequence[int], n: int = 41) -> int:
    """Side of the receptive field of the centre output pixel of 3×3 convolutions with these strides,
    measured with autograd (all weights 1, so every path counts)."""
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3, stride=s, bias=False) for s in strides])
    for m in net:
        nn.init.ones_(m.weight)
    x = torch.zeros(1, 1, n, n, requires_grad=True)
    y = net(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0])[:, 0]
    return int(rows.max() - rows.min() + 1)


@exercise("05.3", title="receptive field", where="section 5.8")
def _receptive(answer: int) -> Feedback:
    strides = (1, 1, 1, 1, 2, 1)
    side = _receptive_side(strides)
    if answer == side:
        return correct("autograd measures the same side: each layer adds (k − 1) times the product of "
                       "the strides before it.")
    if answer == _receptive_side((1,) * len(strides)):
        return wrong("that is the field of six stride-1 layers: the layer after the stride-2 layer "
                     "steps 2 input pixels at a time, so it adds twice as much.")
    return wrong("add (k − 1) × (product of the earlier strides) for every layer, starting from 1.")


def _stripe() -> tuple[torch.Tensor, torch.Tensor]:
    """The 6×8 image of section 5.3 and its edges under the kernel [[1, −1]]."""
    stripe = torch.ones(6, 8)
    stripe[:, 2:6] = 0
    edges = F.conv2d(stripe[None, None], torch.tensor([[[[1.0, -1.0]]]]))[0, 0]
    return stripe, edges


@exercise("05.4", title="a horizontal-edge kernel", where="section 5.3")
def _kernel(K: torch.Tensor) -> Feedback:
    K = torch.as_tensor(K, dtype=torch.float32)
    if K.ndim != 2:
        return wrong(f"give a 2-D kernel [h, w]; yours has shape {tuple(K.shape)}.")
    stripe, edges = _stripe()
    if K.shape[0] > stripe.shape[1] or K.shape[1] > stripe.shape[0]:
        return wrong(f"a kernel of shape {tuple(K.shape)} does not fit into the 8×6 image stripe.T.")
    out = F.conv2d(stripe.T.contiguous()[None, None], K[None, None])[0, 0]
    if out.shape != edges.T.shape:
        return wrong(f"the output has shape {tuple(out.shape)}, edges.T has {tuple(edges.T.shape)}: "
                     f"the kernel must compare a pixel with its neighbour *below* (shape 2×1).")
    if torch.equal(out, -edges.T):
        return wrong("right place, wrong sign: swap the two entries.")
    if not torch.equal(out, edges.T):
        return wrong("the output is not edges.T: it should be +1 where white turns black going down "
                     "and −1 where black turns white.")
    return correct("the transposed kernel finds the transposed edges: a kernel detects one direction.")


@exercise("05.5", title="parameters of a conv layer", where="section 5.5")
def _params(fn: Callable[[int, int, int], int]) -> Feedback:
    for c_in, c_out, k in ((3, 16, 5), (1, 6, 5), (16, 32, 3), (64, 64, 1), (7, 2, 4)):
        truth = sum(p.numel() for p in nn.Conv2d(c_in, c_out, k).parameters())
        got = fn(c_in, c_out, k)
        if got != truth:
            weights = c_in * c_out * k * k
            hint = ("you counted the weights only: add one bias per output channel." if got == weights
                    else "the weight has shape [c_out, c_in, k, k], and there is one bias per output "
                         "channel.")
            return wrong(f"conv_params({c_in}, {c_out}, {k}) = {got}, but nn.Conv2d has {truth}: {hint}")
    return correct("c_out · (c_in · k² + 1): it does not depend on the image size.")


@exercise("05.6", title="learning the kernel without momentum", where="section 5.3",
          discuss=["how the loss curve without momentum differs from the one with it",
                   "what happens when the learning rate is too large for plain SGD",
                   "which of the two reaches a lower loss in 150 steps, and why"])
def _momentum(losses: Sequence[float]) -> Feedback:
    losses = [float(v) for v in losses]
    if len(losses) != 150:
        return wrong(f"train for 150 steps, as the chapter does; your list has {len(losses)} losses.")
    if not all(math.isfinite(v) for v in losses) or losses[-1] > losses[0]:
        return wrong("the loss grew or became inf/NaN: the learning rate is too large for plain SGD. "
                     "Try a smaller one.")
    ups = sum(b > a for a, b in zip(losses, losses[1:], strict=False))
    if ups > 3:
        return wrong(f"the loss went up {ups} times: that is what momentum does. Pass momentum=0 "
                     f"to learn_kernel.")
    if losses[-1] > 1e-3:
        return wrong(f"plain SGD is stable here but slow: the loss ends at {losses[-1]:.1e}. Raise the "
                     f"learning rate (not so far that it diverges) until it ends below 1e-3.")
    return correct(f"without momentum the loss falls steadily, to {losses[-1]:.1e} after 150 steps.")


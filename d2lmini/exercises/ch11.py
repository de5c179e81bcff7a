"""Checks for chapter 11, Fine-tuning.  Every expected value is computed here: from a freshly built
model, from the reader's own model or optimizer, or from the reader's measurements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import by_mode, is_smoke
from ..models import ModernLeNet
from . import Feedback, correct, exercise, wrong


def _smoke_note() -> str:
    return " (smoke mode: the threshold is relaxed for the tiny run)" if is_smoke() else ""


@exercise("11.1", title="the size of a head", where="section 11.3")
def _head_params(head_params: Callable[[int], int]) -> Feedback:
    for k in (2, 5, 7, 10):
        head = ModernLeNet(num_classes=k).classifier[-1]
        want = sum(p.numel() for p in head.parameters())
        got = head_params(k)
        if got != want:
            weights = head.weight.numel()
            if got == weights:
                return wrong(f"for k={k} you count only the weights: a Linear layer also has one bias "
                             f"per output.")
            return wrong(f"for k={k} your formula gives {got}; count the weights (inputs × outputs) and "
                         f"the biases of the new Linear layer, whose input is the 84 features.")
    return correct("a Linear(84, k) head has 84·k weights and k biases: 85·k parameters, the only "
                   "ones feature extraction trains.")


def _trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@exercise("11.2", title="freeze only the convolutions", where="section 11.3")
def _freeze_features(model: nn.Module, source: nn.Module) -> Feedback:
    if not isinstance(model, nn.Module) or not hasattr(model, "features"):
        return wrong("pass the ModernLeNet copy made by new_head(sources['catalogue']).")
    if model.classifier[-1].out_features != 5:
        return wrong("the model still has the source's output layer: start from new_head(...).")
    if any(p.requires_grad for p in model.features.parameters()):
        return wrong("some parameters of model.features still have requires_grad=True: loop over "
                     "model.features.parameters() (or call model.features.requires_grad_(False)).")
    if not all(p.requires_grad for p in model.classifier.parameters()):
        return wrong("you froze some of model.classifier too: only model.features should be frozen.")
    same = all(torch.equal(a, b) for a, b in zip(model.features.state_dict().values(),
                                                 source.features.state_dict().values(), strict=True))
    if not same:
        return wrong("model.features differs from the source's: it should be a copy (new_head deep-copies).")
    frozen = sum(p.numel() for p in model.features.parameters())
    return correct(f"the model trains {_trainable(model):,d} parameters and keeps the {frozen:,d} of its "
                   f"convolutions frozen: the convolutions are a small part of a LeNet, its dense "
                   f"layers hold most of the weights.")


@exercise("11.3", title="parameter groups for a ResNet", where="section 11.3")
def _groups(opt: torch.optim.Optimizer, model: nn.Module) -> Feedback:
    if not isinstance(opt, torch.optim.Optimizer):
        return wrong(f"pass an optimizer, e.g. torch.optim.Adam([...]), not a {type(opt).__name__}.")
    got = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    layer4 = {id(p) for p in model.layer4.parameters()}
    fc = {id(p) for p in model.fc.parameters()}
    if not fc <= set(got):
        return wrong("some parameters of resnet.fc are not in the optimizer (build it on the ResNet of "
                     "section 11.9, after its fc was replaced).")
    if not layer4 <= set(got):
        return wrong("some parameters of resnet.layer4 are not in the optimizer.")
    extra = set(got) - layer4 - fc
    if extra:
        return wrong(f"the optimizer also holds {len(extra)} tensors outside layer4 and fc: give it only "
                     f"those two groups.")
    if any(abs(got[i] - 1e-4) > 1e-12 for i in layer4):
        return wrong("layer4's learning rate is not 1e-4: give each group its own 'lr'.")
    if any(abs(got[i] - 1e-3) > 1e-12 for i in fc):
        return wrong("fc's learning rate is not 1e-3: give each group its own 'lr'.")
    n4 = sum(p.numel() for p in model.layer4.parameters())
    return correct(f"two groups: layer4 ({n4:,d} parameters) at 1e-4 and the new head at 1e-3; every "
                   f"other layer stays as it is, since the optimizer never sees it.")


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


@exercise("11.4", title="where to cut a narrow source", where="sections 11.4 and 11.5",
          discuss=["why features closer to the input are less specific to the source task",
                   "why the 84 features of the clothes model cannot separate shoes and bags",
                   "that fine-tuning everything still beats both cuts when the features do not fit"])
def _cut(model: nn.Module, source: nn.Module, test: Any, baseline: torch.Tensor) -> Feedback:
    from ..train import evaluate

    linears = _linear_layers(model)
    if not linears or (linears[-1].in_features, linears[-1].out_features) != (120, 5):
        return wrong("the model's last Linear layer should be a new Linear(120, 5) on the 120 features "
                     "after classifier[3].")
    src_params = {k: v for k, v in source.named_parameters() if not k.startswith("classifier.4")
                  and not k.startswith("classifier.5") and not k.startswith("classifier.7")}
    own = list(model.parameters())
    for name, p in src_params.items():
        match = [q for q in own if q.shape == p.shape and torch.equal(q.detach(), p.detach())]
        if not match:
            return wrong(f"the source's {name} is not in your model unchanged: copy the layers up to "
                         f"classifier[3] (copy.deepcopy) and freeze them before training.")
        if any(q.requires_grad for q in match):
            return wrong(f"the copy of {name} still has requires_grad=True: freeze the copied part.")
    if len(linears) != 2:
        return wrong(f"the model has {len(linears)} Linear layers; it should keep the source's first one "
                     f"(400 -> 120) and add only the new Linear(120, 5).")
    acc = evaluate(model, test, device=next(model.parameters()).device)["accuracy"]
    floor = by_mode(0.5, 0.25)
    if acc < floor:
        return wrong(f"your model reaches only {acc:.3f} on the target test set (below {floor}): was the "
                     f"new layer trained, for STEPS steps on 10 labels per class?{_smoke_note()}")
    base = float(baseline.mean())
    side = "better than" if acc > base else "not better than"
    return correct(f"cut at the 120 features, the clothes source gives {acc:.3f}, {side} feature "
                   f"extraction on its 84 features ({base:.3f} ± {float(baseline.std()):.3f} over the "
                   f"chapter's draws).{_smoke_note()}")


VERDICTS = ("transfer is better", "scratch is better", "within noise")


@exercise("11.5", title="does clothing help to read digits?", where="section 11.4",
          discuss=["how well the catalogue model's features fit strokes of digits (try feature "
                   "extraction too)",
                   "why a target from another domain gains less than the target of section 11.4",
                   "whether the answer changes with 1 or 100 labels per class"])
def _digits(answer: dict[str, Any]) -> Feedback:
    if not isinstance(answer, dict) or not {"scratch", "fine-tuning", "verdict"} <= set(answer):
        return wrong('pass a dict {"scratch": tensor, "fine-tuning": tensor, "verdict": str}.')
    a = torch.as_tensor(answer["fine-tuning"], dtype=torch.float64).flatten()
    b = torch.as_tensor(answer["scratch"], dtype=torch.float64).flatten()
    need = by_mode(3, 2)
    if len(a) < need or len(b) < need:
        return wrong(f"measure at least {need} draws of each; one draw cannot tell a gain from luck.")
    if not (0 <= float(torch.cat([a, b]).min()) and float(torch.cat([a, b]).max()) <= 1):
        return wrong("accuracies lie between 0 and 1.")
    if float(b.mean()) < by_mode(0.5, 0.15):
        return wrong(f"training from scratch reaches only {float(b.mean()):.3f}: with 10 labels per class "
                     f"and 200 steps it should learn the digits far better than chance.{_smoke_note()}")
    gap, noise = float(a.mean() - b.mean()), 2 * float(max(a.std(), b.std()))
    want = VERDICTS[0] if gap > noise else VERDICTS[1] if -gap > noise else VERDICTS[2]
    said = " ".join(str(answer["verdict"]).lower().split())
    if said not in VERDICTS:
        return wrong(f"the verdict should be one of {', '.join(repr(v) for v in VERDICTS)}.")
    if said != want:
        return wrong(f"your numbers say {want!r}: the gap of the means is {gap:+.3f}, and twice the larger "
                     f"standard deviation is {noise:.3f}.")
    return correct(f"fine-tuning {float(a.mean()):.3f} ± {float(a.std()):.3f}, from scratch "
                   f"{float(b.mean()):.3f} ± {float(b.std()):.3f}: {want}.")

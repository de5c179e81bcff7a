"""Tests for chapter 08: ResNet and its residual block (d2lmini.models), the chapter's batch
normalization from scratch against nn.BatchNorm2d, and resuming the LR 0.1 -> 0.01 recipe from a
checkpoint whose weights sit under 'net'; and the checks of the chapter's exercises."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torchinfo import summary

import d2lmini as d2l
from d2lmini import exercises
from d2lmini.exercises import check
from d2lmini.models import ResidualBlock, ResNet

CHAPTER = Path(__file__).resolve().parent.parent / "notebooks" / "08_modern_cnns.ipynb"

# ResNet-20 by hand (3x3 convolutions without bias, each followed by BN with 2 parameters per channel):
STEM = 3 * 16 * 9 + 2 * 16
BLOCK = {c: 2 * (c * c * 9 + 2 * c) for c in (16, 32, 64)}
FIRST = {32: 16 * 32 * 9 + 32 * 32 * 9 + 4 * 32, 64: 32 * 64 * 9 + 64 * 64 * 9 + 4 * 64}
PROJECTION = 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64  # the two 1x1 convolutions with their BN
HEAD = 64 * 10 + 10
PLAIN20 = STEM + 3 * BLOCK[16] + FIRST[32] + 2 * BLOCK[32] + FIRST[64] + 2 * BLOCK[64] + HEAD


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_resnet20_shape_and_parameter_count():
    net = ResNet().eval()
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert PLAIN20 == 269_722  # He et al. (2016), table 6: 0.27 M (identity shortcuts, "option A")
    assert n_params(net) == PLAIN20 + PROJECTION == 272_474
    assert summary(net, input_size=(1, 3, 32, 32), verbose=0).total_params == 272_474
    assert n_params(ResNet(skip=False)) == PLAIN20  # the plain network: no shortcuts, no projections


def test_fashion_mnist_variant_and_any_image_size():
    net = ResNet(depth=8, in_channels=1, num_classes=4).eval()
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 4)
    assert net.stage3(net.stage2(net.stage1(net.stem(torch.rand(1, 1, 28, 28))))).shape == (1, 64, 7, 7)


@pytest.mark.parametrize("depth", [8, 14, 20, 56])
def test_depth_counts_the_weighted_layers(depth):
    net = ResNet(depth=depth)
    convs3 = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    linear = [m for m in net.modules() if isinstance(m, nn.Linear)]
    projections = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(convs3) + len(linear) == depth
    assert len(projections) == 2 and all(p.stride == (2, 2) for p in projections)


@pytest.mark.parametrize("depth", [7, 21, 2, 0])
def test_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match=r"6n \+ 2"):
        ResNet(depth=depth)


def test_wrong_channels_are_explained():
    with pytest.raises(ValueError, match=r"ResNet expects 3 channel\(s\).*got 1"):
        ResNet()(torch.rand(2, 1, 32, 32))


def test_block_adds_its_input_and_projects_when_the_shape_changes():
    torch.manual_seed(0)
    same = ResidualBlock(16, 16).eval()
    assert isinstance(same.shortcut, nn.Identity)
    nn.init.zeros_(same.bn2.weight)  # F(x) = 0: the block passes relu(x) through
    x = torch.randn(2, 16, 8, 8)
    assert torch.allclose(same(x), x.relu())
    down = ResidualBlock(16, 32, stride=2)
    conv = down.shortcut[0]
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
    assert isinstance(down.shortcut[1], nn.BatchNorm2d)
    assert down(x).shape == (2, 32, 4, 4)
    plain = ResidualBlock(16, 32, stride=2, skip=False)
    assert plain.shortcut is None and plain(x).shape == (2, 32, 4, 4)


def test_without_batch_norm_the_convolutions_get_biases():
    net = ResNet(depth=8, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert all(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 10)


def _grad_norms(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    nn.functional.cross_entropy(net(x), y).backward()
    return torch.tensor([m.weight.grad.norm() for m in net.modules()
                         if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)])


def test_skip_connections_keep_the_gradient_norms_level_at_initialisation():
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    spread = {}
    for skip in (False, True):
        torch.manual_seed(0)
        g = _grad_norms(ResNet(56, in_channels=1, width=8, skip=skip), x, y)
        spread[skip] = (g.max() / g.min()).item()
    assert spread[False] > 100 and spread[True] < 30  # plain: exploding toward the input


# --------------------------------------------------------------------- the chapter's batch norm

def _chapter_cell(prefix: str) -> str:
    cells = json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]
    found = ["".join(c["source"]) for c in cells
             if c["cell_type"] == "code" and "".join(c["source"]).startswith(prefix)]
    assert len(found) == 1, f"chapter 08 should have one code cell starting with {prefix!r}"
    return found[0]


@pytest.fixture(scope="module")
def chapter_bn():
    ns: dict = {"torch": torch, "nn": nn}
    exec(_chapter_cell("def batch_norm("), ns)  # noqa: S102 - the chapter's own code, from the repository
    exec(_chapter_cell("class BatchNorm("), ns)  # noqa: S102
    return ns["BatchNorm"]


def test_batch_norm_from_scratch_matches_pytorch_in_both_modes(chapter_bn):
    torch.manual_seed(0)
    ours, theirs = chapter_bn(6), nn.BatchNorm2d(6)
    gamma, beta = torch.rand(6) + 0.5, torch.randn(6)
    with torch.no_grad():
        for bn in (ours, theirs):
            bn.weight.copy_(gamma)
            bn.bias.copy_(beta)
    for step in range(3):  # training mode: batch statistics; the running estimates follow them
        x = torch.randn(8, 6, 5, 5) * (step + 1) + step
        assert torch.allclose(ours.train()(x), theirs.train()(x), atol=1e-5)
    assert torch.allclose(ours.running_mean, theirs.running_mean, atol=1e-6)
    assert torch.allclose(ours.running_var, theirs.running_var, atol=1e-5)
    x = torch.randn(4, 6, 5, 5, requires_grad=True)
    out_ours, out_theirs = ours.eval()(x), theirs.eval()(x)  # evaluation mode: the running estimates
    assert torch.allclose(out_ours, out_theirs, atol=1e-5)
    g_ours = torch.autograd.grad(out_ours.square().sum(), x)[0]
    g_theirs = torch.autograd.grad(out_theirs.square().sum(), x)[0]
    assert torch.allclose(g_ours, g_theirs, atol=1e-4)


# ------------------------------------------------------------------ resuming from the 'net' checkpoint

class SaveAfter(d2l.Callback):
    """The chapter's checkpoint: after epoch ``epoch``, a plain dict with the weights under 'net'."""

    order = 50  # after the LR scheduler has stepped

    def __init__(self, epoch: int, path: Path) -> None:
        self.epoch, self.path = epoch, path

    def after_epoch(self, learn):
        if learn.epoch == self.epoch:
            torch.save({"net": learn.model.state_dict(), "optimizer": learn.opt.state_dict(),
                        "scheduler": learn.scheduler.state_dict(), "epoch": learn.epoch,
                        "data": learn.train_data.state_dict()}, self.path)


def _recipe(data, path=None):
    net = ResNet(depth=8, width=4)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2], gamma=0.1)
    cbs = [d2l.LRScheduler(sched)] + ([SaveAfter(2, path)] if path else [])
    return net, opt, sched, d2l.Learner(net, data, data, opt=opt, callbacks=cbs, device="cpu")


@pytest.fixture
def tiny_data():
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (48, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (48,), generator=g)
    return d2l.TensorLoader(X, y, batch_size=16, shuffle=True, seed=0,
                            transform=d2l.RandomFlipShift(max_shift=2, seed=0))


def test_resuming_from_net_reaches_the_same_numbers(tmp_path, tiny_data):
    path = tmp_path / "resnet_epoch2.pt"
    torch.manual_seed(0)
    net, _, _, learn = _recipe(tiny_data, path)
    full = learn.fit(4).history                         # uninterrupted: 2 epochs at 0.1, 2 at 0.01

    ckpt = torch.load(path, weights_only=True)
    torch.manual_seed(123)                              # the fresh model's own weights do not matter
    net2, opt2, sched2, learn2 = _recipe(tiny_data)
    net2.load_state_dict(ckpt["net"])                   # the notes' shortcut
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    tiny_data.load_state_dict(ckpt["data"])
    learn2.epoch = ckpt["epoch"]
    resumed = learn2.fit(2).history
    assert full["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert resumed["lr"] == pytest.approx([0.01, 0.01])
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert resumed[key] == full[key][2:], key
    for a, b in zip(net.state_dict().values(), net2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_restoring_only_net_loses_the_momentum(tmp_path, tiny_data):
    path = tmp_path / "resnet_epoch2.pt"
    torch.manual_seed(0)
    _, _, _, learn = _recipe(tiny_data, path)
    full = learn.fit(4).history
    ckpt = torch.load(path, weights_only=True)
    net2 = ResNet(depth=8, width=4)
    net2.load_state_dict(ckpt["net"])                   # only the weights, a new optimizer at LR 0.01
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    tiny_data.load_state_dict(ckpt["data"])
    learn2 = d2l.Learner(net2, tiny_data, tiny_data, opt=opt2, device="cpu")
    learn2.epoch = ckpt["epoch"]
    resumed = learn2.fit(2).history
    assert resumed["lr"] == pytest.approx(full["lr"][2:])
    assert resumed["loss"] != full["loss"][2:]  # a fresh optimizer has no momentum buffers


# ------------------------------------------------------------------------- the chapter's exercise checks


def test_every_exercise_of_chapter_08_has_a_check():
    assert exercises.exercises_of(8) == ["08.1", "08.2", "08.3", "08.4", "08.5"]
    assert check("08.1", None).status == "unanswered"


def test_check_08_1_reruns_one_run_of_the_readers_table():
    def train_fn(depth, skip, seed):
        return [2.0] * 8

    table = {(d, s): [2.0, 2.1, 1.9] for d in (8, 14, 20) for s in (False, True)}
    assert check("08.1", table, train_fn=train_fn)
    table[(8, False)] = [1.5, 2.1, 1.9]
    v = check("08.1", table, train_fn=train_fn)
    assert not v and "train_briefly(8, False, seed=0) gives a final loss of 2.0000" in v.message
    del table[(20, True)]
    assert "missing: [(20, True)]" in check("08.1", table).message


def test_check_08_2_wants_the_drop_where_it_says_and_validation_data():
    def run(m, acc):
        return {"lr": [0.1] * m + [0.01] * (10 - m), "val_accuracy": [acc] * 10}

    v = check("08.2", {3: run(3, 0.8), 7: run(7, 0.85)})
    assert v and "best here: after epoch 7" in v.message
    v = check("08.2", {3: run(4, 0.8), 7: run(7, 0.85)})
    assert not v and "milestones=[3]" in v.message
    no_val = {k: {"lr": r["lr"]} for k, r in {3: run(3, 0.8), 7: run(7, 0.8)}.items()}
    assert "never on the test set" in check("08.2", no_val).message


def test_check_08_3_simulates_batch_norm():
    right = {m: math.ceil(math.log(0.01) / math.log(1 - m)) for m in (0.1, 0.01)}
    assert check("08.3", right)
    assert "off by one" in check("08.3", {0.1: right[0.1] - 1, 0.01: right[0.01]}).message
    assert "time constant" in check("08.3", {0.1: 10, 0.01: right[0.01]}).message


def test_check_08_4_converts_he_et_als_iterations():
    per_epoch = 45_000 / 128
    right = {"epochs": 64_000 / per_epoch, "milestones": [32_000 / per_epoch, 48_000 / per_epoch],
             "hours": 64_000 * 128 / 400 / 3600}
    assert check("08.4", right, images_per_second=400)
    assert "epochs" in check("08.4", {**right, "epochs": 10}, images_per_second=400).message
    assert "hours" in check("08.4", {**right, "hours": 1.0}, images_per_second=400).message


def test_check_08_5_offline_runs_the_recipe_on_a_stand_in():
    def untrained(loaders):
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))

    def trained(loaders):
        torch.manual_seed(0)
        net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 64), nn.ReLU(),
                            nn.Linear(64, 10))
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[5], gamma=0.1)
        h = d2l.fit(net, loaders.train, epochs=10, opt=opt, callbacks=[d2l.LRScheduler(sched)],
                    verbose=False, device="cpu")
        return net, h

    v = check("08.5", trained, data="Fashion-MNIST")
    assert v and "70 % target itself is checked only on CIFAR-10" in v.message
    assert not check("08.5", untrained, data="Fashion-MNIST")

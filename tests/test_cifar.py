"""Tests for d2lmini.cifar: the CIFAR-10 path end to end on a small folder in the real CIFAR-10
python-batch layout (made here, so no network is needed), and the messages for a missing or corrupt
CIFAR-10."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar
from torchvision.datasets import CIFAR10

import d2lmini as d2l
from d2lmini import cifar
from d2lmini.models import ResNet

N = 12  # images per batch file (the real files hold 10,000)
BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_cifar_folder(root, n: int = N, seed: int = 0) -> dict[str, str]:
    """Write ``root/cifar-10-batches-py/`` as the CIFAR-10 "python version" lays it out: pickled dicts
    with ``data`` (``uint8 [n, 3072]``: 1,024 red, then green, then blue values, row by row) and
    ``labels``, plus ``batches.meta``.  Returns each file's MD5."""
    rng = np.random.default_rng(seed)
    folder = root / cifar.FOLDER
    folder.mkdir(parents=True)
    for k, name in enumerate([*BATCHES, "test_batch"]):
        entry = {"batch_label": f"batch {k + 1} of 6",
                 "labels": [int(v) for v in rng.integers(0, 10, n)],
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "filenames": [f"img_{k}_{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    meta = {"label_names": list(cifar.CIFAR10_CLASSES), "num_cases_per_batch": n, "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return {p.name: _md5(p) for p in folder.iterdir()}


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails as it does offline (and is recorded)."""
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    return calls


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch, no_network):
    """A generated CIFAR-10 folder whose checksums torchvision accepts (its MD5 table patched)."""
    md5 = make_cifar_folder(tmp_path)
    monkeypatch.setattr(CIFAR10, "train_list", [[b, md5[b]] for b in BATCHES])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5["batches.meta"]})
    cifar._cifar_tensors.cache_clear()
    yield tmp_path
    cifar._cifar_tensors.cache_clear()


def test_tensors_keep_the_channel_row_column_layout(fake_cifar):
    X, y = cifar.cifar10_tensors(True, fake_cifar)
    Xt, yt = cifar.cifar10_tensors(False, fake_cifar)
    assert X.shape == (5 * N, 3, 32, 32) and X.dtype == torch.uint8 and y.dtype == torch.int64
    assert Xt.shape == (N, 3, 32, 32) and len(yt) == N
    with open(fake_cifar / cifar.FOLDER / "data_batch_2", "rb") as f:
        entry = pickle.load(f)
    i, c, r, col = 3, 2, 7, 30  # image 3 of batch 2: blue channel, row 7, column 30
    assert X[N + i, c, r, col].item() == entry["data"][i, c * 1024 + r * 32 + col]
    assert y[N:2 * N].tolist() == entry["labels"]
    assert cifar.cifar10_tensors(True, fake_cifar)[0] is X  # cached


def test_loaders_split_normalise_and_augment_only_training(fake_cifar):
    aug = d2l.RandomFlipShift(p_flip=0.5, max_shift=4, seed=0)
    loaders = cifar.cifar10_loaders(batch_size=8, val_size=10, n_train=40, n_test=6, transform=aug,
                                    root=fake_cifar)
    assert (len(loaders.train.X), len(loaders.val.X), len(loaders.test.X)) == (40, 10, 6)
    xb, yb = next(iter(loaders.test))
    Xt, yt = cifar.cifar10_tensors(False, fake_cifar)
    mean = torch.tensor(cifar.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(cifar.CIFAR10_STD).view(1, 3, 1, 1)
    assert torch.allclose(xb, (Xt[:6].float() / 255 - mean) / std, atol=1e-6)  # normalised, no augmentation
    assert torch.equal(yb, yt[:6])
    train_x = next(iter(loaders.train))[0]
    plain = cifar.cifar10_loaders(batch_size=8, val_size=10, n_train=40, n_test=6, root=fake_cifar)
    assert not torch.allclose(train_x, next(iter(plain.train))[0])  # flipped and shifted
    # validation and training never share an image; val_size=0 keeps all 60 for training
    assert cifar.cifar10_loaders(val_size=0, n_train=5 * N, root=fake_cifar).train.X.shape[0] == 5 * N
    with pytest.raises(ValueError, match="n_train must be from 1 to 50"):
        cifar.cifar10_loaders(val_size=10, n_train=51, root=fake_cifar)


def test_the_loaders_state_carries_the_augmentations_random_state(fake_cifar):
    def loaders():
        aug = d2l.RandomFlipShift(max_shift=4, seed=3)
        return cifar.cifar10_loaders(batch_size=8, val_size=0, n_train=16, transform=aug, root=fake_cifar)

    a, b = loaders(), loaders()
    next(iter(a.train))
    b.train.load_state_dict(a.train.state_dict())
    assert torch.equal(next(iter(a.train))[0], next(iter(b.train))[0])


def test_resnet_trains_on_the_generated_cifar_folder(fake_cifar):
    torch.manual_seed(0)
    loaders = cifar.cifar10_loaders(batch_size=16, val_size=0, n_train=48, n_test=12,
                                    transform=d2l.RandomFlipShift(max_shift=4, seed=0), root=fake_cifar)
    net = ResNet(depth=8)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    history = d2l.fit(net, loaders.train, epochs=2, opt=opt, val_data=loaders.test, verbose=False,
                      device="cpu")
    assert history.epochs == 2 and len(history.step_loss) == 6
    assert all(np.isfinite(history.history["val_loss"]))


def test_a_generated_tarball_in_the_data_folder_is_unpacked_without_a_download(tmp_path, monkeypatch,
                                                                                no_network):
    src = tmp_path / "src"
    md5 = make_cifar_folder(src)
    root = tmp_path / "data"
    root.mkdir()
    tgz = root / CIFAR10.filename
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(src / cifar.FOLDER, arcname=cifar.FOLDER)
    monkeypatch.setattr(CIFAR10, "train_list", [[b, md5[b]] for b in BATCHES])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5["batches.meta"]})
    monkeypatch.setattr(CIFAR10, "tgz_md5", _md5(tgz))
    from torchvision.datasets.utils import download_and_extract_archive

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", download_and_extract_archive)
    ds = cifar.load_cifar10(train=False, root=root)
    assert len(ds) == N and cifar.check_cifar10(root)
    assert no_network == []


def test_no_cifar_and_no_network_is_one_clear_sentence(tmp_path, no_network):
    with pytest.raises(d2l.DatasetUnavailableError) as info:
        cifar.load_cifar10(root=tmp_path)
    first, *rest = str(info.value).splitlines()
    assert first.startswith("CIFAR-10 could not be downloaded (URLError") and first.endswith(").")
    assert "cifar-10-python.tar.gz" in "\n".join(rest) and "internet" in "\n".join(rest)
    assert no_network and list(tmp_path.iterdir()) == []  # nothing half-downloaded left behind
    with pytest.raises(d2l.DatasetUnavailableError, match="CIFAR-10 could not be downloaded"):
        cifar.cifar10_loaders(root=tmp_path)


def test_a_truncated_batch_is_named_and_nothing_is_downloaded(fake_cifar, no_network):
    path = fake_cifar / cifar.FOLDER / "data_batch_3"
    good = path.read_bytes()
    path.write_bytes(good[:100])
    with pytest.raises(d2l.errors.DatasetCorruptError, match=r"data_batch_3 is truncated or corrupt.*Delete"):
        cifar.load_cifar10(root=fake_cifar)
    path.write_bytes(good)
    assert cifar.check_cifar10(fake_cifar)
    (fake_cifar / cifar.FOLDER / "test_batch").unlink()
    with pytest.raises(d2l.errors.DatasetCorruptError, match="test_batch is missing"):
        cifar.check_cifar10(fake_cifar)
    assert no_network == []


def test_the_real_checksums_are_torchvisions():
    names = [name for name, _ in cifar._files()]
    assert names == [*BATCHES, "test_batch", "batches.meta"]
    assert dict(cifar._files())["test_batch"] == "40351d587109b95175f43aff81a1287e"

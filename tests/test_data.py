import gzip

import pytest
import torch

import d2lmini as d2l
from d2lmini.data import _FILES
from tests.conftest import write_idx


def test_mirror_is_found_and_decompressed(fake_mirror):
    mirror, root = fake_mirror
    assert d2l.prepare_fashion_mnist() == root
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(_FILES)
    ds = d2l.load_fashion_mnist(train=False)
    assert len(ds) == 10000
    X, y = d2l.fashion_mnist_tensors(train=False, root=root)
    assert X.shape == (10000, 28, 28) and X.dtype == torch.uint8 and y.dtype == torch.int64


def test_decompressed_mirror_files_work_too(tmp_path, monkeypatch):
    mirror = tmp_path / "m"
    mirror.mkdir()
    for name in _FILES:
        write_idx(mirror / name, name)
    monkeypatch.setenv("D2LMINI_FASHION_MNIST_MIRROR", str(mirror))
    root = d2l.prepare_fashion_mnist(tmp_path / "root")
    assert (root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").stat().st_size == 8 + 10000


def test_truncated_mirror_file_is_named_and_nothing_left_behind(fake_mirror):
    mirror, root = fake_mirror
    bad = mirror / "train-images-idx3-ubyte.gz"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(d2l.DatasetCorruptError) as err:
        d2l.prepare_fashion_mnist()
    assert "train-images-idx3-ubyte.gz" in str(err.value) and "reinstall" in str(err.value).lower()
    raw = root / "FashionMNIST" / "raw"
    assert not (raw / "train-images-idx3-ubyte").exists()
    assert not any(p.name.endswith(".partial") for p in raw.iterdir())


def test_wrong_content_in_mirror_is_detected(fake_mirror):
    mirror, _ = fake_mirror
    with gzip.open(mirror / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"not an idx file at all")
    with pytest.raises(d2l.DatasetCorruptError, match="t10k-labels"):
        d2l.prepare_fashion_mnist()


def test_corrupt_file_already_in_data_root(fake_mirror):
    _, root = fake_mirror
    d2l.prepare_fashion_mnist()
    path = root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(d2l.DatasetCorruptError, match="Delete it"):
        d2l.prepare_fashion_mnist()


def test_no_dataset_and_no_network_gives_one_clear_message(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("D2LMINI_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("D2LMINI_FASHION_MNIST_MIRROR", str(tmp_path / "empty"))
    monkeypatch.setattr("d2lmini.config.DEBIAN_FASHION_MNIST", tmp_path / "none")
    with pytest.raises(d2l.DatasetUnavailableError) as err:
        d2l.load_fashion_mnist(train=True)
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "D2LMINI_FASHION_MNIST_MIRROR" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert list(raw.iterdir()) == []  # nothing half-downloaded left behind
    # in Jupyter the error renders as one line, not a traceback
    assert len(err.value._render_traceback_()) == 1


def test_tensor_loader_shapes_dtypes_and_len():
    X = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8)
    y = torch.arange(10)
    loader = d2l.TensorLoader(X, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    xb, yb = batches[0]
    assert xb.shape == (4, 1, 28, 28) and xb.dtype == torch.float32
    assert torch.allclose(xb[0, 0], X[0].float() / 255)
    assert yb.tolist() == [0, 1, 2, 3]
    assert len(d2l.TensorLoader(X, y, batch_size=4, drop_last=True)) == 2
    assert [len(b) for _, b in d2l.TensorLoader(X, y, batch_size=4, drop_last=True)] == [4, 4]
    assert len(loader.dataset) == 10


def test_tensor_loader_shuffles_deterministically_by_seed_and_epoch():
    X, y = torch.arange(100).float().unsqueeze(1), torch.arange(100)
    a = d2l.TensorLoader(X, y, batch_size=100, shuffle=True, seed=1)
    b = d2l.TensorLoader(X, y, batch_size=100, shuffle=True, seed=1)
    ea1, ea2 = next(iter(a))[1], next(iter(a))[1]
    assert torch.equal(ea1, next(iter(b))[1])          # same seed, same epoch -> same order
    assert not torch.equal(ea1, ea2)                    # next epoch -> new order
    assert sorted(ea1.tolist()) == list(range(100))     # a permutation, nothing lost
    b.set_epoch(1)
    assert torch.equal(next(iter(b))[1], ea2)           # set_epoch reproduces epoch 1
    c = d2l.TensorLoader(X, y, batch_size=100, shuffle=True, seed=2)
    assert not torch.equal(next(iter(c))[1], ea1)


def test_tensor_loader_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="5 items but y has 4"):
        d2l.TensorLoader(torch.zeros(5, 2), torch.zeros(4))


def test_tensor_loader_applies_transform():
    X, y = torch.zeros(6, 28, 28, dtype=torch.uint8), torch.zeros(6, dtype=torch.int64)
    loader = d2l.TensorLoader(X, y, batch_size=3, transform=lambda xb: xb + 1)
    assert all(torch.all(xb == 1) for xb, _ in loader)


def test_random_flip_shift_per_image_and_reproducible():
    xb = torch.zeros(64, 1, 8, 8)
    xb[:, :, 2:6, 1] = 1.0  # a vertical bar near the left edge
    out = d2l.RandomFlipShift(p_flip=0.5, max_shift=1, seed=0)(xb)
    assert out.shape == xb.shape
    assert torch.allclose(out.sum(dim=(1, 2, 3)), xb.sum(dim=(1, 2, 3)))  # a 1-px shift keeps the bar
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) > 4  # images augmented independently
    again = d2l.RandomFlipShift(p_flip=0.5, max_shift=1, seed=0)(xb)
    assert torch.equal(out, again)
    flipped = d2l.RandomFlipShift(p_flip=1.0, max_shift=0)(xb)
    assert torch.equal(flipped, xb.flip(-1))


def test_fashion_mnist_loaders_split_sizes(fake_mirror, monkeypatch):
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    L = d2l.fashion_mnist_loaders(batch_size=500, val_size=1000)
    assert (len(L.train.X), len(L.val.X), len(L.test.X)) == (59000, 1000, 10000)
    assert L.train.shuffle and not L.val.shuffle
    monkeypatch.setenv("D2LMINI_SMOKE", "1")
    S = d2l.fashion_mnist_loaders(batch_size=500, val_size=1000)
    assert (len(S.train.X), len(S.val.X), len(S.test.X)) == (2000, 500, 1000)


def test_fashion_mnist_val_and_train_disjoint(fake_mirror):
    L = d2l.fashion_mnist_loaders(batch_size=100, val_size=200, n_train=300, n_test=50)
    tr = {tuple(x.flatten()[:40].tolist()) for x in L.train.X}
    va = {tuple(x.flatten()[:40].tolist()) for x in L.val.X}
    assert not tr & va


def test_torchvision_loader_matches_tensor_path(fake_mirror):
    dl = d2l.torchvision_loader(train=False, batch_size=16, shuffle=False)
    xb, yb = next(iter(dl))
    X, y = d2l.fashion_mnist_tensors(train=False)
    tb, tyb = next(iter(d2l.TensorLoader(X, y, batch_size=16)))
    assert torch.allclose(xb, tb) and torch.equal(yb, tyb)


def test_digits_tensors():
    X, y = d2l.digits_tensors()
    assert X.shape == (1797, 1, 8, 8) and 0 <= X.min() and X.max() <= 1
    assert set(y.tolist()) == set(range(10))


def test_class_names():
    assert len(d2l.FASHION_MNIST_CLASSES) == 10 and d2l.FASHION_MNIST_CLASSES[9] == "Ankle boot"

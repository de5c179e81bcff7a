import gzip

import pytest
import torch

import d2lmini as d2l
from d2lmini.data import _FILES
from tests.conftest import write_idx


def test_mirror_is_found_and_decompressed(fake_mirror):
    mirror, root = fake_mirror
    assert d2l.data.prepare_fashion_mnist() == root
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
    root = d2l.data.prepare_fashion_mnist(tmp_path / "root")
    assert (root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").stat().st_size == 8 + 10000


def test_truncated_mirror_file_is_named_and_nothing_left_behind(fake_mirror):
    mirror, root = fake_mirror
    bad = mirror / "train-images-idx3-ubyte.gz"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(d2l.errors.DatasetCorruptError) as err:
        d2l.data.prepare_fashion_mnist()
    assert "train-images-idx3-ubyte.gz" in str(err.value) and "reinstall" in str(err.value).lower()
    raw = root / "FashionMNIST" / "raw"
    assert not (raw / "train-images-idx3-ubyte").exists()
    assert not any(p.name.endswith(".partial") for p in raw.iterdir())


def test_wrong_content_in_mirror_is_detected(fake_mirror):
    mirror, _ = fake_mirror
    with gzip.open(mirror / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"not an idx file at all")
    with pytest.raises(d2l.errors.DatasetCorruptError, match="t10k-labels"):
        d2l.data.prepare_fashion_mnist()


def test_corrupt_file_already_in_data_root(fake_mirror):
    _, root = fake_mirror
    d2l.data.prepare_fashion_mnist()
    path = root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(d2l.errors.DatasetCorruptError, match="Delete it"):
        d2l.data.prepare_fashion_mnist()


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


def test_debian_mirror_path_is_discovered_without_any_setting(tmp_path, monkeypatch):
    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    debian.mkdir()
    for name in _FILES:
        write_idx(debian / f"{name}.gz", name, gz=True)
    monkeypatch.delenv("D2LMINI_FASHION_MNIST_MIRROR", raising=False)
    monkeypatch.setattr("d2lmini.config.DEBIAN_FASHION_MNIST", debian)
    from d2lmini import config

    assert config.mirror_dirs() == [debian]
    root = d2l.data.prepare_fashion_mnist(tmp_path / "root")
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(_FILES)
    assert (raw / "t10k-labels-idx1-ubyte").stat().st_size == 8 + 10000


def test_a_truncated_download_is_caught_after_torchvision_returns(tmp_path, monkeypatch):
    """torchvision 'succeeds' but leaves a short file: the check after the download names it."""
    monkeypatch.setenv("D2LMINI_FASHION_MNIST_MIRROR", str(tmp_path / "empty"))
    monkeypatch.setattr("d2lmini.config.DEBIAN_FASHION_MNIST", tmp_path / "none")

    class FakeFashionMNIST:
        def __init__(self, root, train, download, transform):
            raw = tmp_path / "data" / "FashionMNIST" / "raw"
            for name in _FILES:
                write_idx(raw / name, name, n=10 if name == "t10k-images-idx3-ubyte" else None)

    monkeypatch.setattr("torchvision.datasets.FashionMNIST", FakeFashionMNIST)
    with pytest.raises(d2l.errors.DatasetCorruptError, match="t10k-images-idx3-ubyte.*expected 7840016"):
        d2l.load_fashion_mnist(train=False, root=tmp_path / "data")


def test_tensor_loader_rejects_bad_batch_sizes():
    X, y = torch.zeros(4, 2), torch.zeros(4)
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match=f"batch_size must be a whole number >= 1, got {bad!r}"):
            d2l.TensorLoader(X, y, batch_size=bad)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_train": 59000, "val_size": 5000}, r"n_train must be a whole number from 1 to 55,000 .*overlap"),
    ({"n_train": -5}, "n_train must be a whole number from 1"),
    ({"n_train": 0}, "n_train must be"),
    ({"val_size": 0}, "val_size must be a whole number from 1 to 59,999"),
    ({"val_size": 60000}, "val_size must be"),
    ({"n_test": 10001}, "n_test must be a whole number from 1 to 10,000"),
    ({"n_train": 100.0}, "got 100.0"),
])
def test_fashion_mnist_loaders_refuse_sizes_that_overlap_or_make_no_sense(monkeypatch, kwargs, match):
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    monkeypatch.setattr("d2lmini.data.fashion_mnist_tensors", None)  # refused before any data is loaded
    with pytest.raises(ValueError, match=match):
        d2l.fashion_mnist_loaders(**kwargs)


def test_fashion_mnist_loaders_largest_train_set_fits(fake_mirror, monkeypatch):
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    L = d2l.fashion_mnist_loaders(n_train=55000, val_size=5000, n_test=10)
    assert isinstance(L, d2l.data.Loaders)
    assert (len(L.train.X), len(L.val.X), len(L.test.X)) == (55000, 5000, 10)


def test_mean_and_std_constants_match_the_training_pixels():
    X, _ = d2l.fashion_mnist_tensors(train=True)
    if len(X) != 60000 or X.float().mean() < 60:  # the fake files of another test: random pixels
        pytest.skip("needs the real Fashion-MNIST")
    pixels = X.float() / 255
    assert pixels.mean().item() == pytest.approx(d2l.FASHION_MNIST_MEAN, abs=5e-4)
    assert pixels.std().item() == pytest.approx(d2l.FASHION_MNIST_STD, abs=5e-4)


def test_placement_decision():
    from d2lmini.data import placement

    assert placement(47_000_000, "cpu", None) == "cpu"
    assert placement(47_000_000, "cuda", 40 << 30) == "device"   # 47 MB on a 40 GB GPU: once
    assert placement(3 << 30, "cuda", 8 << 30) == "cpu"          # 3 GB of an 8 GB GPU: sent per batch
    assert placement(2 << 30, "cuda", 8 << 30) == "device"
    assert placement(2 << 30, "mps", None) == "cpu" and placement(1 << 20, "mps", None) == "device"


def test_to_moves_the_data_once_when_it_fits(monkeypatch):
    X, y = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8), torch.arange(10)
    loader = d2l.TensorLoader(X, y, batch_size=4)
    assert loader.nbytes == 10 * 784 + 10 * 8
    monkeypatch.setattr("d2lmini.data.placement", lambda nbytes, device, free: "device")
    assert loader.to("meta") is loader and loader.X.device.type == "meta" and loader.send_to is None
    xb, yb = next(iter(loader))
    assert xb.device.type == "meta" and xb.dtype == torch.float32 and xb.shape == (4, 1, 28, 28)


def test_to_streams_uint8_batches_when_the_data_is_too_big(monkeypatch):
    """Data kept on the CPU: each batch is sent as uint8 (a quarter of the float bytes) and converted on
    the device.  ('meta' stands in for a GPU: it has no memory, only shapes and dtypes.)"""
    X, y = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8), torch.arange(10)
    loader = d2l.TensorLoader(X, y, batch_size=4, shuffle=True)
    monkeypatch.setattr("d2lmini.data.placement", lambda nbytes, device, free: "cpu")
    sent = []
    real_send = d2l.TensorLoader._send
    monkeypatch.setattr(d2l.TensorLoader, "_send", lambda self, t: sent.append(t.dtype) or real_send(self, t))
    loader.to("meta")
    assert loader.X.device.type == "cpu" and loader.send_to == torch.device("meta")
    batches = list(loader)
    assert [xb.device.type for xb, _ in batches] == ["meta"] * 3
    assert all(xb.dtype == torch.float32 and xb.shape[1] == 1 for xb, _ in batches)
    assert sent == [torch.uint8, torch.int64] * 3
    loader.to("cpu")
    assert loader.send_to is None and next(iter(loader))[0].device.type == "cpu"


def test_loader_state_roundtrip_keeps_the_augmentation_stream():
    X, y = torch.rand(8, 1, 6, 6), torch.arange(8)
    a = d2l.TensorLoader(X, y, batch_size=4, shuffle=True, transform=d2l.RandomFlipShift(seed=0))
    list(a)
    state = a.state_dict()
    assert state["epoch"] == 1 and "generator" in state["transform"]
    b = d2l.TensorLoader(X, y, batch_size=4, shuffle=True, transform=d2l.RandomFlipShift(seed=99))
    b.load_state_dict(state)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)

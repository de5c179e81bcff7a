import pickle

import pytest
import torch
from torch import nn

import d2lmini as d2l


class Boom:
    def __reduce__(self):
        return (print, ("this would run when unpickled",))


def test_roundtrip_model_optimizer_extras(tmp_path):
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = d2l.save_checkpoint(tmp_path / "a" / "ck.pt", net, opt, epoch=3, history={"loss": [1.0, 0.5]})
    assert not (tmp_path / "a" / "ck.pt.partial").exists()
    net2 = nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.01)
    ck = d2l.load_checkpoint(path, net2, opt2)
    assert ck["epoch"] == 3 and ck["history"] == {"loss": [1.0, 0.5]}
    assert torch.equal(net.weight, net2.weight)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_restores_rng_state(tmp_path):
    torch.manual_seed(5)
    path = d2l.save_checkpoint(tmp_path / "ck.pt", nn.Linear(1, 1))
    expected = torch.rand(3)
    torch.manual_seed(99)
    d2l.load_checkpoint(path)
    assert torch.equal(torch.rand(3), expected)


def test_crafted_pickle_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": Boom()}, path)
    with pytest.raises(d2l.CheckpointError, match="not a weights-only checkpoint"):
        d2l.load_checkpoint(path, nn.Linear(1, 1))
    assert "would run" not in capsys.readouterr().out
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(d2l.CheckpointError):
        d2l.load_checkpoint(raw)


def test_different_architecture_names_the_layers(tmp_path):
    path = d2l.save_checkpoint(tmp_path / "ck.pt", nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))
    with pytest.raises(d2l.CheckpointError) as err:
        d2l.load_checkpoint(path, nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 2)))
    msg = str(err.value)
    assert "different architecture" in msg and "0.weight: checkpoint (8, 4) vs model (16, 4)" in msg
    with pytest.raises(d2l.CheckpointError, match="missing in the checkpoint: 2.weight"):
        d2l.load_checkpoint(path, nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(2, 2)))


def test_truncated_and_missing_files(tmp_path):
    path = d2l.save_checkpoint(tmp_path / "ck.pt", nn.Linear(50, 50))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(d2l.CheckpointError, match="truncated or corrupt"):
        d2l.load_checkpoint(path, nn.Linear(50, 50))
    with pytest.raises(d2l.CheckpointError, match="No checkpoint at"):
        d2l.load_checkpoint(tmp_path / "nope.pt")


def test_not_a_checkpoint_dict(tmp_path):
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(d2l.CheckpointError, match="no 'model' state_dict"):
        d2l.load_checkpoint(path)

import string

import pytest
import torch
from torch import nn

import d2lmini as d2l
from d2lmini import messages as M

SAMPLE = {  # one set of field values for every field name used by the catalogue
    "device": "cpu: 2 threads, x86_64", "epoch": 3, "loss": "nan", "step": 17, "lr": 0.5,
    "monitor": "val_loss", "patience": 2, "best": 0.41234,
    "best_epoch": 1, "raw": "data/FashionMNIST/raw", "error": "URLError: <urlopen error no network>",
    "src": "/mirror/train-images-idx3-ubyte.gz", "path": "data/ck.pt", "name": "t10k-labels-idx1-ubyte",
    "size": 100, "expected": 10008, "why": "Unsupported global: GLOBAL builtins.print", "model": "Sequential",
    "items": "0.weight: checkpoint (8, 4) vs model (16, 4)",
}


def _fields(template):
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_catalogue_has_both_languages_with_the_same_fields():
    for key, texts in M.MESSAGES.items():
        assert set(texts) == {"en", "zh"}, key
        assert _fields(texts["en"]) == _fields(texts["zh"]), key
        assert _fields(texts["en"]) <= set(SAMPLE), key
        assert any("\u4e00" <= ch <= "\u9fff" for ch in texts["zh"]), f"{key}: no Chinese text"


def test_language_from_the_environment_or_the_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("D2LMINI_LANG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert M.language() == "en"
    (tmp_path / "zh").mkdir()
    monkeypatch.chdir(tmp_path / "zh")  # notebooks/zh/: the Chinese notebooks' kernels start here
    assert M.language() == "zh"
    monkeypatch.setenv("D2LMINI_LANG", "en")
    assert M.language() == "en"
    monkeypatch.chdir(tmp_path)
    for value, lang in (("zh", "zh"), ("ZH_CN", "zh"), ("en", "en"), ("fr", "en")):
        monkeypatch.setenv("D2LMINI_LANG", value)
        assert M.language() == lang


@pytest.mark.parametrize("key", list(M.MESSAGES))
def test_localize_turns_each_english_message_into_what_a_chinese_run_prints(key):
    fields = {f: SAMPLE[f] for f in _fields(M.MESSAGES[key]["en"])}
    en, zh = M.msg(key, "en", **fields), M.msg(key, "zh", **fields)
    assert M.localize(en) == zh
    assert M.localize(zh, "en") == en  # and back
    assert M.localize(f"before\n{en}\nafter") == f"before\n{zh}\nafter"  # inside a longer output


def test_localize_a_whole_training_output():
    en = ("Reader mode: full data and epochs.\nDevice: cpu: 2 threads, x86_64\n"
          "epoch     loss  accuracy    time\n  1/2   0.6123    0.7810   1.2 s\n"
          + M.msg("early_stop", "en", epoch=2, monitor="val_loss", patience=1, best=0.39, best_epoch=1)
          + "\nRestored the weights of epoch 1.\nsome other line the chapter printed")
    zh = M.localize(en)
    assert zh.splitlines() == [
        "阅读模式：完整的数据和训练轮数。", "设备：cpu: 2 threads, x86_64",
        "epoch     loss  accuracy    time", "  1/2   0.6123    0.7810   1.2 s",
        "第 2 轮后提前停止：val_loss 已连续 1 轮没有改善（最好的是第 1 轮的 0.3900）。",
        "已恢复第 1 轮的权重。",
        "some other line the chapter printed"]


def test_long_messages_are_wrapped_to_the_page_and_still_localized():
    fields = {"loss": "inf", "step": 15, "epoch": 1, "lr": 1.0}
    en = M.wrap(M.msg("diverged", "en", **fields))
    zh = M.wrap(M.msg("diverged", "zh", **fields))
    assert "\n" in en and all(len(line) <= 79 for line in en.splitlines())
    assert all(M._columns(line) <= 79 for line in zh.splitlines())
    assert M.localize(f"x\n{en}\ny") == f"x\n{zh}\ny"
    assert M.localize(zh, "en") == en
    wrapped = M.wrap("  * " + "word " * 30)
    assert all(line.startswith("  ") for line in wrapped.splitlines())  # the indent is kept
    assert M.wrap("a " + "x" * 100) == "a\n" + "x" * 100  # a long word is never cut
    assert M.localize(zh, "en") == en
    with pytest.raises(ValueError, match="lang must be one of"):
        M.localize(en, "fr")


def test_a_chinese_run_prints_chinese(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("D2LMINI_LANG", "zh")
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    d2l.setup()
    X = torch.randn(64, 1)
    train = d2l.TensorLoader(X, 5 * X, batch_size=8)
    d2l.fit(nn.Linear(1, 1), train, epochs=1, lr=0.01, loss_fn=nn.MSELoss(), metrics=())
    h = d2l.fit(nn.Linear(1, 1), train, epochs=50, lr=1e3, loss_fn=nn.MSELoss(), metrics=())
    out = capsys.readouterr().out
    assert out.startswith("阅读模式：完整的数据和训练轮数。\n设备：")
    assert "1/1" in out and f"训练已停止：第 {h.diverged_at} 步" in out and "lr=1000" in out
    with pytest.raises(d2l.CheckpointError, match="处没有检查点"):
        d2l.load_checkpoint(tmp_path / "nope.pt")


def test_main_messages_come_from_the_catalogue(monkeypatch, tmp_path):
    """What a reader meets: mode banner, diverging, early stopping, data set and checkpoint errors."""
    monkeypatch.delenv("D2LMINI_LANG", raising=False)
    monkeypatch.delenv("D2LMINI_SMOKE", raising=False)
    assert d2l.config.mode_banner() == M.msg("banner_reader")
    monkeypatch.setenv("D2LMINI_SMOKE", "1")
    assert d2l.config.mode_banner() == M.msg("banner_smoke")
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(1), path)
    with pytest.raises(d2l.CheckpointError) as err:
        d2l.load_checkpoint(path)
    assert str(err.value) == M.msg("ckpt_no_model", path=path)

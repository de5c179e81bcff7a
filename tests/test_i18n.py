"""The Chinese edition cannot drift from the English one (tools/i18n.py): the tool on small notebooks it
builds itself, then the real check on every chapter."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "tools" / "i18n.py")
i18n = importlib.util.module_from_spec(_spec)
sys.modules["i18n_tool"] = i18n
_spec.loader.exec_module(i18n)

TITLE = "# 1  Tensors\n\nA **tensor (张量)** is an array.\n\n**What you will learn**\n- views"
TERMS = "## Terms used\n\n| English | 中文 |\n|---|---|\n| tensor | 张量 |"


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A one-chapter book in tmp_path: notebooks/01_tensors.ipynb, its translation, notebooks/zh/."""
    en_dir, zh_dir, tr_dir = tmp_path / "notebooks", tmp_path / "notebooks" / "zh", tmp_path / "i18n" / "zh"
    en_dir.mkdir(parents=True)
    monkeypatch.setattr(i18n, "EN_DIR", en_dir)
    monkeypatch.setattr(i18n, "ZH_DIR", zh_dir)
    monkeypatch.setattr(i18n, "TR_DIR", tr_dir)
    code = nbformat.v4.new_code_cell("import d2lmini as d2l\ndevice = d2l.setup()  # the banner")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text="Reader mode: full data and epochs.\nDevice: cpu\n")]
    code.execution_count = 1
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(TITLE),
        code,
        nbformat.v4.new_markdown_cell("See [the script](../scripts/x.py) and [chapter 2](02_b.ipynb)."),
        nbformat.v4.new_markdown_cell(TERMS),
    ])
    path = en_dir / "01_tensors.ipynb"
    nbformat.write(nb, path)
    i18n.update(["01"])
    ids = [c.id for c in nb.cells if c.cell_type == "markdown"]
    zh_text = {
        ids[0]: "# 1  张量\n\n**张量（tensor）**是一个数组。\n\n**本章你将学到**\n- 视图",
        ids[1]: "见[脚本](../scripts/x.py)和[第 2 章](02_b.ipynb)。",
        ids[2]: "## 本章术语\n\n| English | 中文 |\n|---|---|\n| tensor | 张量 |",
    }
    blocks = i18n.read_translation(path)
    for b in blocks:
        b.text = zh_text[b.cell_id]
    i18n.write_translation(path, blocks)
    assert i18n.build() == []
    return path, ids


def _problems(book) -> list[str]:
    return i18n.check()


def test_a_clean_translation_builds_and_passes(book):
    path, ids = book
    assert _problems(book) == []
    zh = json.loads((i18n.ZH_DIR / path.name).read_text(encoding="utf-8"))
    en = json.loads(path.read_text(encoding="utf-8"))
    assert "".join(zh["cells"][0]["source"]).startswith("# 1  张量")
    # code byte-identical; the banner printed as a Chinese run prints it; links one folder further up
    assert zh["cells"][1]["source"] == en["cells"][1]["source"]
    assert "阅读模式" in "".join(zh["cells"][1]["outputs"][0]["text"])
    assert "](../../scripts/x.py)" in "".join(zh["cells"][2]["source"])
    assert "](02_b.ipynb)" in "".join(zh["cells"][2]["source"])


def test_an_english_change_is_drift_naming_chapter_and_cell(book):
    path, ids = book
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].source += " One more sentence."
    nbformat.write(nb, path)
    problems = _problems(book)
    assert any("01_tensors.ipynb cell 3" in p and ids[1] in p and "English changed" in p for p in problems)
    # update marks the block stale (the Chinese kept, the new English beside it); accept records the hash
    i18n.update(["01"])
    assert any(i18n.STALE in b.text for b in i18n.read_translation(path))
    i18n.accept("01", [ids[1]])
    i18n.build()
    assert _problems(book) == []


def test_a_cell_without_translation_is_named(book):
    path, _ = book
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_markdown_cell("A new paragraph."))
    nbformat.write(nb, path)
    i18n.update(["01"])  # adds a TODO block: still a failure
    i18n.build()
    problems = _problems(book)
    assert any("cell 4" in p and "no Chinese translation" in p for p in problems), problems


def test_edited_zh_notebook_code_or_outputs_fail(book):
    path, _ = book
    zh_path = i18n.ZH_DIR / path.name
    zh = json.loads(zh_path.read_text(encoding="utf-8"))
    zh["cells"][1]["source"] = ["device = 'cuda'  # 改了代码"]
    zh_path.write_text(json.dumps(zh, ensure_ascii=False), encoding="utf-8")
    problems = _problems(book)
    assert any("differs from what" in p for p in problems)
    assert any("cell 2" in p and "code differs" in p for p in problems)
    i18n.build()
    zh = json.loads(zh_path.read_text(encoding="utf-8"))
    zh["cells"][1]["outputs"][0]["text"] = "something else\n"
    zh_path.write_text(json.dumps(zh, ensure_ascii=False), encoding="utf-8")
    assert any("outputs differ" in p for p in _problems(book))


def test_terms_in_the_chinese_text(book):
    path, ids = book
    blocks = i18n.read_translation(path)
    blocks[0].text = blocks[0].text.replace("**张量（tensor）**", "**张量**")  # no English at first mention
    i18n.write_translation(path, blocks)
    i18n.build()
    assert any("张量（tensor）" in p for p in _problems(book))


def test_a_missing_zh_notebook_is_named(book):
    path, _ = book
    (i18n.ZH_DIR / path.name).unlink()
    assert any("is missing" in p for p in _problems(book))


def test_the_real_book_has_not_drifted():
    """Every chapter of the book: translated, up to date, built, the same code and outputs."""
    t0 = time.perf_counter()
    problems = i18n.check()
    secs = time.perf_counter() - t0
    assert not problems, f"{len(problems)} drift problems ({secs:.1f} s):\n" + "\n".join(problems[:40])

"""tools/build_site.py without a browser: the parts that turn notebooks into the glossary and the contents."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
sys.modules["build_site"] = build_site  # dataclasses look their module up there
_spec.loader.exec_module(build_site)

TERMS = """## Terms used

| English | 中文 |
|---|---|
| tensor | 张量 |
| concatenate \\| stack | 连结 |

Text after the table.
"""


def _notebook(path: Path, title: str, terms: str = TERMS, image: bool = False) -> Path:
    code = nbformat.v4.new_code_cell("1 + 1")
    if image:
        png = {"image/png": "iVBORw0KGgo=", "text/plain": "x"}
        code.outputs = [nbformat.v4.new_output("display_data", data=png)]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}\n\nIntro."), code,
                                         nbformat.v4.new_markdown_cell(terms)])
    nbformat.write(nb, path)
    return path


def test_parse_terms_reads_rows_and_skips_header_and_separator():
    assert build_site.parse_terms(TERMS) == [("tensor", "张量"), ("concatenate | stack", "连结")]


def test_parse_terms_without_heading_is_empty_and_stops_at_table_end():
    assert build_site.parse_terms("| a | b |\n|---|---|\n| x | y |") == []
    text = TERMS + "\n| not | terms |\n"
    assert build_site.parse_terms(text)[-1] == ("concatenate | stack", "连结")


def test_parse_terms_names_a_malformed_row():
    with pytest.raises(ValueError, match="English \\| 中文.*only-english"):
        build_site.parse_terms("## Terms used\n\n| English | 中文 |\n|---|---|\n| only-english | |\n")


def test_find_chapters_sorted_with_titles_outputs_and_terms(tmp_path):
    _notebook(tmp_path / "02_b.ipynb", "2  Second (第二)", image=True)
    _notebook(tmp_path / "01_a.ipynb", "1  First")
    (tmp_path / "notes.ipynb").write_text("not a chapter")  # ignored: not NN_*.ipynb
    chapters = build_site.find_chapters(tmp_path)
    assert [c.path.name for c in chapters] == ["01_a.ipynb", "02_b.ipynb"]
    assert [c.number for c in chapters] == [1, 2]
    assert chapters[1].title == "2  Second (第二)"
    assert build_site.short_title(chapters[1]) == "Second (第二)"
    assert (chapters[0].has_images, chapters[1].has_images) == (False, True)
    assert chapters[0].docname == "notebooks/01_a"
    assert chapters[0].terms == [("tensor", "张量"), ("concatenate | stack", "连结")]


def test_glossary_merges_terms_across_chapters_and_links_them(tmp_path):
    _notebook(tmp_path / "01_a.ipynb", "1  First")
    _notebook(tmp_path / "02_b.ipynb", "2  Second",
              terms="## Terms used\n\n| English | 中文 |\n|---|---|\n"
                    "| Tensor | 张量（tensor） |\n| axis | 轴 |\n")
    md = build_site.glossary_markdown(build_site.find_chapters(tmp_path))
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    # sorted by English, case-insensitively; "Tensor" and "tensor" are one entry with both renderings
    assert [r.split("|")[1].strip() for r in rows] == ["axis", "concatenate \\", "tensor"]
    assert "| tensor | 张量；张量（tensor） | {doc}`1 <notebooks/01_a>`, {doc}`2 <notebooks/02_b>` |" in md
    assert "3 terms from 2 chapters" in md


def test_toc_and_chapter_list_follow_the_notebooks(tmp_path):
    _notebook(tmp_path / "03_c.ipynb", "3  Third")
    _notebook(tmp_path / "01_a.ipynb", "1  First")
    chapters = build_site.find_chapters(tmp_path)
    toc = build_site.toc_yaml(chapters)
    assert toc.index("file: notebooks/01_a") < toc.index("file: notebooks/03_c") < toc.index("file: glossary")
    assert "root: intro" in toc
    table = build_site.chapter_list_markdown(chapters)
    assert "| 3 | [Third](notebooks/03_c.ipynb) |" in table


def test_staged_notebook_gets_a_language_but_keeps_cells(tmp_path):
    path = _notebook(tmp_path / "01_a.ipynb", "1  First", image=True)
    nb = nbformat.read(path, as_version=4)
    nb.metadata = {}
    nbformat.write(nb, path)
    staged = nbformat.reads(build_site.staged_notebook(path), as_version=4)
    assert staged.metadata["language_info"]["name"] == "python"
    assert staged.cells == nb.cells


def test_links_to_repository_files_go_to_github_and_notebook_links_stay():
    md = "see [the script](../scripts/ddp_train.py#L3), [ch. 2](02_datasets.ipynb), [x](../notebooks/a.ipynb)"
    out = build_site.repo_links(md)
    assert "[the script](https://github.com/d2lmini/d2lmini/blob/main/scripts/ddp_train.py#L3)" in out
    assert "[ch. 2](02_datasets.ipynb)" in out and "[x](../notebooks/a.ipynb)" in out

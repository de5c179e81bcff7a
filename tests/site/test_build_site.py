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


def test_zh_config_gets_its_title_and_language():
    zh = build_site.config_yaml(build_site.EDITIONS["zh"])
    assert 'title: "d2lmini：' in zh and "language: zh_CN" in zh
    assert "language: en" in build_site.config_yaml(build_site.EDITIONS["en"])


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


def test_glossary_lists_the_terms_file_and_links_the_chapters_that_use_each_term(tmp_path):
    _notebook(tmp_path / "01_a.ipynb", "1  First")
    _notebook(tmp_path / "02_b.ipynb", "2  Second",
              terms="## Terms used\n\n| English | 中文 |\n|---|---|\n| Tensor | 张量 |\n| axis | 轴 |\n")
    vocab = [build_site.vocabulary.Term("tensor", "张量"), build_site.vocabulary.Term("axis", "轴"),
             build_site.vocabulary.Term("1×1 convolution", "1×1 卷积")]
    chapters = build_site.find_chapters(tmp_path)
    md = build_site.glossary_markdown(chapters, vocab)
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    # sorted by English (leading digits ignored), every term of the file, linked where a chapter lists it
    assert [r.split("|")[1].strip() for r in rows] == ["axis", "1×1 convolution", "tensor"]
    assert "| tensor | 张量 | {doc}`1 <notebooks/01_a>`, {doc}`2 <notebooks/02_b>` |" in md
    assert "| 1×1 convolution | 1×1 卷积 |  |" in md
    assert "3 terms, 2 of them listed" in md
    zh = build_site.glossary_markdown(chapters, vocab, lang="zh")
    assert zh.startswith("# 术语表（Glossary）") and "| 张量 | tensor |" in zh


def test_each_solution_goes_after_its_exercise_in_a_closed_dropdown(tmp_path, monkeypatch):
    chapter = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 7  Seven"),
        nbformat.v4.new_markdown_cell("**1. First.** Do it."),
        nbformat.v4.new_code_cell('answer = None\ncheck("07.1", answer)'),
        nbformat.v4.new_markdown_cell("**2. Second.**"),
        nbformat.v4.new_code_cell('check("07.2", None)'),
        nbformat.v4.new_markdown_cell(TERMS)])
    (tmp_path / "notebooks").mkdir()
    nbformat.write(chapter, tmp_path / "notebooks" / "07_seven.ipynb")
    sol_code = nbformat.v4.new_code_cell('answer = 42\ncheck("07.1", answer)')
    sol_code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✓ Exercise 07.1: correct.\n")]
    solutions = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Solutions: 7  Seven"),
        nbformat.v4.new_code_cell("import d2lmini as d2l"),
        nbformat.v4.new_markdown_cell("## Exercise 1\n\nThe answer is what the check computes."),
        sol_code,
        nbformat.v4.new_markdown_cell("## Exercise 2"),
        nbformat.v4.new_code_cell('check("07.2", 1)'),
        nbformat.v4.new_code_cell("report(7)")])
    (tmp_path / "solutions").mkdir()
    nbformat.write(solutions, tmp_path / "solutions" / "07_seven.ipynb")
    monkeypatch.setattr(build_site, "SOLUTIONS", tmp_path / "solutions")
    blocks = build_site.solution_blocks(tmp_path / "solutions" / "07_seven.ipynb")
    assert set(blocks) == {1, 2} and "```python\nanswer = 42" in blocks[1] and "report(" not in blocks[2]
    assert "✓ Exercise 07.1: correct." in blocks[1]
    ch = build_site.read_chapter(tmp_path / "notebooks" / "07_seven.ipynb")
    staged = nbformat.reads(build_site.staged_notebook(ch.path, build_site.EDITIONS["en"], ch), as_version=4)
    kinds = [c.source.split("\n")[0] for c in staged.cells]
    assert kinds[3].startswith("::::{dropdown} Show solution (1)") and kinds[6].startswith("::::{dropdown}")
    assert ":class-container: d2l-solution" in staged.cells[3].source
    # the language link sits under the title and goes to the same chapter in Chinese
    assert '<a href="../zh/notebooks/07_seven.html" hreflang="zh"' in staged.cells[0].source


def test_staged_notebook_drops_live_widget_views_and_keeps_the_replay(tmp_path):
    cell = nbformat.v4.new_code_cell("explorer.show(replay={'lr': [0.1, 1]})")
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2,
                                                          "version_minor": 0}, "text/plain": "VBox()"}
    replay = {"text/html": '<div class="d2l-replay">…</div>', "text/plain": "Replay of 2"}
    cell.outputs = [nbformat.v4.new_output("display_data", data=widget),
                    nbformat.v4.new_output("display_data", data=replay)]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 1  One"), cell])
    nbformat.write(nb, tmp_path / "01_one.ipynb")
    staged = nbformat.reads(build_site.staged_notebook(tmp_path / "01_one.ipynb"), as_version=4)
    assert [list(o["data"]) for o in staged.cells[1].outputs] == [["text/html", "text/plain"]]
    assert build_site.read_chapter(tmp_path / "01_one.ipynb").has_replay


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

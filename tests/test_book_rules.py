"""The book's house rules, on the committed notebooks: tools/check_notebooks.py (outputs from reader mode,
no errors, no machine paths or reprs, code and printed lines within 79 characters, exercises unanswered in
the chapters and solved in the solutions) and tools/terms.py (one vocabulary, Chinese at first mention)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_tool", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


check_notebooks = _tool("check_notebooks")
terms = _tool("terms")
NOTEBOOKS = check_notebooks.default_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_committed_notebook_follows_the_house_rules(path):
    problems = check_notebooks.problems(path)
    assert not problems, "\n".join(problems)


def test_every_chapter_has_a_solutions_notebook():
    chapters = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    solutions = {p.name for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")}
    assert chapters - solutions == set(), f"chapters without solutions: {sorted(chapters - solutions)}"


def test_one_vocabulary_with_chinese_at_first_mention():
    problems = terms.check()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


# ------------------------------------------------------------------- the rules catch what they should

def _nb(tmp_path: Path, name: str, source: str, outputs: list, count: int | None = 1) -> Path:
    cell = nbformat.v4.new_code_cell(source)
    cell.execution_count = count
    cell.outputs = outputs
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 99  Test"), cell])
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def _stream(text: str):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


@pytest.mark.parametrize("source, outputs, count, expect", [
    ("x = 1", [], None, "never executed"),
    ("y = '" + "a" * 80 + "'", [], 1, "over 79"),
    ("# NBVAL_CHECK_OUTPUT\nx = 1", [], 1, "nbval comment"),
    ("run('../scripts/ddp_train.py')", [], 1, "relative path"),
    ("print(p)", [_stream("saved to /work/main/data/x.pt\n")], 1, "machine path"),
    ("ax.legend()", [_stream("<matplotlib.legend.Legend at 0x7f00aa>\n")], 1, "object repr"),
    ("d2l.setup()", [_stream("⚠ SMOKE MODE ON (D2LMINI_SMOKE=1)\n")], 1, "smoke mode"),
    ("print(t)", [_stream("x" * 90 + "\n")], 1, "prints 1 lines over 79"),
    ("1 / 0", [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="", traceback=[])], 1,
     "error output"),
])
def test_each_rule_is_enforced(tmp_path, source, outputs, count, expect):
    path = _nb(tmp_path, "notes.ipynb", source, outputs, count)
    assert any(expect in p for p in check_notebooks.problems(path)), check_notebooks.problems(path)


def test_a_compared_cell_ending_in_a_semicolon_is_caught(tmp_path):
    path = _nb(tmp_path, "notes.ipynb", "summary(net);", [])
    nb = nbformat.read(path, as_version=4)
    assert not check_notebooks.problems(path)
    nb.cells[1].metadata["tags"] = ["nbval-check-output"]
    nbformat.write(nb, path)
    assert any("ends with ';'" in p for p in check_notebooks.problems(path))


def test_an_exercise_cell_holding_its_answer_is_caught(tmp_path):
    (tmp_path / "solutions").mkdir()
    chapter = _nb(tmp_path, "99_test.ipynb", 'check("99.1", 42)', [_stream("✓ Exercise 99.1: correct.\n")])
    assert any("must not hold its answer" in p for p in check_notebooks.problems(chapter))
    solution = _nb(tmp_path / "solutions", "99_test.ipynb", 'check("99.1", 41)\nreport(99)',
                   [_stream("✗ Exercise 99.1: too small.\n")])
    assert any("does not pass its check" in p for p in check_notebooks.problems(solution))


def test_book_file_finds_repository_files_from_anywhere(tmp_path, monkeypatch):
    import d2lmini as d2l

    monkeypatch.chdir(tmp_path)
    assert d2l.book_file("scripts/ddp_train.py").is_file()
    with pytest.raises(FileNotFoundError, match="not in the book's repository"):
        d2l.book_file("scripts/no_such_script.py")

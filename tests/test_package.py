"""The package's shape: every module imports on its own, no import cycles, a light ``import d2lmini``,
and every public name used by a chapter and covered by a unit test."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import d2lmini as d2l

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "d2lmini"


def _modules() -> list[str]:
    """Every module of the package as a dotted name (``d2lmini.train``, ``d2lmini.exercises.ch03``)."""
    names = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(module: str) -> set[str]:
    """The package modules ``module`` imports anywhere in its code (inside functions too), except under
    ``if TYPE_CHECKING:`` (type hints only, never run)."""
    path = PKG.parent / Path(*module.split("."))
    is_pkg = (path / "__init__.py").is_file()
    file = path / "__init__.py" if is_pkg else path.with_suffix(".py")
    package = module if is_pkg else module.rpartition(".")[0]
    tree = ast.parse(file.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in MODULES}
    return found - {module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "active"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "active":
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_the_module_import_graph_has_no_cycle():
    # the package __init__ only re-exports: every submodule import passes through it, so it is left out
    graph = {m: _imports(m) - {"d2lmini"} for m in MODULES if m != "d2lmini"}
    assert "d2lmini.train" not in graph["d2lmini.plot"]  # the old plot <-> train cycle
    assert not _cycles(graph), "\n".join(" -> ".join(c) for c in _cycles(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


_ONE_BY_ONE = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for m in [m for m in sys.modules if m == "d2lmini" or m.startswith("d2lmini.")]:
        del sys.modules[m]  # nothing of the package loaded: the module must import on its own
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=3))
print("\\n".join(failed))
"""


def test_each_module_imports_on_its_own():
    """Every module imports first, in an interpreter with no other d2lmini module loaded (one fresh
    interpreter; the package's modules are dropped from ``sys.modules`` before each import), so no module
    works only because another was imported before it."""
    proc = subprocess.run([sys.executable, "-c", _ONE_BY_ONE, *MODULES], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "", proc.stdout


def test_import_d2lmini_loads_neither_pyplot_nor_ipywidgets():
    code = ("import sys, d2lmini; heavy = [m for m in ('matplotlib', 'matplotlib.pyplot', 'ipywidgets') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, timeout=120).stdout.strip()
    assert out == "[]"


def test_lazy_names_still_work_and_are_listed():
    for name in ("plot_history", "show_images", "confusion_matrix", "plot_confusion_matrix", "Explorer",
                 "FitResult", "widgets"):
        assert name in d2l.__all__ and name in dir(d2l)
        assert getattr(d2l, name) is not None
    assert d2l.widgets.Explorer is d2l.Explorer
    assert d2l.plot_history.__module__ == "d2lmini.plot"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        d2l.nope  # noqa: B018


def test_every_public_name_resolves():
    missing = []
    for name in d2l.__all__:
        if name == "exercises" and importlib.util.find_spec("d2lmini.exercises") is None:
            continue  # being written: the lazy attribute imports it once it exists
        if not hasattr(d2l, name):
            missing.append(name)
    assert not missing
    assert len(set(d2l.__all__)) == len(d2l.__all__)


def test_init_only_reexports():
    """``d2lmini/__init__.py`` defines no function or class of its own besides the PEP 562 hooks."""
    tree = ast.parse((PKG / "__init__.py").read_text(encoding="utf-8"))
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert defined == ["__getattr__", "__dir__"]


# ------------------------------------------------------------------ every public name used and tested
def _notebooks() -> dict[str, dict[str, str]]:
    """``{notebook name: {"code": ..., "markdown": ...}}`` of every chapter and solutions notebook."""
    out = {}
    for nb_path in sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")]):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        parts = {kind: "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind)
                 for kind in ("code", "markdown")}
        out[f"{nb_path.parent.name}/{nb_path.stem}"] = parts
    return out


def _notebook_code() -> str:
    """The code of every chapter and solutions notebook, and of the scripts the chapters run."""
    scripts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "scripts").glob("*.py"))]
    return "\n".join([*(parts["code"] for parts in _notebooks().values()), *scripts])


def _test_code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests").rglob("test_*.py"))
                     if p.name != "test_package.py")


_FROM_IMPORT = re.compile(r"from d2lmini[\w.]* import (\([^)]*\)|[^\n]*)")


def _mentions(code: str, name: str) -> bool:
    """``d2l.name`` / ``d2lmini.name``, or ``name`` imported by a ``from d2lmini... import``."""
    if re.search(rf"\b(d2l|d2lmini)\.{re.escape(name)}\b", code):
        return True
    return any(re.search(rf"\b{re.escape(name)}\b", names) for names in _FROM_IMPORT.findall(code))


def unused_public_names() -> dict[str, list[str]]:
    """Public names that no chapter uses, and those that no unit test mentions."""
    notebooks, tests = _notebook_code(), _test_code()
    return {"not used by a chapter": [n for n in d2l.__all__ if not _mentions(notebooks, n)],
            "not in a unit test": [n for n in d2l.__all__ if not _mentions(tests, n)]}


def where_else(name: str) -> str:
    """Where the book shows ``name`` without using it from d2lmini (to decide: use it, or drop it)."""
    defines = re.compile(rf"^\s*(def|class)\s+{re.escape(name)}\b", re.M)
    word = re.compile(rf"\b{re.escape(name)}\b")
    found: dict[str, list[str]] = {"defines its own": [], "has the word in its code": [],
                                   "names it in its prose": []}
    for nb, parts in _notebooks().items():
        if defines.search(parts["code"]):
            found["defines its own"].append(nb)
        elif word.search(parts["code"]):
            found["has the word in its code"].append(nb)
        elif word.search(parts["markdown"]):
            found["names it in its prose"].append(nb)
    shown = [f"{how}: {', '.join(nbs[:3])}{f' (+{len(nbs) - 3} more)' if len(nbs) > 3 else ''}"
             for how, nbs in found.items() if nbs]
    return "; ".join(shown) or "in no notebook"


def test_every_public_name_is_used_by_a_chapter_and_tested():
    """The package's own rule (CONTRIBUTING): every public name is used by a chapter (as ``d2l.name`` or
    ``from d2lmini... import name``, in a notebook or a script a chapter runs) and has a unit test.
    While chapters are being rewritten this may fail: the message lists each name to use or drop."""
    problems = unused_public_names()
    lines = []
    if problems["not in a unit test"]:
        lines.append(f"not in a unit test: {', '.join(problems['not in a unit test'])}")
    if problems["not used by a chapter"]:
        lines.append("not used by a chapter (use it in one as d2l.<name>, or drop it from d2lmini.__all__):")
        lines += [f"  {n}: {where_else(n)}" for n in problems["not used by a chapter"]]
    assert not lines, "\n".join(lines)


def test_the_usage_check_sees_each_way_of_using_a_name():
    code = "import d2lmini as d2l\nnet = d2l.Dense(3)\nfrom d2lmini.callbacks import (\n  CancelStep,\n)"
    assert _mentions(code, "Dense") and _mentions(code, "CancelStep")
    assert not _mentions(code, "Loaders") and not _mentions("def corr2d(X, K): ...", "corr2d")

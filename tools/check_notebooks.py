#!/usr/bin/env python3
"""The book's house rules for committed notebooks, checked by ``tests/test_book_rules.py``.

    python tools/check_notebooks.py                  # chapters, Chinese chapters and solutions
    python tools/check_notebooks.py notebooks/03_training_loops.ipynb

For every notebook: every code cell executed, no error output, no smoke-mode output (committed outputs come
from reader mode), no machine path (``/home/...``, ``/root/...``, ``/work/...``) and no object repr
(``<... at 0x...>``) in an output, no code line over 79 characters (the website's code column), no printed
line over 79 characters, no ``# NBVAL_...`` comment in the code (nbval's markers are cell tags), and no
relative path in the code (the Chinese edition runs the same code from ``notebooks/zh/``), and no cell
compared by nbval that hides its value with ``;`` (nbval sees the value anyway).
For the chapters: every exercise check's committed output says "not answered yet" (no exercise cell holds
its answer) and every exercise registered in ``d2lmini.exercises`` has a check in the chapter.  For the
solutions: every check's output says it is correct, and the notebook ends with ``report(N)``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 79
SMOKE = re.compile(r"smoke[ -]?mode", re.I)
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:home|root|work|tmp|Users|opt|mnt)/[\w.-]+")
REPR = re.compile(r"<[\w.]+ (?:object )?at 0x[0-9a-fA-F]+>")
#: A string literal holding a relative path ("../scripts/x.py", "./data"): chapter code runs from
#: notebooks/ and from notebooks/zh/, so it reaches files with d2l.book_file() / d2l.data_root().
RELATIVE_PATH = re.compile(r"""(?<![\w])[rbf]?["']\.\.?/""")
CHECK_CALL = re.compile(r"""check\(\s*["'](\d{2}\.\d+)["']""")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


def default_notebooks() -> list[Path]:
    """The chapters, the Chinese chapters and the solutions."""
    return (sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
            + sorted((ROOT / "notebooks" / "zh").glob("[0-9][0-9]_*.ipynb"))
            + sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")))


def _exercise_outputs(cells: list[dict]) -> dict[str, str]:
    """Exercise id -> the printed output of the (last) cell that checks it."""
    found = {}
    for c in cells:
        src = _text(c.get("source"))
        ids = CHECK_CALL.findall(src)
        if ids:
            out = "".join(_text(o.get("text")) for o in c.get("outputs", [])
                          if o.get("output_type") == "stream")
            for i in ids:
                found[i] = out
    return found


def problems(path: Path) -> list[str]:
    """Every rule broken by one notebook, one line each."""
    name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return [f"{name}: unreadable notebook ({e})"]
    cells = [c for c in nb.get("cells", [])
             if c.get("cell_type") == "code" and _text(c.get("source")).strip()]
    found = []
    if not cells:
        found.append(f"{name}: no code cells")
    unexecuted = [i for i, c in enumerate(cells) if c.get("execution_count") is None]
    if unexecuted:
        found.append(f"{name}: {len(unexecuted)} of {len(cells)} code cells never executed "
                     f"(first: code cell {unexecuted[0] + 1})")
    for i, c in enumerate(cells):
        src = _text(c.get("source"))
        code = [ln for ln in src.rstrip().split("\n") if ln.strip() and not ln.strip().startswith("#")]
        if "nbval-check-output" in c.get("metadata", {}).get("tags", []) and code and \
                code[-1].rstrip().endswith(";"):
            found.append(f"{name}: code cell {i + 1} is compared by nbval but ends with ';': nbval still "
                         f"sees the value, so assign it to a name instead")
        for n, line in enumerate(src.split("\n"), 1):
            if len(line) > WIDTH:
                found.append(f"{name}: code cell {i + 1} line {n} is {len(line)} characters (over {WIDTH})")
            if re.match(r"\s*#\s*NBVAL_", line):
                found.append(f"{name}: code cell {i + 1} has an nbval comment; tag the cell instead")
            if RELATIVE_PATH.search(line):
                found.append(f"{name}: code cell {i + 1} line {n} uses a relative path; the code also runs "
                             f"from notebooks/zh/: use d2l.book_file(...) or d2l.data_root()")
        for out in c.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"{name}: code cell {i + 1} has an error output ({out.get('ename')})")
                continue
            data = out.get("data", {})
            plain = _text(out.get("text")) + _text(data.get("text/plain"))
            htm = _text(data.get("text/html"))
            if m := MACHINE_PATH.search(plain):
                found.append(f"{name}: code cell {i + 1} output shows a machine path ({m.group(0)})")
            if m := REPR.search(plain):
                found.append(f"{name}: code cell {i + 1} output shows an object repr ({m.group(0)})")
            if SMOKE.search(plain + htm) and re.search(r"\bon\b|active|enabled", plain + htm, re.I):
                found.append(f"{name}: code cell {i + 1} output is from smoke mode")
            wide = [ln for ln in plain.split("\n") if len(ln) > WIDTH]
            if wide:
                found.append(f"{name}: code cell {i + 1} prints {len(wide)} lines over {WIDTH} characters "
                             f"(first: {wide[0][:50]!r}…)")
    chapter = re.match(r"(\d{2})_", path.name)
    if chapter and path.parent.name == "solutions":
        outs = _exercise_outputs(cells)
        for ex, out in sorted(outs.items()):
            if "✓" not in out:
                found.append(f"{name}: the solution of exercise {ex} does not pass its check: "
                             f"{out.strip()[:80]!r}")
        if not cells or not re.search(r"^\s*report\(", _text(cells[-1].get("source")), re.M):
            found.append(f"{name}: the last code cell must be report({int(chapter.group(1))})")
    elif chapter:
        outs = _exercise_outputs(cells)
        for ex, out in sorted(outs.items()):
            if "not answered yet" not in out:
                found.append(f"{name}: exercise {ex}'s committed output is not 'not answered yet': "
                             f"an exercise cell must not hold its answer")
        registered = _registered(chapter.group(1))
        missing = [e for e in registered if e not in outs]
        if missing:
            found.append(f"{name}: exercises {', '.join(missing)} are registered but never checked here")
    return found


def _registered(chapter: str) -> list[str]:
    try:
        from d2lmini.exercises import exercises_of
    except ImportError:  # pragma: no cover - the package is installed wherever the book runs
        return []
    return exercises_of(chapter)


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or default_notebooks()
    found = [p for path in paths for p in problems(path)]
    for p in found:
        print(p)
    print(f"{len(paths)} notebooks checked, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

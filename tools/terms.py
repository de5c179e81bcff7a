#!/usr/bin/env python3
"""The book's one vocabulary: ``i18n/terms.csv`` (English → 中文), and the checks that keep it one.

    python tools/terms.py check              # every rule below on notebooks/NN_*.ipynb; exit 1 on a problem
    python tools/terms.py table tensor view  # the Markdown "Terms used" table for these terms
    python tools/terms.py sort               # rewrite terms.csv sorted by English (after adding rows)

``terms.csv`` has three columns: ``en`` (the English term as the chapters write it), ``zh`` (its one Chinese
term) and ``avoid`` (other Chinese renderings, ``;``-separated, that the book must not use, e.g. 数据增广 when
the book says 数据增强).  The rules, checked by ``tests/test_terms.py``:

1. One English term maps to exactly one Chinese term, and no two English terms share a Chinese term.
2. Every row of a chapter's **Terms used** table (``| English | 中文 |``) is a row of ``terms.csv``.
3. At a table term's first mention in the chapter's prose (headings, code, formulas and links left out), its
   Chinese term follows within a few characters: "a tensor (张量) is ...".
4. No notebook, English or Chinese, uses an ``avoid`` variant.

The glossary page of the website and the Chinese edition read the same file.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TERMS_CSV = ROOT / "i18n" / "terms.csv"
CHAPTER_GLOB = "[0-9][0-9]_*.ipynb"
#: How far after the end of a term's first mention its Chinese term may start (characters).
NEAR = 12


@dataclass(frozen=True)
class Term:
    """One row of ``terms.csv``."""

    en: str
    zh: str
    avoid: tuple[str, ...] = ()


def load_terms(path: Path = TERMS_CSV) -> list[Term]:
    """The rows of ``terms.csv``; raises ``ValueError`` naming the line of a malformed row."""
    text = path.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    terms = []
    for i, row in enumerate(rows, start=2):
        en, zh = (row.get("en") or "").strip(), (row.get("zh") or "").strip()
        if not en or not zh:
            raise ValueError(f"{path.name} line {i}: needs both 'en' and 'zh', got {row}")
        avoid = tuple(a.strip() for a in (row.get("avoid") or "").split(";") if a.strip())
        terms.append(Term(en, zh, avoid))
    return terms


def _key(en: str) -> str:
    return " ".join(en.lower().split())


def vocabulary_problems(terms: list[Term]) -> list[str]:
    """Rule 1: no English term twice, no Chinese term twice, no avoided variant that is also a term."""
    problems, by_en, by_zh = [], {}, {}
    for t in terms:
        if _key(t.en) in by_en:
            problems.append(f"terms.csv: '{t.en}' is listed twice ({by_en[_key(t.en)].zh} and {t.zh})")
        by_en[_key(t.en)] = t
        if t.zh in by_zh:
            problems.append(f"terms.csv: '{t.zh}' translates both '{by_zh[t.zh].en}' and '{t.en}'")
        by_zh[t.zh] = t
    for t in terms:
        for a in t.avoid:
            if a in by_zh:
                problems.append(f"terms.csv: '{a}' is avoided for '{t.en}' "
                                f"but is the term for '{by_zh[a].en}'")
    return problems


# ------------------------------------------------------------------------------------ notebooks' tables

def split_row(line: str) -> list[str]:
    """Cells of a Markdown table row; ``\\|`` inside a cell is kept as a literal bar."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", line)]


TERMS_HEADING = re.compile(r"^#{1,6}\s*(Terms used|本章术语)\b")


def parse_terms_table(markdown: str) -> list[tuple[str, str]]:
    """The (English, 中文) rows of the first Markdown table under a "Terms used" (or "本章术语") heading.

    The header row and the ``|---|---|`` separator are skipped; the table ends at the first line that is not
    a table row.  Returns ``[]`` when there is no such heading.  Raises ``ValueError`` for a row that does not
    have two non-empty cells, naming the row, so a malformed table fails loudly instead of vanishing.
    """
    lines = markdown.splitlines()
    start = next((i for i, ln in enumerate(lines) if TERMS_HEADING.match(ln.strip())), None)
    if start is None:
        return []
    rows: list[tuple[str, str]] = []
    in_table = header_seen = False
    for ln in lines[start + 1:]:
        s = ln.strip()
        if not s.startswith("|"):
            if in_table or s.startswith("#"):
                break
            continue
        in_table = True
        cells = split_row(s)
        if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
            continue
        if not header_seen:
            header_seen = True
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise ValueError(f"'Terms used' row needs 'English | 中文', got: {ln!r}")
        rows.append((cells[0], cells[1]))
    return rows


def markdown_table(terms: list[Term], english: list[str]) -> str:
    """The "Terms used" table for the given English terms, in the given order."""
    by_en = {_key(t.en): t for t in terms}
    missing = [e for e in english if _key(e) not in by_en]
    if missing:
        raise KeyError(f"not in terms.csv: {missing}; add them first")
    rows = ["| English | 中文 |", "|---|---|"]
    rows += [f"| {by_en[_key(e)].en} | {by_en[_key(e)].zh} |" for e in english]
    return "\n".join(rows)


# ------------------------------------------------------------------------------------ first mentions

def prose(markdown: str) -> str:
    """``markdown`` with what is not running prose blanked out (same length, so offsets stay valid):
    headings, code spans and blocks, formulas, link targets, HTML tags, and the Terms-used table."""
    m = re.search(r"^#{1,6}\s*(Terms used|本章术语)\b", markdown, flags=re.M)
    if m:
        markdown = markdown[: m.start()]

    def blank(match: re.Match) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    for pattern in (r"```.*?```", r"\$\$.*?\$\$"):
        markdown = re.sub(pattern, blank, markdown, flags=re.S)
    for pattern in (r"\$[^$\n]+\$", r"`[^`\n]+`", r"\]\([^)]*\)", r"<[^>\n]+>", r"^#{1,6} .*$"):
        markdown = re.sub(pattern, blank, markdown, flags=re.M)
    return markdown


def _mention(term: str) -> re.Pattern:
    """A word-bounded, case-insensitive match of ``term`` with an optional plural ending."""
    words = [re.escape(w) for w in term.split()]
    body = r"[\s\-]+".join(words)
    return re.compile(rf"(?<![\w-]){body}(?:s|es)?(?![\w])", re.I)


def first_mention_problems(chapter: str, cells: list[str], table: list[tuple[str, str]]) -> list[str]:
    """Rule 3 for one chapter: ``cells`` are its Markdown cells' sources, ``table`` its Terms-used rows."""
    texts = [prose(c) for c in cells]
    problems = []
    english = [en for en, _ in table]
    for en, zh in table:
        longer = [o for o in english if o != en and _mention(en).search(o)]
        found = False
        for i, text in enumerate(texts):
            masked = text
            for o in longer:  # "normalization" inside "batch normalization" is not a mention of it
                masked = _mention(o).sub(lambda m: " " * len(m.group(0)), masked)
            m = _mention(en).search(masked)
            if not m:
                continue
            found = True
            after = cells[i][m.end(): m.end() + NEAR + len(zh)]
            before = cells[i][max(0, m.start() - NEAR - len(zh)): m.start()]
            if zh not in after and zh not in before:
                context = " ".join(cells[i][max(0, m.start() - 30): m.end() + 30].split())
                problems.append(f"{chapter}: the first mention of '{en}' (markdown cell {i + 1}: "
                                f"'…{context}…') needs its Chinese term right after it: '{en} ({zh})'")
            break
        if not found:
            problems.append(f"{chapter}: '{en}' is in the Terms-used table but never used in the prose")
    return problems


def notebook_problems(path: Path, terms: list[Term]) -> list[str]:
    """Rules 2-4 for one notebook (English or Chinese)."""
    import json

    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    name = path.name if path.parent.name != "zh" else f"zh/{path.name}"
    by_en = {_key(t.en): t for t in terms}
    problems: list[str] = []
    table: list[tuple[str, str]] = []
    for c in cells:
        table = parse_terms_table(c)
        if table:
            break
    chinese_edition = path.parent.name == "zh"
    for en, zh in table:
        t = by_en.get(_key(en))
        if t is None:
            problems.append(f"{name}: Terms-used row '{en} | {zh}' is not in i18n/terms.csv")
        elif t.zh != zh:
            problems.append(f"{name}: '{en}' is '{zh}' here but '{t.zh}' in i18n/terms.csv")
    if not chinese_edition:
        problems += first_mention_problems(name, cells, table)
    text = "\n".join(cells)
    for t in terms:
        for a in t.avoid:
            if a in text:
                problems.append(f"{name}: uses '{a}'; the book's term for '{t.en}' is '{t.zh}'")
    return problems


def check(notebooks: list[Path] | None = None, terms_csv: Path = TERMS_CSV) -> list[str]:
    """Every problem with the vocabulary and the given notebooks (default: all English chapters)."""
    terms = load_terms(terms_csv)
    paths = notebooks if notebooks is not None else sorted((ROOT / "notebooks").glob(CHAPTER_GLOB))
    problems = vocabulary_problems(terms)
    for p in paths:
        problems += notebook_problems(p, terms)
    return problems


def sort_file(path: Path = TERMS_CSV) -> None:
    """Rewrite ``terms.csv`` sorted by English, case-insensitively."""
    terms = sorted(load_terms(path), key=lambda t: _key(t.en))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["en", "zh", "avoid"])
    for t in terms:
        w.writerow([t.en, t.zh, ";".join(t.avoid)])
    path.write_text(out.getvalue(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="check the vocabulary and the notebooks")
    c.add_argument("notebooks", nargs="*", type=Path)
    t = sub.add_parser("table", help="print the Terms-used table for some English terms")
    t.add_argument("english", nargs="+")
    sub.add_parser("sort", help="sort terms.csv by English")
    args = ap.parse_args(argv)
    if args.cmd == "sort":
        sort_file()
        return 0
    if args.cmd == "table":
        print(markdown_table(load_terms(), args.english))
        return 0
    problems = check(args.notebooks or None)
    for p in problems:
        print(p)
    print(f"{len(load_terms())} terms; {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

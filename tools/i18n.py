#!/usr/bin/env python3
"""The Chinese edition (中文版): built from the English notebooks and one translation file per chapter.

    python tools/i18n.py status               # per chapter: cells translated, missing, out of date
    python tools/i18n.py update 03            # add blocks for new cells (English left in a TODO comment)
    python tools/i18n.py accept 03 <cell-id>  # after re-checking a stale block: record the new English hash
    python tools/i18n.py build [03 ...]       # write notebooks/zh/NN_name.ipynb
    python tools/i18n.py check                # the drift check (what tests/test_i18n.py runs); exit 1 if any

``i18n/zh/NN_name.md`` holds one block per Markdown cell of ``notebooks/NN_name.ipynb``, in order::

    <!-- cell 1a2b3c4d sha 0123456789ab -->
    # 1  张量与自动微分
    ...

``cell`` is the cell's id, ``sha`` the first 12 hex digits of the SHA-256 of its English source when the
block was translated.  Code cells are not translated: the Chinese notebook has the English notebook's code
cells byte for byte, comments included, and the same outputs.  The one exception in outputs is d2lmini's own
messages (the mode banner, divergence and early-stopping lines), which a Chinese run prints in Chinese
(``d2lmini.messages.localize``), so the Chinese notebook shows what running it prints.

The drift check fails, naming the chapter and the cell, when an English Markdown cell changed since its
block was written, when a cell has no block (or only a TODO), when a block's cell is gone, when
``notebooks/zh/`` differs from what ``build`` writes, when a code cell or an output differs between the
editions, or when a chapter's terms are not the terms file's (``tools/terms.py``).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EN_DIR = ROOT / "notebooks"
ZH_DIR = ROOT / "notebooks" / "zh"
TR_DIR = ROOT / "i18n" / "zh"
CHAPTER_GLOB = "[0-9][0-9]_*.ipynb"
MARKER = re.compile(r"^<!-- cell (\S+) sha ([0-9a-f]{12}) -->[ \t]*$", re.M)
TODO = "<!-- TODO"
STALE = "<!-- STALE"
HEADER = ("<!-- Chinese translation of notebooks/{name}.ipynb, one block per Markdown cell, in order.\n"
          "     Edit the text under each marker; keep the marker lines. See tools/i18n.py. -->\n")


def sha(text: str) -> str:
    """The hash recorded for an English cell's source."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass
class Block:
    cell_id: str
    sha: str
    text: str

    @property
    def todo(self) -> bool:
        return self.text.lstrip().startswith(TODO) or not self.text.strip()


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def chapters(selection: list[str] | None = None) -> list[Path]:
    """English chapter notebooks, all or those whose number (``03``) or name is given."""
    paths = sorted(EN_DIR.glob(CHAPTER_GLOB))
    if selection:
        wanted = {s.zfill(2) if s.isdigit() else s for s in selection}
        paths = [p for p in paths if p.name[:2] in wanted or p.stem in wanted]
    return paths


def translation_path(en: Path) -> Path:
    return TR_DIR / f"{en.stem}.md"


def parse(text: str) -> list[Block]:
    """The blocks of a translation file, in order."""
    marks = list(MARKER.finditer(text))
    blocks = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end():end].strip("\n")
        blocks.append(Block(m.group(1), m.group(2), body.rstrip()))
    return blocks


def read_translation(en: Path) -> list[Block]:
    p = translation_path(en)
    return parse(p.read_text(encoding="utf-8")) if p.exists() else []


def write_translation(en: Path, blocks: list[Block]) -> None:
    out = [HEADER.format(name=en.stem)]
    for b in blocks:
        out.append(f"\n<!-- cell {b.cell_id} sha {b.sha} -->\n{b.text.strip(chr(10))}\n")
    p = translation_path(en)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(out), encoding="utf-8")


def markdown_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "markdown"]


# ------------------------------------------------------------------------------------ building

def relink(markdown: str) -> str:
    """Relative links that leave ``notebooks/`` (``](../scripts/x.py)``) go one level further up from
    ``notebooks/zh/``; links to other chapters (``](03_training_loops.ipynb)``) stay, and reach the
    Chinese chapter."""
    return re.sub(r"(\]\()\.\./", r"\1../../", markdown)


def _localize_outputs(outputs: list[dict]) -> list[dict]:
    from d2lmini.messages import localize

    out = copy.deepcopy(outputs)
    for o in out:
        if "text" in o:
            o["text"] = localize("".join(o["text"]) if isinstance(o["text"], list) else o["text"], "zh")
        data = o.get("data", {})
        if "text/plain" in data:
            tp = data["text/plain"]
            data["text/plain"] = localize("".join(tp) if isinstance(tp, list) else tp, "zh")
    return out


def _normalise_text(outputs: list[dict]) -> list[dict]:
    """Outputs with list-of-lines text joined, so that equal outputs compare equal."""
    out = copy.deepcopy(outputs)
    for o in out:
        if isinstance(o.get("text"), list):
            o["text"] = "".join(o["text"])
        for k, v in o.get("data", {}).items():
            if isinstance(v, list):
                o["data"][k] = "".join(v)
    return out


def build_notebook(en: Path) -> tuple[dict, list[str]]:
    """The Chinese notebook for ``en`` and the problems met (missing or stale translations)."""
    nb = read_notebook(en)
    blocks = {b.cell_id: b for b in read_translation(en)}
    problems = []
    zh = copy.deepcopy(nb)
    for i, cell in enumerate(zh["cells"]):
        if cell["cell_type"] == "code":
            cell["outputs"] = _localize_outputs(cell.get("outputs", []))
            continue
        if cell["cell_type"] != "markdown":
            continue
        cid = cell.get("id", f"#{i}")
        b = blocks.get(cid)
        english = source(nb["cells"][i])
        first_line = english.strip().splitlines()[0][:60] if english.strip() else ""
        where = f"{en.name} cell {i + 1} (id {cid}, '{first_line}')"
        if b is None or b.todo:
            problems.append(f"{where}: no Chinese translation yet (i18n/zh/{en.stem}.md)")
            text = english
        else:
            if b.sha != sha(english) or STALE in b.text:
                problems.append(f"{where}: the English changed since it was translated "
                                f"(recorded sha {b.sha}, now {sha(english)}): update the Chinese, then "
                                f"`python tools/i18n.py accept {en.name[:2]} {cid}`")
            text = b.text
        cell["source"] = relink(text).splitlines(keepends=True)
    known = {c.get("id") for c in markdown_cells(nb)}
    for cid in blocks:
        if cid not in known:
            problems.append(f"{en.name}: i18n/zh/{en.stem}.md has a block for cell {cid}, "
                            f"which is no longer a Markdown cell of the chapter: delete the block")
    return zh, problems


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def build(selection: list[str] | None = None) -> list[str]:
    ZH_DIR.mkdir(parents=True, exist_ok=True)
    problems = []
    for en in chapters(selection):
        zh, probs = build_notebook(en)
        problems += probs
        (ZH_DIR / en.name).write_text(dumps(zh), encoding="utf-8")
    return problems


# ------------------------------------------------------------------------------------ checking

def compare_editions(en_nb: dict, zh_nb: dict, name: str) -> list[str]:
    """Code cells byte-identical, outputs identical up to d2lmini's localised messages."""
    problems = []
    en_cells, zh_cells = en_nb["cells"], zh_nb["cells"]
    if len(en_cells) != len(zh_cells):
        return [f"{name}: the English has {len(en_cells)} cells, the Chinese {len(zh_cells)}"]
    for i, (a, b) in enumerate(zip(en_cells, zh_cells, strict=True)):
        if a["cell_type"] != b["cell_type"] or a.get("id") != b.get("id"):
            problems.append(f"{name} cell {i + 1}: cell type or id differs between the editions")
            continue
        if a["cell_type"] != "code":
            continue
        if source(a) != source(b):
            problems.append(f"{name} cell {i + 1} (id {a.get('id')}): the code differs between the editions")
        if _normalise_text(_localize_outputs(a.get("outputs", []))) != _normalise_text(b.get("outputs", [])):
            problems.append(f"{name} cell {i + 1} (id {a.get('id')}): "
                            f"the outputs differ between the editions")
    return problems


def zh_term_problems(en: Path, zh_nb: dict) -> list[str]:
    """The chapter's terms in its Chinese text: each table term's Chinese appears, with the English term in
    parentheses at its first mention; no avoided variant; the table rows are the terms file's."""
    sys.path.insert(0, str(ROOT / "tools"))
    import terms as T

    vocab = {" ".join(t.en.lower().split()): t for t in T.load_terms()}
    en_nb = read_notebook(en)
    table = next((rows for c in markdown_cells(en_nb) if (rows := T.parse_terms_table(source(c)))), [])
    cells = [source(c) for c in markdown_cells(zh_nb)]
    body = T.prose("\n\n".join(cells))
    problems = []
    for en_term, _ in table:
        t = vocab.get(" ".join(en_term.lower().split()))
        if t is None:
            continue  # reported by the English check
        pos = body.find(t.zh)
        if pos < 0:
            problems.append(f"zh/{en.name}: the term '{t.zh}' ({t.en}) of the Terms-used table never appears "
                            f"in the Chinese prose")
            continue
        near = body[pos: pos + len(t.zh) + len(t.en) + 16].lower()
        if t.en.lower() not in near:
            context = " ".join(body[max(0, pos - 20): pos + 40].split())
            problems.append(f"zh/{en.name}: at the first mention of '{t.zh}' give the English term in "
                            f"parentheses: '{t.zh}（{t.en}）' (near '…{context}…')")
    text = "\n".join(cells)
    for t in vocab.values():
        for a in t.avoid:
            if a in text:
                problems.append(f"zh/{en.name}: uses '{a}'; the book's term for '{t.en}' is '{t.zh}'")
    zh_table = next((rows for c in cells if (rows := T.parse_terms_table(c))), [])
    for en_term, zh_term in zh_table:
        t = vocab.get(" ".join(en_term.lower().split()))
        if t is None or t.zh != zh_term:
            problems.append(f"zh/{en.name}: Terms-used row '{en_term} | {zh_term}' "
                            f"differs from i18n/terms.csv")
    if table and not zh_table:
        problems.append(f"zh/{en.name}: the Terms-used table (本章术语) is missing or not a table")
    return problems


def check(selection: list[str] | None = None) -> list[str]:
    """Every drift problem, each naming the chapter and the cell."""
    problems = []
    for en in chapters(selection):
        zh_expected, probs = build_notebook(en)
        problems += probs
        zh_path = ZH_DIR / en.name
        if not zh_path.exists():
            problems.append(f"notebooks/zh/{en.name} is missing: run `python tools/i18n.py build`")
            continue
        committed = read_notebook(zh_path)
        if dumps(committed) != dumps(zh_expected):
            problems.append(f"notebooks/zh/{en.name} differs from what `python tools/i18n.py build` "
                            f"writes: rebuild it")
        problems += compare_editions(read_notebook(en), committed, f"zh/{en.name}")
        problems += zh_term_problems(en, committed)
    return problems


# ------------------------------------------------------------------------------------ editing helpers

def update(selection: list[str]) -> None:
    """Add a TODO block (with the English to translate) for each cell that has none; mark stale blocks."""
    for en in chapters(selection):
        nb = read_notebook(en)
        old = {b.cell_id: b for b in read_translation(en)}
        blocks = []
        for c in markdown_cells(nb):
            english, cid = source(c), c.get("id")
            b = old.get(cid)
            if b is None or b.todo:
                blocks.append(Block(cid, sha(english), f"{TODO} translate:\n{english}\n-->"))
            elif b.sha != sha(english) and STALE not in b.text:
                blocks.append(Block(cid, b.sha, f"{b.text}\n\n{STALE}: the English changed. New English:\n"
                                                f"{english}\n-->"))
            else:
                blocks.append(b)
        write_translation(en, blocks)
        n_todo = sum(b.todo for b in blocks)
        print(f"i18n/zh/{translation_path(en).name}: {len(blocks)} blocks, {n_todo} to translate")


def accept(chapter: str, cell_ids: list[str]) -> None:
    """Record the current English hash for re-checked blocks (and drop their STALE note)."""
    (en,) = chapters([chapter])
    nb = read_notebook(en)
    english = {c.get("id"): source(c) for c in markdown_cells(nb)}
    blocks = read_translation(en)
    for b in blocks:
        if b.cell_id in cell_ids or "all" in cell_ids:
            if b.cell_id not in english:
                raise SystemExit(f"no Markdown cell {b.cell_id} in {en.name}")
            if b.todo:
                continue
            b.sha = sha(english[b.cell_id])
            b.text = b.text.split(STALE)[0].rstrip()
    write_translation(en, blocks)


def status() -> None:
    for en in chapters():
        nb = read_notebook(en)
        blocks = {b.cell_id: b for b in read_translation(en)}
        cells = markdown_cells(nb)
        done = sum(1 for c in cells if (b := blocks.get(c.get("id"))) and not b.todo
                   and b.sha == sha(source(c)) and STALE not in b.text)
        todo = sum(1 for c in cells if (b := blocks.get(c.get("id"))) is None or b.todo)
        print(f"{en.stem:32s} {done:3d}/{len(cells):3d} translated, {todo:3d} missing, "
              f"{len(cells) - done - todo:3d} out of date")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status")
    u = sub.add_parser("update")
    u.add_argument("chapters", nargs="+")
    a = sub.add_parser("accept")
    a.add_argument("chapter")
    a.add_argument("cells", nargs="+", help="cell ids, or 'all'")
    b = sub.add_parser("build")
    b.add_argument("chapters", nargs="*")
    c = sub.add_parser("check")
    c.add_argument("chapters", nargs="*")
    args = ap.parse_args(argv)
    if args.cmd == "status":
        status()
    elif args.cmd == "update":
        update(args.chapters)
    elif args.cmd == "accept":
        accept(args.chapter, args.cells)
    elif args.cmd == "build":
        for p in build(args.chapters or None):
            print("warning:", p)
    else:
        t0 = time.perf_counter()
        problems = check(args.chapters or None)
        for p in problems:
            print(p)
        print(f"drift check: {len(chapters(args.chapters or None))} chapters, {len(problems)} problems, "
              f"{time.perf_counter() - t0:.1f} s")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

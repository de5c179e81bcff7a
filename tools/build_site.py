#!/usr/bin/env python3
"""Build the d2lmini website (Jupyter Book 1.x), both editions, offline, from the committed notebooks.

    python tools/build_site.py            # what `make site` runs: _build/html/ (English) and _build/html/zh/

For each edition (English from notebooks/, Chinese from notebooks/zh/, which tools/i18n.py builds):
1. Stage the book in _build/book_src/ (or _build/book_src_zh/): the configuration, site/_static/, the landing
   page (site/intro.md or site/intro.zh.md, its chapter list filled in), a glossary generated from the
   book's one terms file i18n/terms.csv (with links to the chapters whose "Terms used" table lists each
   term), a table of contents from the chapters that exist now, and a copy of each chapter in which
   * each exercise is followed by its worked solution from solutions/NN_name.ipynb, in a collapsed
     "Show solution" dropdown;
   * live-widget views are dropped (without a kernel they are empty boxes); each explorer's replay, a
     plain HTML range input, is what the page shows;
   * a link at the top goes to the same chapter in the other language;
   * links to repository files outside notebooks/ go to GitHub.
2. Copy a local MathJax 3 (from the django-static-mathjax wheel, the `site` extra), so that pages load
   nothing from the internet.
3. Run `jupyter-book build` with execute_notebooks "off": the committed reader-mode outputs are the content.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import json
import posixpath
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import terms as vocabulary  # noqa: E402  (tools/terms.py)

SITE = ROOT / "site"
SOLUTIONS = ROOT / "solutions"
HTML = ROOT / "_build" / "html"
CHAPTER_GLOB = "[0-9][0-9]_*.ipynb"
CHAPTERS_MARKER = re.compile(r"<!-- CHAPTERS:.*?-->")
REPO_BLOB = "https://github.com/d2lmini/d2lmini/blob/main/"  # as repository.url/branch in site/_config.yml
BINDER_TREE = "urlpath=lab/tree/notebooks/"
INSTALL_HINT = ".venv/bin/pip install -e '.[site]'"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# The parts of MathJax 3 a page can ask for: the combined TeX/MathML component, the TeX extensions it may
# autoload, the CommonHTML output with its fonts, the menu and the assistive MathML it includes.
MATHJAX_PARTS = ["tex-mml-chtml.js", "input/tex/extensions", "output/chtml", "ui", "a11y", "adaptors"]
CHECK_CALL = re.compile(r"""check\(\s*["'](\d{2})\.(\d+)["']""")
SOLUTION_HEADING = re.compile(r"^##\s+Exercise\s+(\d+)\b[^\n]*", re.M)


@dataclass(frozen=True)
class Edition:
    """One language of the book: where its notebooks are, where it is staged and built."""

    lang: str
    nb_dir: Path
    stage: Path
    out: Path
    intro: Path
    title: str
    glossary_title: str
    show_solution: str
    other_label: str  # the link to the other edition, in the other edition's language

    @property
    def other(self) -> Edition:
        return EDITIONS["zh" if self.lang == "en" else "en"]


EDITIONS: dict[str, Edition] = {
    "en": Edition("en", ROOT / "notebooks", ROOT / "_build" / "book_src", HTML, SITE / "intro.md",
                  "d2lmini: deep learning with PyTorch", "Glossary (术语表)", "Show solution", "中文版"),
    "zh": Edition("zh", ROOT / "notebooks" / "zh", ROOT / "_build" / "book_src_zh", HTML / "zh",
                  SITE / "intro.zh.md", "d2lmini：动手学 PyTorch 深度学习", "术语表（Glossary）", "查看解答",
                  "English"),
}


@dataclass
class Chapter:
    """One notebook of the book: where it is, its number and title, and its "Terms used" table."""

    path: Path
    number: int
    title: str
    terms: list[tuple[str, str]] = field(default_factory=list)
    has_outputs: bool = False
    has_images: bool = False
    has_replay: bool = False

    @property
    def docname(self) -> str:
        """The Sphinx document name (the staged path without suffix), e.g. ``notebooks/01_tensors``."""
        return f"notebooks/{self.path.stem}"


def parse_terms(markdown: str) -> list[tuple[str, str]]:
    """The (English, 中文) rows of a chapter's "Terms used" table (see ``tools/terms.py``)."""
    return vocabulary.parse_terms_table(markdown)


def read_chapter(path: Path) -> Chapter:
    """Read a chapter notebook: number (from its file name), title (first ``# `` heading), terms, outputs."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    number = int(path.name[:2])
    title = path.stem
    terms: list[tuple[str, str]] = []
    title_found = False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        if not title_found:
            m = re.search(r"^#\s+(.+?)\s*$", cell.source, flags=re.M)
            if m:
                title, title_found = m.group(1), True
        if not terms:
            terms = parse_terms(cell.source)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    images = any(k.startswith("image/") for o in outputs for k in o.get("data", {}))
    replay = any('class="d2l-replay"' in "".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    return Chapter(path, number, title, terms, has_outputs=bool(outputs), has_images=images,
                   has_replay=replay)


def find_chapters(nb_dir: Path = ROOT / "notebooks") -> list[Chapter]:
    """Every ``NN_*.ipynb`` in ``nb_dir`` that exists now, sorted by file name."""
    return [read_chapter(p) for p in sorted(nb_dir.glob(CHAPTER_GLOB))]


def short_title(ch: Chapter) -> str:
    """The title without its leading chapter number: ``"3  Training loops"`` -> ``"Training loops"``."""
    return re.sub(rf"^{ch.number}\.?\s+", "", ch.title).strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def chapter_list_markdown(chapters: list[Chapter], lang: str = "en") -> str:
    """The landing page's chapter table (number, linked title)."""
    lines = ["| # | Chapter |" if lang == "en" else "| # | 章 |", "|---|---|"]
    for ch in chapters:
        lines.append(f"| {ch.number} | [{_cell(short_title(ch))}]({ch.docname}.ipynb) |")
    return "\n".join(lines)


def _sort_key(english: str) -> tuple[str, str]:
    letters = re.sub(r"[^0-9a-z]+", " ", english.lower()).strip()
    return (re.sub(r"^[0-9 ]+", "", letters) or letters, english.lower())


def glossary_markdown(chapters: list[Chapter], terms: list[vocabulary.Term] | None = None,
                      lang: str = "en") -> str:
    """The glossary page: every term of ``i18n/terms.csv`` (English – 中文), sorted by English, with links to
    the chapters whose "Terms used" table lists it."""
    terms = vocabulary.load_terms() if terms is None else terms
    uses: dict[str, list[Chapter]] = {}
    for ch in chapters:
        for en, _ in ch.terms:
            uses.setdefault(" ".join(en.lower().split()), []).append(ch)
    n_used = sum(1 for t in terms if " ".join(t.en.lower().split()) in uses)
    if lang == "en":
        out = ["# Glossary (术语表)", "",
               "Every key term of the book with its one Chinese name (English – 中文), from the book's",
               f"terms file `i18n/terms.csv`: {len(terms)} terms, {n_used} of them listed in the "
               f"**Terms used** tables of {sum(1 for c in chapters if c.terms)} chapters. "
               "The last column links to those chapters.",
               "", "| English | 中文 | Chapters |", "|---|---|---|"]
    else:
        out = ["# 术语表（Glossary）", "",
               "本书所有关键术语的中英对照，取自全书唯一的术语文件 `i18n/terms.csv`：",
               f"共 {len(terms)} 个术语，其中 {n_used} 个出现在 {sum(1 for c in chapters if c.terms)} 章的"
               "“本章术语”表中；最后一列链接到这些章节。",
               "", "| 中文 | English | 章节 |", "|---|---|---|"]
    for t in sorted(terms, key=lambda t: _sort_key(t.en)):
        chs = uses.get(" ".join(t.en.lower().split()), [])
        links = ", ".join(f"{{doc}}`{c.number} <{c.docname}>`" for c in chs)
        first, second = (t.en, t.zh) if lang == "en" else (t.zh, t.en)
        out.append(f"| {_cell(first)} | {_cell(second)} | {links} |")
    return "\n".join(out) + "\n"


def toc_yaml(chapters: list[Chapter], lang: str = "en") -> str:
    """The Jupyter Book table of contents: landing page, the chapters in order, the glossary."""
    caption, ref = ("Chapters", "Reference") if lang == "en" else ("章节", "参考")
    lines = ["# Generated by tools/build_site.py from the chapter notebooks: do not edit.", "format: jb-book",
             "root: intro", "parts:", f"  - caption: {caption}", "    chapters:"]
    lines += [f"      - file: {ch.docname}" for ch in chapters]
    lines += [f"  - caption: {ref}", "    chapters:", "      - file: glossary"]
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _copy_if_changed(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
        shutil.copy2(src, dst)


def mathjax_dir() -> Path:
    """The ``es5`` folder of the MathJax 3 copy that the django-static-mathjax wheel installs."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"MathJax is missing: install the site extra: {INSTALL_HINT}")
    es5 = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").exists():
        raise SystemExit(f"{es5}/tex-mml-chtml.js not found: reinstall django-static-mathjax")
    return es5


def repo_links(markdown: str, depth: int = 1) -> str:
    """Point a notebook's relative links to repository files outside notebooks/ (``](../scripts/x.py)``) at
    the file on GitHub: they work in JupyterLab but the website has no copy of those files.  ``depth`` is
    how many folders the notebook is below the repository (2 for notebooks/zh/)."""
    base = "notebooks" if depth == 1 else "notebooks/zh"

    def fix(m: re.Match) -> str:
        target = posixpath.normpath(posixpath.join(base, m.group(2)))
        if target.startswith("notebooks/") or target.startswith(".."):
            return m.group(0)
        return f"{m.group(1)}{REPO_BLOB}{target}{m.group(3) or ''})"

    return re.sub(r"(\]\()(\.\./[^)\s#]+)(#[^)\s]*)?\)", fix, markdown)


# ------------------------------------------------------------------------------------ solutions

def _output_markdown(out: dict) -> str:
    """A solution cell's output as Markdown inside the dropdown: text as a block, a PNG as an image."""
    kind = out.get("output_type")
    if kind == "stream":
        text = "".join(out.get("text", "")).rstrip()
        return f"```text\n{text}\n```" if text else ""
    data = out.get("data", {})
    if "image/png" in data:
        png = "".join(data["image/png"]).replace("\n", "")
        return f'<img alt="solution figure" style="max-width:100%" src="data:image/png;base64,{png}">'
    if "text/plain" in data and kind == "execute_result":
        text = "".join(data["text/plain"]).rstrip()
        return f"```text\n{text}\n```"
    return ""


def solution_blocks(solutions_nb: Path) -> dict[int, str]:
    """Exercise number -> the Markdown of its worked solution, from a solutions notebook whose sections
    start with ``## Exercise k``: its text, its code as Python blocks and its outputs."""
    if not solutions_nb.exists():
        return {}
    nb = json.loads(solutions_nb.read_text(encoding="utf-8"))
    blocks: dict[int, list[str]] = {}
    current: int | None = None
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            m = SOLUTION_HEADING.search(src)
            if m:
                current = int(m.group(1))
                rest = src[m.end():].strip()
                blocks[current] = [rest] if rest else []
                continue
            if src.lstrip().startswith("#"):
                current = None  # another section (e.g. the closing summary)
                continue
            if current is not None:
                blocks[current].append(src)
        elif cell["cell_type"] == "code" and current is not None:
            if re.search(r"^\s*report\(", src, flags=re.M):
                continue
            blocks[current].append(f"```python\n{src.rstrip()}\n```")
            blocks[current] += [md for o in cell.get("outputs", []) if (md := _output_markdown(o))]
    return {k: "\n\n".join(v) for k, v in blocks.items()}


def insert_solutions(nb, blocks: dict[int, str], number: int, label: str) -> list[int]:
    """Insert each solution right after the last code cell of its exercise (the cell that calls
    ``check("NN.k", ...)``), in a collapsed dropdown.  Returns the exercise numbers placed."""
    import nbformat

    last_cell: dict[int, int] = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for m in CHECK_CALL.finditer(cell.source):
                if int(m.group(1)) == number:
                    last_cell[int(m.group(2))] = i
    placed = []
    for k in sorted(blocks, key=lambda k: last_cell.get(k, -1), reverse=True):
        if k not in last_cell:
            continue
        md = (f"::::{{dropdown}} {label} ({k})\n:class-container: d2l-solution\n\n{blocks[k]}\n::::")
        nb.cells.insert(last_cell[k] + 1, nbformat.v4.new_markdown_cell(md))
        placed.append(k)
    return sorted(placed)


# ------------------------------------------------------------------------------------ staging

def language_link(ch: Chapter, ed: Edition) -> str:
    """Raw HTML: a link from this chapter's page to the same chapter in the other edition."""
    href = f"../zh/{ch.docname}.html" if ed.lang == "en" else f"../../{ch.docname}.html"
    other = ed.other.lang
    return (f'<p class="d2l-lang-link"><a href="{href}" hreflang="{other}" lang="{other}">'
            f"{ed.other_label}</a></p>")


def staged_notebook(path: Path, ed: Edition | None = None, ch: Chapter | None = None) -> str:
    """The notebook's JSON for the book: the same cells and outputs, except that ``language_info``
    defaults to Python (myst-nb needs it to highlight the code), live-widget views are dropped, repository
    links go to GitHub, and (given the edition) the solutions and the language link are added."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    depth = 2 if ed is not None and ed.lang == "zh" else 1
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = repo_links(cell.source, depth)
        elif cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    if ed is not None and ch is not None:
        insert_solutions(nb, solution_blocks(SOLUTIONS / path.name), ch.number, ed.show_solution)
        first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
        if first_md is not None:
            lines = first_md.source.split("\n")
            at = next((i for i, ln in enumerate(lines) if ln.startswith("# ")), -1) + 1
            lines[at:at] = ["", language_link(ch, ed), ""]
            first_md.source = "\n".join(lines)
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python",
                                          "name": "python3"})
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("widgets", None)
    return nbformat.writes(nb) + "\n"


def config_yaml(ed: Edition) -> str:
    """site/_config.yml for this edition (the Chinese one gets its title and Sphinx language)."""
    text = (SITE / "_config.yml").read_text(encoding="utf-8")
    if ed.lang == "zh":
        text = re.sub(r"^title: .*$", f'title: "{ed.title}"', text, count=1, flags=re.M)
        text = re.sub(r"^(\s+)language: en\s*$", r"\1language: zh_CN", text, count=1, flags=re.M)
    return text


def stage(chapters: list[Chapter], ed: Edition = EDITIONS["en"]) -> None:
    """Write the edition's sources into ``ed.stage`` (only files whose content changed are touched)."""
    stage_dir = ed.stage
    _write_if_changed(stage_dir / "_config.yml", config_yaml(ed))
    for f in (SITE / "_static").rglob("*"):
        if f.is_file():
            _copy_if_changed(f, stage_dir / "_static" / f.relative_to(SITE / "_static"))
    es5 = mathjax_dir()
    for part in MATHJAX_PARTS:
        src = es5 / part
        for f in [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file()):
            _copy_if_changed(f, stage_dir / "_mathjax" / "mathjax" / f.relative_to(es5))
    intro = ed.intro.read_text(encoding="utf-8")
    if not CHAPTERS_MARKER.search(intro):
        raise SystemExit(f"{ed.intro.name} lost its '<!-- CHAPTERS: ... -->' line: the chapter list goes "
                         f"there")
    intro = CHAPTERS_MARKER.sub(lambda _: chapter_list_markdown(chapters, ed.lang), intro)
    _write_if_changed(stage_dir / "intro.md", intro)
    _write_if_changed(stage_dir / "glossary.md", glossary_markdown(chapters, lang=ed.lang))
    _write_if_changed(stage_dir / "_toc.yml", toc_yaml(chapters, ed.lang))
    staged_nb = stage_dir / "notebooks"
    keep = {ch.path.name for ch in chapters}
    for ch in chapters:
        _write_if_changed(staged_nb / ch.path.name, staged_notebook(ch.path, ed, ch))
    for old in staged_nb.glob("*.ipynb"):  # a chapter renamed or removed since the last build
        if old.name not in keep:
            old.unlink()


def jupyter_book() -> str:
    exe = Path(sys.executable).parent / "jupyter-book"
    found = str(exe) if exe.exists() else shutil.which("jupyter-book")
    if not found:
        raise SystemExit(f"jupyter-book is missing: install the site extra: {INSTALL_HINT}")
    return found


def _fix_zh_binder_links(html_dir: Path) -> None:
    """The Chinese pages' Binder buttons open the Chinese notebooks (notebooks/zh/NN.ipynb)."""
    for page in html_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = text.replace(BINDER_TREE, BINDER_TREE + "zh/")
        new = new.replace(BINDER_TREE + "zh/zh/", BINDER_TREE + "zh/")
        if new != text:
            page.write_text(new, encoding="utf-8")


def build_edition(ed: Edition, strict: bool = False) -> list[Chapter]:
    """Stage and build one edition into ``ed.out``; returns its chapters."""
    chapters = find_chapters(ed.nb_dir)
    if not chapters:
        if ed.lang == "zh":
            print("note: notebooks/zh/ has no chapters yet (python tools/i18n.py build); no Chinese edition")
            return []
        raise SystemExit(f"no notebooks matching {ed.nb_dir}/{CHAPTER_GLOB}")
    stage(chapters, ed)
    for ch in chapters:
        if not ch.has_outputs:
            print(f"note: {ch.path.name} has no committed outputs yet; its page shows the code only")
    out_root = ROOT if ed.lang == "en" else ROOT / "_build" / "zh_build"
    cmd = [jupyter_book(), "build", str(ed.stage), "--path-output", str(out_root), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        raise SystemExit(f"jupyter-book build of the {ed.lang} edition failed (see above)")
    if ed.lang == "zh":
        built = out_root / "_build" / "html"
        shutil.copytree(built, ed.out, dirs_exist_ok=True)
        _fix_zh_binder_links(ed.out)
    return chapters


def build(strict: bool = False, fresh: bool = False,
          languages: tuple[str, ...] = ("en", "zh")) -> list[Chapter]:
    """Build the editions into ``_build/html`` (English) and ``_build/html/zh``; returns the English
    chapters."""
    t0 = time.perf_counter()
    if fresh:
        for d in ("html", ".doctrees", "jupyter_execute", "book_src", "book_src_zh", "zh_build"):
            shutil.rmtree(ROOT / "_build" / d, ignore_errors=True)
    chapters: list[Chapter] = []
    summary = []
    for lang in languages:
        chs = build_edition(EDITIONS[lang], strict)
        if lang == "en":
            chapters = chs
        summary.append(f"{lang}: {len(chs)} chapters")
    pages = sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)
    print(f"site: {len(pages)} HTML pages ({', '.join(summary)}; landing pages, glossaries with "
          f"{len(vocabulary.load_terms())} terms, search) in {HTML.relative_to(ROOT)}/ built in "
          f"{time.perf_counter() - t0:.0f} s")
    return chapters


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strict", action="store_true", help="turn Sphinx warnings into errors")
    ap.add_argument("--fresh", action="store_true", help="delete the staged sources and the old HTML first")
    ap.add_argument("--lang", choices=["en", "zh"], action="append", help="build only this edition")
    args = ap.parse_args()
    build(strict=args.strict, fresh=args.fresh, languages=tuple(args.lang or ("en", "zh")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

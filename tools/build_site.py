#!/usr/bin/env python3
"""Build the d2lmini website (Jupyter Book 1.x) from the committed notebooks, offline, without executing them.

    python tools/build_site.py            # what `make site` runs; the site lands in _build/html/

Steps:
1. Stage the book in _build/book_src/: site/_config.yml, site/_static/, the landing page site/intro.md (its
   chapter list filled in), a glossary generated from every chapter's "Terms used" table (English | 中文),
   a table of contents generated from the notebooks/NN_*.ipynb that exist now (sorted), and copies of those
   notebooks at notebooks/NN_*.ipynb, so that each page's Binder link points at the repository's notebook.
2. Copy a local MathJax 3 (from the django-static-mathjax wheel, the `site` extra) into _mathjax/, which
   becomes mathjax/ in the built site, so that the pages load nothing from the internet.
3. Run `jupyter-book build` with execute_notebooks "off": the committed reader-mode outputs are the content.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import posixpath
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
STAGE = ROOT / "_build" / "book_src"
HTML = ROOT / "_build" / "html"
CHAPTER_GLOB = "[0-9][0-9]_*.ipynb"
CHAPTERS_MARKER = re.compile(r"<!-- CHAPTERS:.*?-->")
# The parts of MathJax 3 a page can ask for: the combined TeX/MathML component, the TeX extensions it may
# autoload, the CommonHTML output with its fonts, the menu and the assistive MathML it includes.
REPO_BLOB = "https://github.com/d2lmini/d2lmini/blob/main/"  # as repository.url/branch in site/_config.yml
INSTALL_HINT = ".venv/bin/pip install -e '.[site]'"
MATHJAX_PARTS = ["tex-mml-chtml.js", "input/tex/extensions", "output/chtml", "ui", "a11y", "adaptors"]


@dataclass
class Chapter:
    """One notebook of the book: where it is, its number and title, and its "Terms used" table."""

    path: Path
    number: int
    title: str
    terms: list[tuple[str, str]] = field(default_factory=list)
    has_outputs: bool = False
    has_images: bool = False

    @property
    def docname(self) -> str:
        """The Sphinx document name (the staged path without suffix), e.g. ``notebooks/01_tensors``."""
        return f"notebooks/{self.path.stem}"


def _split_row(line: str) -> list[str]:
    """Cells of a Markdown table row; ``\\|`` inside a cell is kept as a literal bar."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", line)]


def parse_terms(markdown: str) -> list[tuple[str, str]]:
    """The (English, 中文) rows of the first Markdown table under a "Terms used" heading in ``markdown``.

    The header row and the ``|---|---|`` separator are skipped; the table ends at the first line that is not
    a table row. Returns ``[]`` when there is no such heading. Raises ``ValueError`` for a row that does not
    have two non-empty cells, naming the row, so a malformed table fails the build instead of vanishing.
    """
    lines = markdown.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"^#{1,6}\s*Terms used\b", ln.strip())), None)
    if start is None:
        return []
    rows: list[tuple[str, str]] = []
    in_table = False
    header_seen = False
    for ln in lines[start + 1:]:
        s = ln.strip()
        if not s.startswith("|"):
            if in_table:
                break
            if s.startswith("#"):
                break
            continue
        in_table = True
        cells = _split_row(s)
        if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
            continue  # the separator row
        if not header_seen:
            header_seen = True
            continue  # English | 中文
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise ValueError(f"'Terms used' row needs 'English | 中文', got: {ln!r}")
        rows.append((cells[0], cells[1]))
    return rows


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
    return Chapter(path, number, title, terms, has_outputs=bool(outputs), has_images=images)


def find_chapters(nb_dir: Path = ROOT / "notebooks") -> list[Chapter]:
    """Every ``notebooks/NN_*.ipynb`` that exists now, sorted by file name."""
    return [read_chapter(p) for p in sorted(nb_dir.glob(CHAPTER_GLOB))]


def short_title(ch: Chapter) -> str:
    """The title without its leading chapter number: ``"3  Training loops"`` -> ``"Training loops"``."""
    return re.sub(rf"^{ch.number}\.?\s+", "", ch.title).strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def chapter_list_markdown(chapters: list[Chapter]) -> str:
    """The landing page's chapter table (number, linked title)."""
    lines = ["| # | Chapter |", "|---|---|"]
    for ch in chapters:
        lines.append(f"| {ch.number} | [{_cell(short_title(ch))}]({ch.docname}.ipynb) |")
    return "\n".join(lines)


def _sort_key(english: str) -> tuple[str, str]:
    letters = re.sub(r"[^0-9a-z]+", " ", english.lower()).strip()
    return (re.sub(r"^[0-9 ]+", "", letters) or letters, english.lower())


def glossary_markdown(chapters: list[Chapter]) -> str:
    """The glossary page: every term of every chapter's "Terms used" table, merged and sorted by English.

    A term used by several chapters is listed once, with each distinct Chinese rendering and links to the
    chapters that list it.
    """
    merged: dict[str, dict] = {}
    for ch in chapters:
        for en, zh in ch.terms:
            key = " ".join(en.lower().split())
            entry = merged.setdefault(key, {"en": en, "zh": [], "chapters": []})
            if zh not in entry["zh"]:
                entry["zh"].append(zh)
            if ch not in entry["chapters"]:
                entry["chapters"].append(ch)
    out = [
        "# Glossary (术语表)",
        "",
        "Every key term of the book with its Chinese name (English – 中文), collected from the",
        "**Terms used** table at the end of each chapter when this site was built: "
        f"{len(merged)} terms from {sum(1 for c in chapters if c.terms)} chapters.",
        "The last column links to the chapters that use a term.",
        "",
        "| English | 中文 | Chapters |",
        "|---|---|---|",
    ]
    for entry in sorted(merged.values(), key=lambda e: _sort_key(e["en"])):
        links = ", ".join(f"{{doc}}`{c.number} <{c.docname}>`" for c in entry["chapters"])
        out.append(f"| {_cell(entry['en'])} | {_cell('；'.join(entry['zh']))} | {links} |")
    return "\n".join(out) + "\n"


def toc_yaml(chapters: list[Chapter]) -> str:
    """The Jupyter Book table of contents: landing page, the chapters in order, the glossary."""
    lines = ["# Generated by tools/build_site.py from notebooks/NN_*.ipynb: do not edit.", "format: jb-book",
             "root: intro", "parts:", "  - caption: Chapters", "    chapters:"]
    lines += [f"      - file: {ch.docname}" for ch in chapters]
    lines += ["  - caption: Reference", "    chapters:", "      - file: glossary"]
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


def repo_links(markdown: str) -> str:
    """Point a notebook's relative links to repository files outside notebooks/ (``](../scripts/x.py)``) at
    the file on GitHub: they work in JupyterLab but the website has no copy of those files."""

    def fix(m: re.Match) -> str:
        target = posixpath.normpath(posixpath.join("notebooks", m.group(2)))
        if target.startswith("notebooks/") or target.startswith(".."):
            return m.group(0)
        return f"{m.group(1)}{REPO_BLOB}{target}{m.group(3) or ''})"

    return re.sub(r"(\]\()(\.\./[^)\s#]+)(#[^)\s]*)?\)", fix, markdown)


def staged_notebook(path: Path) -> str:
    """The notebook's JSON for the book: the same cells and outputs, except that ``language_info`` defaults
    to Python when a notebook that was never executed lacks it (myst-nb needs it to highlight the code) and
    links to repository files outside notebooks/ go to GitHub (:func:`repo_links`)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = repo_links(cell.source)
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python",
                                          "name": "python3"})
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nbformat.writes(nb) + "\n"


def stage(chapters: list[Chapter], stage_dir: Path = STAGE) -> None:
    """Write the book's sources into ``stage_dir`` (only files whose content changed are touched)."""
    _copy_if_changed(SITE / "_config.yml", stage_dir / "_config.yml")
    for f in (SITE / "_static").rglob("*"):
        if f.is_file():
            _copy_if_changed(f, stage_dir / "_static" / f.relative_to(SITE / "_static"))
    es5 = mathjax_dir()
    for part in MATHJAX_PARTS:
        src = es5 / part
        for f in [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file()):
            _copy_if_changed(f, stage_dir / "_mathjax" / "mathjax" / f.relative_to(es5))
    intro = (SITE / "intro.md").read_text(encoding="utf-8")
    if not CHAPTERS_MARKER.search(intro):
        raise SystemExit("site/intro.md lost its '<!-- CHAPTERS: ... -->' line: the chapter list goes there")
    intro = CHAPTERS_MARKER.sub(lambda _: chapter_list_markdown(chapters), intro)
    _write_if_changed(stage_dir / "intro.md", intro)
    _write_if_changed(stage_dir / "glossary.md", glossary_markdown(chapters))
    _write_if_changed(stage_dir / "_toc.yml", toc_yaml(chapters))
    staged_nb = stage_dir / "notebooks"
    keep = {ch.path.name for ch in chapters}
    for ch in chapters:
        _write_if_changed(staged_nb / ch.path.name, staged_notebook(ch.path))
    for old in staged_nb.glob("*.ipynb"):  # a chapter renamed or removed since the last build
        if old.name not in keep:
            old.unlink()


def jupyter_book() -> str:
    exe = Path(sys.executable).parent / "jupyter-book"
    found = str(exe) if exe.exists() else shutil.which("jupyter-book")
    if not found:
        raise SystemExit(f"jupyter-book is missing: install the site extra: {INSTALL_HINT}")
    return found


def build(strict: bool = False, fresh: bool = False) -> list[Chapter]:
    """Stage and build the site into ``_build/html``; returns the chapters it contains."""
    t0 = time.perf_counter()
    chapters = find_chapters()
    if not chapters:
        raise SystemExit(f"no notebooks matching notebooks/{CHAPTER_GLOB}")
    if fresh:
        shutil.rmtree(STAGE, ignore_errors=True)
        shutil.rmtree(HTML, ignore_errors=True)
        shutil.rmtree(ROOT / "_build" / ".doctrees", ignore_errors=True)
        shutil.rmtree(ROOT / "_build" / "jupyter_execute", ignore_errors=True)
    stage(chapters)
    for ch in chapters:
        if not ch.has_outputs:
            print(f"note: {ch.path.name} has no committed outputs yet; its page shows the code only")
        if not ch.terms:
            print(f"note: {ch.path.name} has no 'Terms used' table; the glossary skips it")
    cmd = [jupyter_book(), "build", str(STAGE), "--path-output", str(ROOT), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        raise SystemExit("jupyter-book build failed (see above)")
    pages = sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)
    n_terms = len({" ".join(en.lower().split()) for ch in chapters for en, _ in ch.terms})
    print(f"site: {len(pages)} HTML pages ({len(chapters)} chapters, landing, glossary with {n_terms} terms, "
          f"search/index) in {HTML.relative_to(ROOT)}/ built in {time.perf_counter() - t0:.0f} s")
    return chapters


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strict", action="store_true", help="turn Sphinx warnings into errors")
    ap.add_argument("--fresh", action="store_true", help="delete the staged sources and the old HTML first")
    args = ap.parse_args()
    build(strict=args.strict, fresh=args.fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

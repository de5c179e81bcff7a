"""The website in a real browser: build it, serve it on 127.0.0.1, open every page in headless Chromium.

Run with `make site-test` (part of `make test`). Needs Debian's `chromium` and `chromium-driver`
(`apt-get install chromium chromium-driver`) and the `site` extra (jupyter-book<2, selenium,
django-static-mathjax). Without chromium the test is skipped with the reason, except in CI (CI=true), where
it fails: the browser check must run there. Selenium drives the system chromedriver; Selenium Manager never
downloads anything (SE_OFFLINE=true and an explicit driver path).

What is checked on every chapter page of both editions (English in _build/html/, Chinese in
_build/html/zh/): no console message of level SEVERE (none is ignored: the site loads nothing from outside,
and every resource a page requests must come from the test server; links to Binder and GitHub are plain <a>
links the browser does not fetch), the chapter's title, every <img> decoded (naturalWidth > 0) and at least
one figure where the notebook has an image output, MathJax typeset with no TeX error where the page has
math, a Binder link to that chapter's notebook, and a language link that opens the same chapter in the
other edition. Each explorer's replay slider, moved with the keyboard, changes its figure; each exercise's
"Show solution" toggle starts closed and opens to show code. The glossaries show the terms file's Chinese
terms. Screenshots land in _build/screenshots/.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BINDER = "https://mybinder.org/v2/gh/d2lmini/d2lmini/main?urlpath=lab/tree/notebooks/"
CJK = re.compile(r"[\u4e00-\u9fff]")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Console messages that are expected and harmless. Empty on purpose: the built site needs no network.
IGNORED_CONSOLE: list[re.Pattern] = []
# `make site-test` runs with two workers (--dist loadgroup): this module's tests stay on one of them, so
# the site is built once and served by one server, while the JupyterLab tests share out the rest.
pytestmark = pytest.mark.xdist_group("website")

if not os.environ.get("D2LMINI_SITE_TEST"):
    pytest.skip("the browser test of the website runs with `make site-test` (part of `make test`)",
                allow_module_level=True)


def _missing() -> str | None:
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).exists():
            return f"{exe} not found: apt-get install chromium chromium-driver"
    for mod in ("selenium", "jupyter_book"):
        if importlib.util.find_spec(mod) is None:
            return f"python package {mod} missing: .venv/bin/pip install -e '.[site]'"
    return None


if (_reason := _missing()) is not None:
    if IN_CI:
        pytest.fail(f"CI must run the browser test, but {_reason}", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

_spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
sys.modules["build_site"] = build_site
_spec.loader.exec_module(build_site)

CHAPTERS = build_site.find_chapters()
ZH_CHAPTERS = build_site.find_chapters(ROOT / "notebooks" / "zh")
PAGES = [("en", c) for c in CHAPTERS] + [("zh", c) for c in ZH_CHAPTERS]
SOLVED = {p.name for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")}


def _prefix(lang: str) -> str:
    return "" if lang == "en" else "zh/"


@pytest.fixture(scope="module")
def site() -> Path:
    """Build the site (incrementally) exactly as `make site` does."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_site.py")], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"site build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    print(f"\nsite built in {time.perf_counter() - t0:.0f} s: {proc.stdout.strip().splitlines()[-1]}")
    return HTML


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def base_url(site):
    """The built site served over HTTP on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never download a driver or a browser
    profile = tempfile.mkdtemp(prefix="d2lmini-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(driver, url: str) -> None:
    """Load ``url``, wait for the load event and for MathJax's first typeset, if the page has MathJax."""
    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(url)
    deadline = time.time() + 30
    while driver.execute_script("return document.readyState") != "complete":
        assert time.time() < deadline, f"{url} never finished loading"
        time.sleep(0.1)
    driver.set_script_timeout(30)
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const wait = () => {
          if (!window.MathJax) { done(false); return; }
          if (MathJax.startup && MathJax.startup.promise) { MathJax.startup.promise.then(() => done(true)); }
          else { setTimeout(wait, 50); }
        };
        wait();""")


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(p.search(e["message"]) for p in IGNORED_CONSOLE)]


def _foreign_requests(driver, base_url: str) -> list[str]:
    names = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [n for n in names if not n.startswith(base_url) and not n.startswith("data:")]


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("lang, chapter", PAGES, ids=[f"{lang}-{c.path.stem}" for lang, c in PAGES])
def test_chapter_page(browser, base_url, lang, chapter):
    url = f"{base_url}{_prefix(lang)}{chapter.docname}.html"
    _open(browser, url)
    errors = _console_errors(browser)
    assert not errors, f"{url}: console errors:\n" + "\n".join(errors)
    assert not (foreign := _foreign_requests(browser, base_url)), f"{url} loaded from outside: {foreign}"

    title = _norm(chapter.title)
    assert _norm(browser.title).startswith(title), f"page title {browser.title!r}, want {title!r}"
    h1 = browser.execute_script("return document.querySelector('article h1').textContent")
    assert title in _norm(h1.replace("#", "")), f"<h1> is {h1!r}, want {title!r}"

    images = browser.execute_script("""return Array.from(document.querySelectorAll('article img')).map(
        i => ({src: i.getAttribute('src'), w: i.naturalWidth, out: !!i.closest('.cell_output')}));""")
    broken = [i["src"][:80] for i in images if i["w"] == 0]
    assert not broken, f"{url}: images that did not load: {broken}"
    if chapter.has_images:
        assert any(i["out"] for i in images), f"{url}: the notebook has an image output but no figure shows"

    math = browser.execute_script("return document.querySelectorAll('.math').length")
    if math:
        typeset = browser.execute_script("return document.querySelectorAll('mjx-container').length")
        assert typeset > 0, f"{url}: {math} formulas, none typeset by MathJax"
        bad = browser.execute_script("""return Array.from(document.querySelectorAll('mjx-merror')).map(
            e => e.getAttribute('data-mjx-error'));""")
        assert not bad, f"{url}: TeX errors: {bad}"

    hrefs = browser.execute_script(
        "return Array.from(document.querySelectorAll('a[href*=\"mybinder.org\"]')).map(a => a.href)")
    want = BINDER + _prefix(lang) + chapter.path.name
    assert want in hrefs, f"{url}: Binder links {hrefs}, want {want}"

    if lang == "en" and not ZH_CHAPTERS:
        return  # no Chinese edition built yet: nothing for the language link to open
    other = browser.execute_script("const a = document.querySelector('.d2l-lang-link a'); return a && a.href")
    other_lang = "zh" if lang == "en" else "en"
    assert other == f"{base_url}{_prefix(other_lang)}{chapter.docname}.html", f"{url}: language link {other}"
    _open(browser, other)
    assert not _console_errors(browser), f"{other}: console errors"
    h1 = browser.execute_script("return document.querySelector('article h1') && "
                                "document.querySelector('article h1').textContent")
    assert h1 and h1.replace("#", "").strip().startswith(str(chapter.number)), f"{other}: <h1> {h1!r}"


@pytest.mark.parametrize("lang, chapter", [p for p in PAGES if p[1].has_replay],
                         ids=[f"{lang}-{c.path.stem}" for lang, c in PAGES if c.has_replay])
def test_replay_slider_changes_the_figure(browser, base_url, lang, chapter):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url = f"{base_url}{_prefix(lang)}{chapter.docname}.html"
    _open(browser, url)
    replays = browser.find_elements(By.CSS_SELECTOR, ".d2l-replay")
    assert replays, f"{url}: the notebook has a replay output but the page shows none"
    for k, replay in enumerate(replays):
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", replay)
        img = replay.find_element(By.CSS_SELECTOR, "img.d2l-replay-img")
        before = (img.get_attribute("src")[-300:], replay.get_attribute("data-frame"))
        assert img.get_property("naturalWidth") > 0, f"{url}: replay {k + 1} shows no picture"
        ranges = replay.find_elements(By.CSS_SELECTOR, "input.d2l-replay-range")
        slider = ranges[0]
        at_end = slider.get_attribute("value") == slider.get_attribute("max")
        key = Keys.ARROW_LEFT if at_end else Keys.ARROW_RIGHT
        browser.execute_script("arguments[0].focus()", slider)  # a click would move it to where it lands
        slider.send_keys(key)
        after = (img.get_attribute("src")[-300:], replay.get_attribute("data-frame"))
        assert after[1] != before[1] and after[0] != before[0], (
            f"{url}: moving replay {k + 1}'s slider did not change its figure")
        label = replay.find_element(By.CSS_SELECTOR, ".d2l-replay-value").text
        assert label, f"{url}: replay {k + 1} shows no value for its slider"
    assert not _console_errors(browser), f"{url}: console errors after moving the replay sliders"
    if chapter is next(c for _, c in PAGES if c.has_replay) and lang == "en":
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / f"{chapter.path.stem}_replay.png"))


@pytest.mark.parametrize("lang, chapter", [p for p in PAGES if p[1].path.name in SOLVED],
                         ids=[f"{lang}-{c.path.stem}" for lang, c in PAGES if c.path.name in SOLVED])
def test_solutions_are_behind_toggles_that_open(browser, base_url, lang, chapter):
    from selenium.webdriver.common.by import By

    url = f"{base_url}{_prefix(lang)}{chapter.docname}.html"
    _open(browser, url)
    toggles = browser.find_elements(By.CSS_SELECTOR, "details.d2l-solution")
    assert toggles, f"{url}: no solution toggles, though solutions/{chapter.path.name} exists"
    assert all(t.get_attribute("open") is None for t in toggles), f"{url}: a solution is open on load"
    first = toggles[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", first)
    code = first.find_elements(By.CSS_SELECTOR, "pre")
    assert code and not code[0].is_displayed(), f"{url}: the first solution's code shows before opening"
    first.find_element(By.CSS_SELECTOR, "summary").click()
    time.sleep(0.3)
    assert first.get_attribute("open") is not None, f"{url}: the solution toggle did not open"
    assert code[0].is_displayed() and code[0].text.strip(), f"{url}: the opened solution shows no code"


def test_chapter_screenshot(browser, base_url):
    """A screenshot of the first chapter with a figure: the top of the page and its first figure."""
    chapter = next((c for c in CHAPTERS if c.has_images), CHAPTERS[0])
    _open(browser, f"{base_url}{chapter.docname}.html")
    SHOTS.mkdir(parents=True, exist_ok=True)
    top = SHOTS / f"{chapter.path.stem}_top.png"
    assert browser.save_screenshot(str(top)) and top.stat().st_size > 10_000
    if chapter.has_images:
        browser.execute_script("document.querySelector('.cell_output img').scrollIntoView({block: 'center'})")
        time.sleep(0.3)
        fig = SHOTS / f"{chapter.path.stem}_figure.png"
        assert browser.save_screenshot(str(fig)) and fig.stat().st_size > 10_000


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_glossary_shows_the_terms_file(browser, base_url, lang):
    chapters = CHAPTERS if lang == "en" else ZH_CHAPTERS
    if not chapters:
        pytest.skip("no Chinese edition built yet")
    _open(browser, f"{base_url}{_prefix(lang)}glossary.html")
    assert not (errors := _console_errors(browser)), errors
    assert not (foreign := _foreign_requests(browser, base_url)), foreign
    h1 = browser.execute_script("return document.querySelector('article h1').textContent")
    assert "Glossary" in h1 and CJK.search(h1), h1
    rows = browser.execute_script("""return Array.from(document.querySelectorAll('article tbody tr'))
        .map(r => Array.from(r.cells).map(c => c.textContent.trim()));""")
    rows = [[c.replace("\u2019", "'") for c in r] for r in rows]  # Sphinx's smart quotes: ’ is '
    pairs = {(r[0], r[1]) if lang == "en" else (r[1], r[0]) for r in rows}
    vocab = {(t.en, t.zh) for t in build_site.vocabulary.load_terms()}
    assert pairs == vocab, f"glossary rows differ from i18n/terms.csv: {sorted(pairs ^ vocab)[:5]}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"glossary_{lang}.png"))
    hrefs = set(browser.execute_script(
        "return Array.from(document.querySelectorAll('article table a')).map(a => a.href)"))
    assert {f"{base_url}{_prefix(lang)}{c.docname}.html" for c in chapters if c.terms} <= hrefs


def test_landing_page_lists_every_chapter_and_how_to_run(browser, base_url):
    _open(browser, base_url)  # index.html redirects to the landing page
    assert browser.current_url.endswith("intro.html"), browser.current_url
    assert not (errors := _console_errors(browser)), errors
    assert "d2lmini" in browser.title
    text = browser.execute_script("return document.querySelector('article').innerText")
    for must in ("make book", "make test", "D2LMINI_SMOKE=1", "Binder", "张量", "中文版"):
        assert must in text, f"the landing page should mention {must!r}"
    links = set(browser.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.href)"))
    missing = [c.docname for c in CHAPTERS if f"{base_url}{c.docname}.html" not in links]
    assert not missing, f"chapters missing from the landing page/navigation: {missing}"
    assert f"{base_url}glossary.html" in links
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "landing.png"))
    if not ZH_CHAPTERS:
        return
    assert f"{base_url}zh/intro.html" in links
    _open(browser, f"{base_url}zh/intro.html")
    assert not (errors := _console_errors(browser)), errors
    text = browser.execute_script("return document.querySelector('article').innerText")
    for must in ("make book", "make test", "张量（tensor）", "英文版"):
        assert must in text, f"the Chinese landing page should mention {must!r}"
    links = set(browser.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.href)"))
    missing = [c.docname for c in ZH_CHAPTERS if f"{base_url}zh/{c.docname}.html" not in links]
    assert not missing, f"chapters missing from the Chinese landing page: {missing}"
    browser.save_screenshot(str(SHOTS / "landing_zh.png"))

"""The website in a real browser: build it, serve it on 127.0.0.1, open every page in headless Chromium.

Run with `make site-test` (part of `make test`). Needs Debian's `chromium` and `chromium-driver`
(`apt-get install chromium chromium-driver`) and the `site` extra (jupyter-book<2, selenium,
django-static-mathjax). Without chromium the test is skipped with the reason, except in CI (CI=true), where
it fails: the browser check must run there. Selenium drives the system chromedriver; Selenium Manager never
downloads anything (SE_OFFLINE=true and an explicit driver path).

What is checked on every chapter page: no console message of level SEVERE (none is ignored: the site loads
nothing from outside, and every resource a page requests must come from the test server; links to Binder and
GitHub are plain <a> links the browser does not fetch), the chapter's title, every <img> decoded (naturalWidth
> 0) and at least one figure where the notebook has an image output, MathJax typeset with no TeX error where
the page has math, and a Binder link to that chapter's notebook. The glossary must show Chinese terms taken
from the chapters. Screenshots land in _build/screenshots/.
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


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.path.stem for c in CHAPTERS])
def test_chapter_page(browser, base_url, chapter):
    url = f"{base_url}{chapter.docname}.html"
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
    broken = [i["src"] for i in images if i["w"] == 0]
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
    want = BINDER + chapter.path.name
    assert want in hrefs, f"{url}: Binder links {hrefs}, want {want}"


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


def test_glossary_shows_chinese_terms_from_the_chapters(browser, base_url):
    _open(browser, f"{base_url}glossary.html")
    assert not (errors := _console_errors(browser)), errors
    assert not (foreign := _foreign_requests(browser, base_url)), foreign
    h1 = browser.execute_script("return document.querySelector('article h1').textContent")
    assert "Glossary" in h1 and CJK.search(h1), h1
    rows = browser.execute_script("""return Array.from(document.querySelectorAll('article tbody tr'))
        .map(r => Array.from(r.cells).map(c => c.textContent.trim()));""")
    pairs = {(r[0], r[1]) for r in rows}
    for ch in CHAPTERS:
        if ch.terms:  # the chapter's first term, with its Chinese name, made it into the glossary
            en, zh = ch.terms[0]
            assert any(e.lower() == en.lower() and zh in z for e, z in pairs), f"{en} | {zh} ({ch.path.name})"
    assert sum(bool(CJK.search(z)) for _, z in pairs) >= len(pairs) * 0.9
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "glossary.png"))
    # each chapter link in the glossary goes to a page that exists
    hrefs = set(browser.execute_script(
        "return Array.from(document.querySelectorAll('article table a')).map(a => a.href)"))
    assert {f"{base_url}{c.docname}.html" for c in CHAPTERS if c.terms} <= hrefs


def test_landing_page_lists_every_chapter_and_how_to_run(browser, base_url):
    _open(browser, base_url)  # index.html redirects to the landing page
    assert browser.current_url.endswith("intro.html"), browser.current_url
    assert not (errors := _console_errors(browser)), errors
    assert "d2lmini" in browser.title
    text = browser.execute_script("return document.querySelector('article').innerText")
    for must in ("make book", "make test", "D2LMINI_SMOKE=1", "Binder", "张量"):
        assert must in text, f"the landing page should mention {must!r}"
    links = set(browser.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.href)"))
    missing = [c.docname for c in CHAPTERS if f"{base_url}{c.docname}.html" not in links]
    assert not missing, f"chapters missing from the landing page/navigation: {missing}"
    assert f"{base_url}glossary.html" in links
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "landing.png"))

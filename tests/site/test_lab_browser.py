"""Every explorer, used as a student uses it: in real JupyterLab, in headless Chromium.

Run with `make site-test` (part of `make test`), like the website's browser test. For each chapter that has
an explorer, in a copy of the notebooks (so nothing is saved over the committed ones), the test
1. starts JupyterLab on a free loopback port with a token, its kernels in smoke mode (D2LMINI_SMOKE=1);
2. opens the chapter and runs all cells from the Run menu, then waits until every cell has run;
3. checks that no cell shows an error or a traceback;
4. in each explorer, moves the first slider with the keyboard, presses Run, waits for the status line to
   say "done in", and checks that the picture in the explorer's output area changed.
The server and the browser are shut down even when a test fails. Needs Debian's chromium and
chromium-driver; skipped with the reason without them, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHOTS = ROOT / "_build" / "screenshots"
RUN_ALL_TIMEOUT = 300  # seconds for one chapter in smoke mode, inside the browser

if not os.environ.get("D2LMINI_SITE_TEST"):
    pytest.skip("the JupyterLab browser test runs with `make site-test` (part of `make test`)",
                allow_module_level=True)


def _missing() -> str | None:
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).exists():
            return f"{exe} not found: apt-get install chromium chromium-driver"
    for mod in ("selenium", "jupyterlab"):
        if importlib.util.find_spec(mod) is None:
            return f"python package {mod} missing: .venv/bin/pip install -e '.[book,site]'"
    return None


if (_reason := _missing()) is not None:
    if IN_CI:
        pytest.fail(f"CI must run the JupyterLab browser test, but {_reason}", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


def explorer_chapters() -> list[Path]:
    """The chapters whose code builds an Explorer (``$D2LMINI_LAB_NOTEBOOKS`` overrides, for debugging)."""
    if os.environ.get("D2LMINI_LAB_NOTEBOOKS"):
        return [Path(p).resolve() for p in os.environ["D2LMINI_LAB_NOTEBOOKS"].split(os.pathsep)]
    found = []
    for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(p.read_text(encoding="utf-8"))
        if any(c["cell_type"] == "code" and "Explorer(" in "".join(c["source"]) for c in nb["cells"]):
            found.append(p)
    return found


CHAPTERS = explorer_chapters()


def test_every_chapter_with_a_replay_is_driven_here():
    """A chapter whose committed outputs hold a replay has an explorer, so it must be in CHAPTERS (a
    looser test once let chapter 06 drop out of this module when its ``.show(`` call was wrapped)."""
    with_replay = [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                   if 'class=\\"d2l-replay\\"' in p.read_text(encoding="utf-8")]
    assert len(with_replay) >= 10
    if not os.environ.get("D2LMINI_LAB_NOTEBOOKS"):
        assert [p.name for p in CHAPTERS] == [p.name for p in with_replay]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    """JupyterLab on 127.0.0.1 over a copy of the chapters, kernels in smoke mode; yields (url, token)."""
    work = Path(tempfile.mkdtemp(prefix="d2lmini-lab-"))
    for p in CHAPTERS:
        shutil.copy2(p, work / p.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, D2LMINI_SMOKE="1", OMP_NUM_THREADS="1", JUPYTER_CONFIG_DIR=str(work / ".jupyter"),
               JUPYTER_RUNTIME_DIR=str(work / ".runtime"), MPLBACKEND="module://matplotlib_inline.backend_inline")
    env.pop("PYTEST_CURRENT_TEST", None)  # the kernels are the reader's, run in smoke mode
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--ContentsManager.allow_hidden=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    log = open(work / "lab.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    log_text = (work / "lab.log").read_text()[-3000:]
                    raise RuntimeError(f"JupyterLab did not start:\n{log_text}") from None
                time.sleep(0.5)
        yield url, token, work
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never download a driver or a browser
    profile = tempfile.mkdtemp(prefix="d2lmini-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            SHOTS.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(SHOTS / "lab_timeout.png"))
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def _click_menu(driver, menu: str, item: str) -> None:
    """Open a menu of JupyterLab's menu bar and click one of its items, as a reader does."""
    bar = driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
    target = next(b for b in bar if b.text.strip() == menu)
    target.click()
    entries = _wait(driver, lambda: [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu-item")
                                     if e.is_displayed() and e.text.strip().startswith(item)],
                    10, f"the '{item}' item of the {menu} menu")
    entries[0].click()


PROMPTS_JS = """return Array.from(document.querySelectorAll(
    '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')).map(e => e.textContent.trim());"""
ERRORS_JS = """return Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'))
    .filter(e => e.querySelector('[data-mime-type="application/vnd.jupyter.error"]') ||
                 /Traceback \\(most recent call last\\)/.test(e.textContent))
    .map(e => e.textContent.slice(0, 400));"""


def _shut_down_kernels(url: str, token: str) -> None:
    """Stop every kernel of the server (REST API), so that each chapter starts alone and memory stays flat."""
    auth = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{url}/api/kernels", headers=auth), timeout=10) as r:
        kernels = json.loads(r.read())
    for k in kernels:
        req = urllib.request.Request(f"{url}/api/kernels/{k['id']}", headers=auth, method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()


def _run_all(driver, url: str, token: str, name: str) -> float:
    # ?reset: a fresh workspace with this notebook alone, so the selectors below see only this chapter
    driver.get(f"{url}/lab/tree/{name}?reset&token={token}")
    _wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell"), 90,
          "the notebook to open")
    _wait(driver, lambda: driver.execute_script(
        "return !!document.querySelector('.jp-Notebook') && "
        "Array.from(document.querySelectorAll('.jp-Toolbar-kernelStatus, .jp-KernelStatus'))"
        ".every(e => !/Connecting|Starting/.test(e.textContent))"), 90, "the kernel to start")
    time.sleep(2)  # the kernel's first idle
    t0 = time.perf_counter()
    _click_menu(driver, "Run", "Run All Cells")

    def finished() -> bool:
        prompts = driver.execute_script(PROMPTS_JS)
        return bool(prompts) and all(p not in ("[*]:", "[ ]:", "") for p in prompts)

    _wait(driver, finished, RUN_ALL_TIMEOUT, f"all cells of {name} to run")
    return time.perf_counter() - t0


def _explorer_state(driver, index: int) -> dict:
    return driver.execute_script("""
        const ex = document.querySelectorAll('.d2l-explorer')[arguments[0]];
        const img = ex.querySelector('.d2l-explorer-out img');
        const st = ex.querySelector('.d2l-explorer-status');
        return {img: img ? img.src.slice(-400) : null, status: st ? st.textContent : ''};""", index)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_explorer_in_jupyterlab(lab, browser, chapter):
    url, token, _ = lab
    try:
        _use_explorers(browser, url, token, chapter)
    finally:
        _shut_down_kernels(url, token)


def _use_explorers(browser, url: str, token: str, chapter: Path) -> None:
    secs = _run_all(browser, url, token, chapter.name)
    errors = browser.execute_script(ERRORS_JS)
    assert not errors, f"{chapter.name}: error outputs after Run All:\n" + "\n---\n".join(errors)
    explorers = browser.find_elements(By.CSS_SELECTOR, ".d2l-explorer")
    assert explorers, f"{chapter.name} builds an Explorer but none is shown after Run All"
    for i, ex in enumerate(explorers):
        before = _explorer_state(browser, i)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", ex)
        handle = ex.find_elements(By.CSS_SELECTOR, ".noUi-handle")
        if handle:
            handle[0].click()
            handle[0].send_keys(Keys.ARROW_RIGHT)
            handle[0].send_keys(Keys.ARROW_RIGHT)
        else:  # a dropdown first: choose its next option with the keyboard
            select = ex.find_element(By.CSS_SELECTOR, "select")
            select.click()
            select.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
        time.sleep(0.5)
        button = next(b for b in ex.find_elements(By.CSS_SELECTOR, "button") if "Run" in b.text)
        button.click()
        after = _wait(browser, lambda i=i: (s := _explorer_state(browser, i)) and "done in" in s["status"]
                      and s, 120, f"explorer {i + 1} of {chapter.name} to finish its run")
        assert "error" not in after["status"].lower(), f"{chapter.name} explorer {i + 1}: {after['status']}"
        assert after["img"] and after["img"] != before["img"], (
            f"{chapter.name} explorer {i + 1}: the picture did not change after moving the slider and Run")
    errors = browser.execute_script(ERRORS_JS)
    assert not errors, f"{chapter.name}: error outputs after using the explorers:\n" + "\n---\n".join(errors)
    print(f"\n{chapter.name}: Run All in {secs:.0f} s, {len(explorers)} explorer(s) moved and rerun")

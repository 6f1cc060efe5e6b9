"""The built site in a real browser (Debian's headless chromium through chromedriver).

Runs on what a build left in ``_build/html``, served from 127.0.0.1, so it carries the marker
``built_book``: ``.ci/run`` runs it after the build, and ``pytest -m built_book`` after a build.
Fails at once, naming the cause, when there is no built site or no browser. Screenshots of every
page (light, dark, and light at 390 px, a phone) land in ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

from chapters import is_notebook  # book/_ext, on sys.path via conftest
from html_pages import scripts_of, styles_of
from repository import derive

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
DESKTOP, PHONE = (1280, 900), (390, 844)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _pages() -> list[str]:
    if not (SITE / "book" / "index.html").is_file():
        return []
    return sorted(
        str(p.relative_to(SITE))
        for p in SITE.rglob("*.html")
        if not p.relative_to(SITE).parts[0].startswith(("_", "."))
    )


pytestmark = pytest.mark.built_book
PAGES = _pages()
# Every executable chapter gets a Colab twin and a button, when the build knows its repository.
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("*.md") if is_notebook(p))


def _repository():
    """The repository the build derived (book/_ext/repository.py), or None."""
    configured = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    return derive(configured or "", dict(os.environ), ROOT)


@pytest.fixture(scope="module")
def site() -> str:
    """Base URL of _build/html served on 127.0.0.1 (a failure, not a skip, when not built)."""
    if not PAGES:
        pytest.fail(f"no built site in {SITE}: run the README's build command first")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    """Headless chromium with console and network logging, in a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail(
            "chromium and chromedriver are needed (bash .ci/browser-deps installs them): "
            f"found chromium={chromium}, chromedriver={driver_path}"
        )
    profile = tempfile.mkdtemp(prefix="book-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [
        f"--user-data-dir={profile}",
        "--window-size=%d,%d" % DESKTOP,
    ]:
        options.add_argument(flag)
    options.set_capability(
        "goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"}
    )
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _load(driver, url: str, mode: str | None = None) -> None:
    """Open url (with the theme's stored mode set, if given) and wait until its fonts, the
    scripts and stylesheets it adds after loading and its images (lazy ones too) are in;
    earlier loads' logs are dropped."""
    driver.get(url)
    if mode:
        # the theme's script, which the page loads after its load event, stores the mode it
        # found: let it finish before storing ours, or it may overwrite ours
        driver.execute_script(READY)
        driver.execute_script(
            "localStorage.setItem('mode', arguments[0]);"
            "localStorage.setItem('theme', arguments[0]);",
            mode,
        )
        driver.get_log("browser"), driver.get_log("performance")
        driver.refresh()
    driver.execute_script(READY)


READY = """
const html = document.documentElement;
const late = Array.from(document.scripts).some(s => s.text.includes('scriptsLoaded'));
const scripts = new Promise(done => {
  const check = () => (!late || 'scriptsLoaded' in html.dataset) ? done() : setTimeout(check, 20);
  check();
});
document.querySelectorAll('img[loading="lazy"]').forEach(i => { i.loading = 'eager'; });
const images = Array.from(document.images).map(i => i.complete ? null
  : new Promise(done => { i.addEventListener('load', done); i.addEventListener('error', done); }));
const sheets = Array.from(document.querySelectorAll('link[rel="stylesheet"]')).map(l => l.sheet
  ? null : new Promise(done => { l.addEventListener('load', done); l.addEventListener('error', done); }));
return Promise.all([document.fonts.ready, scripts, ...images, ...sheets]).then(() => true);
"""


def _problems(driver) -> list[str]:
    return [
        f"{entry['level']}: {entry['message']}"
        for entry in driver.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING")
    ]


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _shot_at(driver, selector: str, name: str) -> None:
    """A screenshot with the first element matching selector at the top, if the page has one."""
    if driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "if (e) e.scrollIntoView(); return !!e;",
        selector,
    ):
        _shot(driver, name)


def _slug(page: str) -> str:
    return page.removesuffix(".html").replace("/", "-")


WRAP_COLUMNS = 88  # what the book's code and quoted source are formatted to
MEASURE = """
const article = document.querySelector('article.bd-article') || document.body;
const copy = article.cloneNode(true);
copy.querySelectorAll('pre, code, .highlight, mjx-container, script, style').forEach(e => e.remove());
const math = Array.from(document.querySelectorAll('div.math, span.math'));
return {
  theme: document.documentElement.dataset.theme,
  rawTex: copy.textContent.match(/\\\\[a-zA-Z]{2,}|\\$\\$|\\\\[()\\[\\]]/g) || [],
  untypeset: math.filter(e => !e.querySelector('mjx-container svg')).map(e => e.textContent),
  equations: math.length,
  badImages: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0
      || !(i.getAttribute('alt') || '').trim()).map(i => i.getAttribute('src')),
  overflowing: Array.from(document.querySelectorAll('article pre'))
      .filter(p => p.scrollWidth > p.clientWidth + 1)
      .map(p => p.textContent.split('\\n').reduce((a, b) => a.length >= b.length ? a : b)),
  widths: [document.documentElement.scrollWidth, window.innerWidth],
  colab: Array.from(document.querySelectorAll('a')).map(a => a.href)
      .filter(h => h.includes('colab.research.google.com')),
};
"""


@pytest.fixture(scope="module")
def visit(site, browser):
    """visit(page, mode, size): the page opened once per mode and window size, measured then
    (MEASURE, console problems, requests) and screenshotted; every test reads these."""
    seen = {}

    def open_once(page: str, mode: str, size: tuple[int, int] = DESKTOP) -> dict:
        if (page, mode, size) not in seen:
            browser.set_window_size(*size)
            _load(browser, site + page, mode)
            found = browser.execute_script(MEASURE)
            found.update(problems=_problems(browser), requests=_requests(browser))
            slug = _slug(page)
            if size == PHONE:
                _shot(browser, f"{slug}-phone-{mode}")
                browser.set_window_size(*DESKTOP)
            else:
                _shot(browser, f"{slug}-{mode}")
                if mode == "light":
                    _shot_at(browser, "div.math", f"{slug}-equation")
                else:
                    _shot_at(browser, "div.cell_output img", f"{slug}-figure-dark")
            seen[page, mode, size] = found
        return seen[page, mode, size]

    return open_once


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("page", PAGES)
def test_page_loads_clean_and_local(site, visit, page, mode):
    """No console error or warning and no request outside the site, in light and dark mode."""
    found = visit(page, mode)
    assert found["theme"] == mode
    outside = [
        url
        for url in found["requests"]
        if not url.startswith((site, "data:", "about:"))
    ]
    assert not found["problems"], f"{page} ({mode}) logged: {found['problems']}"
    assert not outside, f"{page} ({mode}) requested outside the site: {outside}"


@pytest.mark.parametrize("page", PAGES)
def test_every_equation_rendered(visit, page):
    """Every math element holds typeset SVG, and no TeX is left in the text."""
    found = visit(page, "light")
    assert not found["untypeset"], f"{page}: math not typeset: {found['untypeset'][:5]}"
    assert not found["rawTex"], f"{page}: raw TeX in the text: {found['rawTex'][:5]}"


def test_the_derivations_have_math(visit):
    """A check that can fail: the chapters that derive gradients show many typeset equations."""
    assert visit("book/backprop.html", "light")["equations"] > 20


@pytest.mark.parametrize("page", PAGES)
def test_images_load_and_have_alt_text(visit, page):
    bad = visit(page, "dark")["badImages"]
    assert not bad, f"{page}: image not loaded or without alt: {bad}"


@pytest.mark.parametrize("page", PAGES)
def test_code_fits_the_column_on_a_desktop(visit, page):
    """At the default desktop width a code block or output of <= 88 columns never scrolls."""
    wide = [
        line
        for line in visit(page, "light")["overflowing"]
        if len(line) <= WRAP_COLUMNS
    ]
    assert not wide, (
        f"{page}: {WRAP_COLUMNS}-column code wider than the text column: {wide}"
    )


@pytest.mark.parametrize("page", PAGES)
def test_phone_layout(visit, page):
    """At 390 px the page itself never scrolls sideways (code and equations scroll inside).
    Measured in light mode: the dark theme changes colours, not widths."""
    page_width, window = visit(page, "light", PHONE)["widths"]
    assert page_width <= window, (
        f"{page}: page {page_width} px wide in a {window} px window"
    )


def test_solution_dropdown_opens(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _load(browser, site + "book/softmax.html")
    solution = browser.find_element(By.CSS_SELECTOR, ".solution.dropdown")
    body = solution.find_elements(By.CSS_SELECTOR, ".admonition-title ~ *")[0]
    assert not body.is_displayed()
    solution.find_element(By.CSS_SELECTOR, "button.toggle-button").click()
    # the toggle opens with a short transition: wait for it rather than race it
    WebDriverWait(browser, 10).until(lambda _: body.is_displayed())
    assert body.is_displayed()


def test_search_finds_jacobian(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    _load(browser, site + "search.html?q=Jacobian")
    WebDriverWait(browser, 30).until(
        ready.presence_of_element_located(
            (By.CSS_SELECTOR, "#search-results ul.search li")
        )
    )
    found = [
        a.get_attribute("href")
        for a in browser.find_elements(
            By.CSS_SELECTOR, "#search-results ul.search li a"
        )
    ]
    assert any("book/softmax.html" in href for href in found), found


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_colab_button_opens_the_chapters_twin(visit, chapter):
    links = set(visit(f"book/{chapter}.html", "light")["colab"])
    repository = _repository()
    # Built without a repository (a checkout whose origin is not on GitHub, as in CI), the book
    # has no Colab buttons rather than broken ones; tests/test_fork_links.py builds with one.
    expected = {repository.colab_url(f"book/{chapter}.ipynb")} if repository else set()
    assert links == expected, links


def test_site_ships_typeset_math_and_no_math_script():
    """Static check: equations are in the HTML, with their stylesheet; no MathJax or FontAwesome
    script, loaded at once or after the page."""
    if not PAGES:
        pytest.fail(f"no built site in {SITE}: run the README's build command first")
    page = (SITE / "book" / "softmax.html").read_text(encoding="utf-8")
    assert "<mjx-container" in page and "<mjx-assistive-mml" in page
    assert 'mjx-container[jax="SVG"]' in styles_of(page), (
        "the equations' stylesheet, in the page"
    )
    for html in map(SITE.joinpath, PAGES):
        scripts = scripts_of(html.read_text(encoding="utf-8"))
        assert not [
            s for s in scripts if re.search(r"mathjax|fontawesome|thebe", s, re.I)
        ], html

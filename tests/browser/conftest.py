"""Real-browser fixtures: the portal on a live port, Debian's chromium through Playwright.

- `live_server`: the `app` of tests/conftest.py (`kamusm.web.factory.create_app` on a fresh instance folder,
  the demo holders loaded, rate limits off, captcha answer KMS34), served by werkzeug on
  127.0.0.1:<free port> in a background thread. Its clock is the settable `Clock` of
  tests/conftest.py (the `clock` fixture): the server's time only moves when a test moves it, while
  the browser's own timers keep running. Every log record of the app, werkzeug and the root logger
  is kept in `live_server.log`, so a test can prove that no secret was logged; an ERROR record (an
  exception inside a view) fails the test at teardown.
- `browser`: one headless chromium per session (Playwright's own browsers are never downloaded).
  Without /usr/bin/chromium the tests skip, or fail when CI=true.
- playwright is checked once, here: the test modules import it plainly, so without it each of them
  is skipped before its import could fail, except when CI=true, where that import fails the run.
  Every `expect` waits up to DEFAULT_TIMEOUT_MS, as every action of a context does.
- `context` / `page`: a fresh context (Turkish, no cookies) and page per test. Every page opened in
  that context is watched: console errors (CSP violations show up as such) and uncaught page errors
  fail the test at teardown, unless the test named them as expected with `browser_errors.expect()`.
- `tour`: the accessibility Tour of pages.py in `lang` (a test's parameter); `wide_screen`: a
  desktop's width, where the screenshots are looked at.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
from werkzeug.serving import make_server

from tests.conftest import latest_code

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DEFAULT_TIMEOUT_MS = 10_000
WIDE_SCREEN = {"width": 1280, "height": 900}
# Reports CSP violations as console errors too, with the blocked URI and directive.
CSP_WATCH_SCRIPT = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`Content Security Policy violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - requirements pin playwright
    PLAYWRIGHT_MISSING = "playwright is not installed"
else:
    PLAYWRIGHT_MISSING = ""
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)


class SkippedModule(pytest.Module):
    """A test module of this folder while playwright is missing: skipped before its import could fail."""

    def collect(self):
        pytest.skip(PLAYWRIGHT_MISSING)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    # In CI the test modules are collected all the same: their import of playwright fails the run.
    if PLAYWRIGHT_MISSING and os.environ.get("CI") != "true":
        return SkippedModule.from_parent(parent, path=module_path)
    return None


class LogCapture(logging.Handler):
    """Keeps every record it sees once, even when attached to several loggers of one hierarchy."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._seen: set[int] = set()
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            if id(record) in self._seen:
                return
            self._seen.add(id(record))
            self.records.append(record)

    def text(self) -> str:
        lines = []
        for record in list(self.records):
            line = f"{record.name} {record.levelname} {record.getMessage()}"
            if record.exc_info:
                line += "\n" + logging.Formatter().formatException(record.exc_info)
            lines.append(line)
        return "\n".join(lines)


@dataclass
class LiveServer:
    url: str
    app: object
    clock: object
    log: LogCapture

    def __call__(self, path: str = "/") -> str:
        return self.url + path

    def latest_sms_code(self) -> str:
        """The code in the newest SMS of the outbox (what /demo/phone shows)."""
        return latest_code(self.app)


@pytest.fixture
def live_server(app, clock) -> Iterator[LiveServer]:
    """`app` is tests/conftest.py's: create_app(app_config) with the demo holders loaded, CLOCK = clock."""
    assert app.config["CLOCK"] is clock and app.config["KAMUSM_DEMO"] and app.testing
    capture = LogCapture()
    werkzeug_logger = logging.getLogger("werkzeug")
    loggers = (app.logger, werkzeug_logger, logging.getLogger())
    old_werkzeug_level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.INFO)  # the request lines, where a query string would show
    for logger in loggers:
        logger.addHandler(capture)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="kamusm-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app, clock, capture)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        for logger in loggers:
            logger.removeHandler(capture)
        werkzeug_logger.setLevel(old_werkzeug_level)
    errors = [record for record in capture.records if record.levelno >= logging.ERROR]
    if errors:
        pytest.fail("the live server logged errors:\n" + capture.text())


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing: install Debian's chromium (make system-test-deps)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {problem}", pytrace=False)
        pytest.skip(problem)

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield chromium
    chromium.close()
    playwright.stop()


@dataclass
class BrowserErrors:
    """Console errors and uncaught page errors of every page of one test's context."""

    problems: list[str] = field(default_factory=list)
    expected: list[re.Pattern] = field(default_factory=list)

    def watch(self, page) -> None:
        def on_console(message) -> None:
            if message.type == "error":
                location = message.location or {}
                self.problems.append(f"console error on {page.url}: {message.text} "
                                     f"({location.get('url', '')}:{location.get('lineNumber', '')})")

        def on_page_error(error) -> None:
            self.problems.append(f"page error on {page.url}: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)

    def expect(self, pattern: str) -> None:
        """Allow console errors matching `pattern` (a regular expression) in this test."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        allowed = self.expected
        return [problem for problem in self.problems if not any(pattern.search(problem) for pattern in allowed)]


@pytest.fixture
def browser_errors() -> BrowserErrors:
    return BrowserErrors()


@pytest.fixture
def context(browser, live_server, browser_errors):
    # locale tr-TR sends Accept-Language: tr-TR, so the portal speaks Turkish whatever the host's locale.
    ctx = browser.new_context(locale="tr-TR", viewport={"width": 1100, "height": 900})
    ctx.set_default_timeout(DEFAULT_TIMEOUT_MS)
    ctx.add_init_script(CSP_WATCH_SCRIPT)
    ctx.on("page", browser_errors.watch)
    yield ctx
    ctx.close()
    problems = browser_errors.unexpected()
    if problems:
        pytest.fail("the browser reported errors:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def screenshot(request):
    """screenshot(page, "name") saves test-artifacts/<test name>-<n>-<name>.png for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    counter = iter(range(1, 100))
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    for stale in ARTIFACTS.glob(f"{test_name}-*.png"):  # a screen this run did not reach must not linger
        stale.unlink()

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{test_name}-{next(counter):02d}-{name}.png"
        # caret="initial": the default "hide" leaves style="" on inputs, which htmx's settle step then
        # copies onto the swapped-in inputs with setAttribute, which the CSP (rightly) refuses.
        page.screenshot(path=str(path), full_page=True, caret="initial")
        return path

    return take


@pytest.fixture
def tour(page, live_server, browser_errors, lang):
    """axe served from the portal's own origin, a desktop's width: the Tour that checks each screen reached."""
    # Imported here, not at the top: pages imports playwright, and this file must load without it.
    from pages import AXE, AXE_PATH, DESKTOP, Tour

    # The walk sends wrong input and opens missing pages on purpose: htmx and the browser log each
    # refused answer as a failed resource.
    browser_errors.expect(r"status of (401|404|409|422) ")
    page.route(live_server(AXE_PATH), lambda route: route.fulfill(path=AXE, content_type="text/javascript"))
    page.set_viewport_size(DESKTOP)
    return Tour(page, lang, live_server(AXE_PATH))


@pytest.fixture
def wide_screen(page) -> None:
    """A desktop's width, where the screenshots are looked at."""
    page.set_viewport_size(WIDE_SCREEN)

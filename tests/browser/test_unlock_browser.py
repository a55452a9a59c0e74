"""Kilit Çözme (/unlock) in a real browser (Debian's chromium through Playwright), end to end.

The whole chain of an online unlock: the portal's page in chromium -> the local helper on
127.0.0.1 (kamusm.helper.make_server, in a thread) -> pyscard -> pcscd -> vpcd -> the virtual card
(``python -m kamusm.card.virtual``, tests/card_stack.py). The portal seals the vaulted PUK for the
helper's key; the test proves the PUK itself shows up in no page, no response the browser got, no
request it sent, no server log line and no helper log line, and that the new PIN really is on the
card afterwards.

The other tests use the helper's sim backend (kamusm.helper.make_backend("sim", home): Selin's
demo card 14000001): the page without a helper, a foreign card that gets no seal, and the PIN
check and change forms.

The portal's app is built before the helper can know the portal's origin (the live server picks a
free port), so the tests point the running app at the helper with
``app.config["KAMUSM_HELPER_URL"]``; /unlock and its CSP read it per request.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kamusm import store
from kamusm.card import reader
from kamusm.card.apdu import CardError
from kamusm.demo import DEMO_HOLDERS
from kamusm.helper import HelperServer, make_backend, make_server

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the conftest skips or fails with the reason
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

# The card stack's fixtures (card_stack, fresh_card) and the login walk of the PIN/PUK browser tests.
from card_stack import (  # noqa: E402,F401  (the *_fixture names register the card_stack and fresh_card fixtures)
    PIN,
    PUK,
    SERIAL,
    VIRTUAL_READER,
    card_stack_fixture,
    fresh_card_fixture,
)
from test_login_flow import url_path  # noqa: E402
from test_pin_puk_browser import log_in  # noqa: E402

SELIN = DEMO_HOLDERS[0]
AYSE = DEMO_HOLDERS[2]
NEW_PIN = "582046"
WRONG_PIN = "246802"
HELPER_POLL_SECONDS = 0.01
HELPER_LOGGER = "kamusm.helper"
BODY_TYPES = ("text/html", "application/json")

assert (SERIAL, PIN, PUK) == (SELIN["card_serial"], SELIN["pin"], SELIN["puk"]), "the virtual card is Selin's card"


# Helpers ---------------------------------------------------------------------

class HelperLog(logging.Handler):
    """The helper's log lines (logger kamusm.helper, INFO and up) while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self._lines_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name} {record.levelname} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + logging.Formatter().formatException(record.exc_info)
        with self._lines_lock:
            self.lines.append(line)

    def text(self) -> str:
        with self._lines_lock:
            return "\n".join(self.lines)


@pytest.fixture
def helper_log() -> Iterator[HelperLog]:
    logger = logging.getLogger(HELPER_LOGGER)
    capture = HelperLog()
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)


@contextmanager
def running_helper(backend, home: Path, live_server, port: int = 0) -> Iterator[HelperServer]:
    """The helper on 127.0.0.1:``port`` for the live portal's origin, served by a thread; the
    portal's KAMUSM_HELPER_URL points at it until the block ends."""
    # Exactly the Origin chromium sends for a page of the live server.
    server = make_server(port, [live_server.url], backend, home)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": HELPER_POLL_SECONDS},
                              name="kamusm-test-helper", daemon=True)
    thread.start()
    app = live_server.app
    old_url = app.config["KAMUSM_HELPER_URL"]
    app.config["KAMUSM_HELPER_URL"] = f"http://127.0.0.1:{server.port}"
    try:
        yield server
    finally:
        app.config["KAMUSM_HELPER_URL"] = old_url
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the helper thread did not stop"


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Traffic:
    """Every HTML and JSON response body the page received and every request body it sent."""

    def __init__(self, page) -> None:
        self.bodies: list[tuple[str, str, int, str]] = []  # (method, url, status, body)
        self.sent: list[tuple[str, str, str]] = []  # (method, url, body)
        # (method, url, reason): chromium drops the body of a response whose page was navigated
        # away from before it could be read (the login steps' htmx answers that redirect).
        self.unreadable: list[tuple[str, str, str]] = []
        page.on("request", self._on_request)
        page.on("response", self._on_response)

    def _on_request(self, request) -> None:
        if request.post_data is not None:
            self.sent.append((request.method, request.url, request.post_data))

    def _on_response(self, response) -> None:
        content_type = response.headers.get("content-type", "")
        if 300 <= response.status < 400 or not content_type.startswith(BODY_TYPES):
            return
        try:
            body = response.text()
        except Exception as exc:  # noqa: BLE001 - recorded; the test decides what it may miss
            self.unreadable.append((response.request.method, response.url, str(exc)))
            return
        self.bodies.append((response.request.method, response.url, response.status, body))

    def body_of(self, method: str, url_ending: str) -> list[str]:
        return [body for seen_method, url, _, body in self.bodies if seen_method == method and url.endswith(url_ending)]

    def missed(self, helper_url: str) -> list[tuple[str, str, str]]:
        """Unread bodies that matter: anything from /unlock or the helper, or lost for another reason."""
        return [(method, url, reason) for method, url, reason in self.unreadable
                if url.startswith(helper_url) or "/unlock" in url or "navigated away" not in reason]

    def sent_to(self, method: str, url_ending: str) -> list[str]:
        return [body for seen_method, url, body in self.sent if seen_method == method and url.endswith(url_ending)]


def open_unlock(page) -> None:
    """From the menu, the way a holder goes: the "Kilit Çözme" button."""
    page.locator("#menu_operations").get_by_role("link", name="Kilit Çözme", exact=True).click()
    page.wait_for_url(url_path("/unlock"))
    expect(page.locator("#unlock_page h1")).to_have_text("Kilit Çözme")


def card_fact(page, name: str):
    return page.locator(f"#unlock_page [data-helper-ready] dd[data-card={name}]")


def expect_card_facts(page, serial: str, pin_tries_left: int) -> None:
    expect(page.locator("#unlock_page [data-helper-ready]")).to_be_visible()
    expect(card_fact(page, "serial")).to_have_text(serial)
    expect(card_fact(page, "pin_tries_left")).to_have_text(str(pin_tries_left))


@contextmanager
def operation_done(page) -> Iterator[None]:
    """Waits, after the block's click, for the page's closing refresh: a submit reads the card
    (GET /v1/card) before the operation and again when it ends. The next operation must not start
    before that, or the helper rightly answers busy."""
    seen = {"card_reads": 0}

    def second_card_read(response) -> bool:
        if response.request.method == "GET" and response.url.endswith("/v1/card"):
            seen["card_reads"] += 1
        return seen["card_reads"] >= 2

    with page.expect_response(second_card_read):
        yield


def audit_outcomes(db, event_prefix: str = "unlock.") -> list[tuple[str, str]]:
    return [(entry["event"], entry["outcome"]) for entry in store.audit_entries(db)
            if entry["event"].startswith(event_prefix)]


# Tests -----------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.card
def test_unlock_through_the_helper_and_pcscd_to_the_virtual_card(
        page, live_server, db, fresh_card, helper_log, tmp_path, screenshot):
    from kamusm.card.pcsc import PcscBackend

    traffic = Traffic(page)
    with PcscBackend(VIRTUAL_READER) as backend:
        # The holder forgot the PIN: three wrong tries, the last one confirmed, block it.
        for tries_left in (2, 1, 0):
            with pytest.raises(CardError) as wrong:
                reader.verify_pin(backend, WRONG_PIN, confirm_last_try=True)
            assert (wrong.value.error, wrong.value.tries_left) == ("wrong_pin", tries_left)
        assert reader.read_card(backend) == {"reader": VIRTUAL_READER, "serial": SERIAL,
                                             "pin_tries_left": 0, "puk_tries_left": 3}

        with running_helper(backend, tmp_path / "helper-home", live_server) as server:
            helper_url = f"http://127.0.0.1:{server.port}"
            log_in(page, live_server)
            open_unlock(page)
            expect_card_facts(page, SERIAL, 0)
            expect(card_fact(page, "reader")).to_have_text(VIRTUAL_READER)
            expect(card_fact(page, "puk_tries_left")).to_have_text("3")
            expect(page.locator("#unlock_page [data-helper-missing]")).to_be_hidden()
            screenshot(page, "blocked-card")

            form = page.locator("form[data-operation=unblock]")
            form.locator("#new_pin").fill(NEW_PIN)
            form.locator("#new_pin_confirm").fill(NEW_PIN)
            with operation_done(page):
                form.get_by_role("button", name="Kilidi Çöz", exact=True).click()
            result = page.locator("#unlock_page [data-unlock-result]")
            expect(result).to_contain_text("kilidi çözüldü")
            expect(result).to_have_attribute("role", "status")
            expect_card_facts(page, SERIAL, 3)  # the closing refresh read the unblocked card
            expect(form.locator("#new_pin")).to_have_value("")  # the page forgot the PINs typed
            screenshot(page, "unlocked")
            unlock_html = page.content()

        # The new PIN is on the card (the helper has stopped; nothing else holds the reader).
        assert reader.verify_pin(backend, NEW_PIN) == {"pin_tries_left": 3}
        assert reader.read_card(backend)["puk_tries_left"] == 3

    # The portal answered a seal, not the PUK, and the helper got that seal.
    seal_answers = traffic.body_of("POST", "/unlock")
    assert len(seal_answers) == 1 and '"sealed_puk"' in seal_answers[0], seal_answers
    unblock_requests = traffic.sent_to("POST", "/v1/pin/unblock")
    assert len(unblock_requests) == 1 and '"sealed_puk"' in unblock_requests[0], unblock_requests
    assert traffic.body_of("POST", "/v1/pin/unblock"), "the helper's unblock answer was not captured"
    assert traffic.body_of("GET", "/v1/card") and traffic.body_of("GET", "/v1/status")
    assert "POST /v1/pin/unblock 200" in helper_log.text(), helper_log.text()

    outcomes = audit_outcomes(db)
    assert ("unlock.seal", "ok") in outcomes and ("unlock.unblock", "ok") in outcomes, outcomes

    page.goto(live_server("/pin-puk"))
    notice = page.locator("#pin_puk_masked table.secrets .alert-info")
    expect(notice).to_contain_text("artık geçerli değildir")
    screenshot(page, "pin-puk-stale")

    assert not traffic.missed(helper_url), traffic.missed(helper_url)
    places = {"the unlock page": unlock_html, "the PIN/PUK page": page.content(),
              "the server log": live_server.log.text(), "the helper log": helper_log.text(),
              "the audit": repr(list(store.audit_entries(db)))}
    places.update({f"{method} {url} ({status})": body for method, url, status, body in traffic.bodies})
    places.update({f"request {method} {url}": body for method, url, body in traffic.sent})
    for where, text in places.items():
        assert PUK not in text, f"the PUK is in {where}"
        assert NEW_PIN not in text or where.startswith("request "), f"the new PIN is in {where}"


@pytest.mark.browser
def test_unlock_page_without_helper_explains_how_to_start_it(
        page, live_server, browser_errors, tmp_path, screenshot):
    # fetch() of a closed port: chromium logs the refused connection as a failed resource.
    browser_errors.expect(r"net::ERR_CONNECTION_REFUSED")
    port = closed_port()
    live_server.app.config["KAMUSM_HELPER_URL"] = f"http://127.0.0.1:{port}"
    log_in(page, live_server)
    open_unlock(page)

    missing = page.locator("#unlock_page [data-helper-missing]")
    expect(missing).to_be_visible()
    expect(page.locator("#unlock_page [data-helper-checking]")).to_be_hidden()
    # The script hides the card facts (whether the page's CSS lets it is test_card_facts_hidden_without_helper).
    expect(page.locator("#unlock_page [data-helper-ready]")).to_have_attribute("hidden", "")
    expect(missing.get_by_role("alert")).to_have_text("Kart yardımcısına ulaşılamadı.")
    expect(missing.locator("pre.command")).to_have_text(f"python3 -m kamusm.helper --origin {live_server.url}")
    expect(missing).to_contain_text("Yerel ağ erişimi")
    expect(missing).to_contain_text("Chrome 142")
    expect(missing).to_contain_text("Firefox'ta ek bir izin gerekmez")
    screenshot(page, "no-helper")

    # The holder starts the helper as told, on the port the portal names, and clicks "Tekrar Dene".
    home = tmp_path / "helper-home"
    with running_helper(make_backend("sim", home), home, live_server, port=port):
        missing.get_by_role("button", name="Tekrar Dene", exact=True).click()
        expect(missing).to_be_hidden()
        expect_card_facts(page, SELIN["card_serial"], 3)
        screenshot(page, "helper-started")


@pytest.mark.browser
def test_card_facts_hidden_without_helper(page, live_server, browser_errors):
    browser_errors.expect(r"net::ERR_CONNECTION_REFUSED")
    live_server.app.config["KAMUSM_HELPER_URL"] = f"http://127.0.0.1:{closed_port()}"
    log_in(page, live_server)
    open_unlock(page)
    # Once the "unreachable" block shows, the page's refresh has ended: nothing changes after it.
    expect(page.locator("#unlock_page [data-helper-missing]")).to_be_visible()
    facts = page.locator("#unlock_page [data-helper-ready]")
    assert facts.get_attribute("hidden") == ""
    assert facts.is_hidden(), "the empty card facts (Okuyucu, Kart Seri Numarası, ...) are shown without a helper"


@pytest.mark.browser
def test_foreign_card_gets_no_seal(page, live_server, db, browser_errors, helper_log, tmp_path, screenshot):
    # The portal refuses the seal with 403, which the browser logs as a failed resource.
    browser_errors.expect(r"status of 403 .*/unlock:")
    home = tmp_path / "helper-home"
    backend = make_backend("sim", home)  # Selin's card 14000001 in the reader
    traffic = Traffic(page)
    with running_helper(backend, home, live_server):
        log_in(page, live_server, AYSE["identity"], AYSE["security_word"])
        open_unlock(page)
        expect_card_facts(page, SELIN["card_serial"], 3)

        form = page.locator("form[data-operation=unblock]")
        form.locator("#new_pin").fill(NEW_PIN)
        form.locator("#new_pin_confirm").fill(NEW_PIN)
        with operation_done(page):
            form.get_by_role("button", name="Kilidi Çöz", exact=True).click()
        error = form.locator("[data-form-error]")
        expect(error).to_be_visible()
        expect(error).to_contain_text("size ait değil")
        expect(page.locator("#unlock_page [data-unlock-result]")).to_be_hidden()
        screenshot(page, "foreign-card")

    assert traffic.sent_to("POST", "/v1/pin/unblock") == [], "the page went on to the helper without a seal"
    assert "/v1/pin/unblock" not in helper_log.text(), helper_log.text()
    assert all("sealed_puk" not in body for body in traffic.body_of("POST", "/unlock"))
    outcomes = audit_outcomes(db)
    assert ("unlock.seal", "foreign_card") in outcomes and ("unlock.seal", "ok") not in outcomes, outcomes
    # The card is untouched: every try left, and the PIN it had.
    assert reader.read_card(backend)["pin_tries_left"] == 3 and reader.read_card(backend)["puk_tries_left"] == 3
    assert reader.verify_pin(backend, SELIN["pin"]) == {"pin_tries_left": 3}
    for where, text in {"the page": page.content(), "the server log": live_server.log.text(),
                        **{url: body for _, url, _, body in traffic.bodies}}.items():
        assert SELIN["puk"] not in text and AYSE["puk"] not in text, f"a PUK is in {where}"


@pytest.mark.browser
def test_pin_test_and_change_through_the_sim_helper(
        page, live_server, db, browser_errors, helper_log, tmp_path, screenshot):
    # The helper answers a wrong PIN with 409, which the browser logs as a failed resource.
    browser_errors.expect(r"status of 409 .*/v1/pin/verify:")
    home = tmp_path / "helper-home"
    backend = make_backend("sim", home)
    with running_helper(backend, home, live_server):
        log_in(page, live_server)
        open_unlock(page)
        expect_card_facts(page, SELIN["card_serial"], 3)
        result = page.locator("#unlock_page [data-unlock-result]")

        verify_form = page.locator("form[data-operation=verify]")
        verify_form.locator("#test_pin").fill(SELIN["pin"])
        with operation_done(page):
            verify_form.get_by_role("button", name="Dene", exact=True).click()
        expect(result).to_have_text("PIN doğru.")
        expect(result).to_have_class("alert alert-info")
        screenshot(page, "pin-right")

        change_form = page.locator("form[data-operation=change]")
        change_form.locator("#old_pin").fill(SELIN["pin"])
        change_form.locator("#change_new_pin").fill(NEW_PIN)
        change_form.locator("#change_new_pin_confirm").fill(NEW_PIN)
        with operation_done(page):
            change_form.get_by_role("button", name="PIN'i Değiştir", exact=True).click()
        expect(result).to_have_text("PIN'iniz değiştirildi.")
        expect(change_form.locator("#old_pin")).to_have_value("")
        screenshot(page, "pin-changed")

        verify_form.locator("#test_pin").fill(SELIN["pin"])  # the old PIN: wrong now
        with operation_done(page):
            verify_form.get_by_role("button", name="Dene", exact=True).click()
        expect(result).to_have_text("PIN hatalı. (kalan deneme: 2)")
        expect(result).to_have_class("alert alert-error")
        expect(result).to_have_attribute("role", "alert")
        expect(card_fact(page, "pin_tries_left")).to_have_text("2")
        screenshot(page, "pin-wrong")

    assert reader.verify_pin(backend, NEW_PIN) == {"pin_tries_left": 3}
    outcomes = audit_outcomes(db)
    for expected in (("unlock.verify", "ok"), ("unlock.change", "ok"), ("unlock.verify", "wrong_pin")):
        assert expected in outcomes, outcomes
    assert outcomes.count(("unlock.pin_op", "permitted")) == 3, outcomes
    for line in helper_log.lines:
        assert SELIN["pin"] not in line and NEW_PIN not in line, line
    assert NEW_PIN not in live_server.log.text() and SELIN["pin"] not in live_server.log.text()

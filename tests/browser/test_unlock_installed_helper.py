"""Kilit Çözme through the helper as a holder installs it: the wheel ``make helper-dist`` builds,
installed into a fresh venv without Flask (tests/test_helper_dist.py's ``wheel`` and ``venv``), run as
``kamusm-helper --backend pcsc`` in its own process, and reached by chromium on 127.0.0.1, then
pyscard -> pcscd -> vpcd -> the virtual card.

The page first offers the very wheel that is installed (the same SHA-256); the helper's pairing
code is read from its standard output, as the holder reads its window; its log (standard error) is
kept to prove that no PUK, PIN or pairing code was logged. The process is stopped with Ctrl+C
(SIGINT) at the end, as a holder stops it, and must exit cleanly.
"""
from __future__ import annotations

import hashlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from card_stack import (  # noqa: F401  (the *_fixture names register the card_stack and fresh_card fixtures)
    PUK,
    SERIAL,
    VIRTUAL_READER,
    card_stack_fixture,
    fresh_card_fixture,
)
from pages import (
    NEW_PIN,
    SELIN,
    WRONG_PIN,
    HelperConsole,
    Traffic,
    code_pattern,
    expect_card_facts,
    log_in,
    open_unlock,
    pair_in_browser,
    result_line,
    sms_bodies,
    unblock,
)
from playwright.sync_api import expect

from kamusm import storage
from kamusm.card import reader
from kamusm.card.apdu import CardError
from tests import test_helper_dist
from tests.conftest import audit_events
from tests.test_helper_api import HelperClient
from tests.test_helper_dist import clean_environment, free_port

# wide_screen (conftest.py): a desktop's width, where the screenshots are looked at.
pytestmark = pytest.mark.usefixtures("wide_screen")

# The wheel build and the fresh venv of tests/test_helper_dist.py, as fixtures of this module too.
wheel = test_helper_dist.wheel
venv = test_helper_dist.venv

HELPER_START_SECONDS = 30
HELPER_STOP_SECONDS = 10
POLL_SECONDS = 0.1


def keep_reading(stream, into: HelperConsole) -> threading.Thread:
    """Copy a process's output into ``into`` line by line, so its pipe never fills."""
    def pump() -> None:
        for line in stream:
            into(line.rstrip("\n"))

    thread = threading.Thread(target=pump, name="kamusm-helper-output", daemon=True)
    thread.start()
    return thread


class InstalledHelper:
    """``kamusm-helper`` of the fresh venv as a process: its console (stdout) and its log (stderr)."""

    def __init__(self, venv: Path, port: int, origin: str, home: Path) -> None:
        self.port, self.origin = port, origin
        self.console, self.log = HelperConsole(), HelperConsole()
        command = [str(venv / "bin" / "kamusm-helper"), "--backend", "pcsc", "--origin", origin,
                   "--port", str(port), "--home", str(home)]
        # cwd outside the repository and no PYTHONPATH: only the installed package can be imported.
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        encoding="utf-8", env={**clean_environment(), "PYTHONIOENCODING": "utf-8"},
                                        cwd=home.parent)
        self._readers = [keep_reading(self.process.stdout, self.console), keep_reading(self.process.stderr, self.log)]

    def wait_until_serving(self) -> dict:
        """The helper's /v1/status, asked with the portal's Origin, once it answers."""
        deadline = time.monotonic() + HELPER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"kamusm-helper exited with {self.process.returncode}:\n{self.log.text()}")
            try:
                answer = HelperClient(self.port).get("/v1/status", origin=self.origin)
            except OSError:
                time.sleep(POLL_SECONDS)
                continue
            assert answer.status == 200, (answer.status, answer.json)
            return answer.json
        pytest.fail(f"kamusm-helper did not answer within {HELPER_START_SECONDS} s:\n{self.log.text()}")

    def interrupt(self) -> int:
        """Ctrl+C, as a holder stops it; returns the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=HELPER_STOP_SECONDS)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for thread in self._readers:
            thread.join(timeout=HELPER_STOP_SECONDS)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def installed_helper(venv, live_server, tmp_path) -> Iterator:
    """start() runs the installed helper for the live portal on a free port; it is stopped at the end."""
    started: list[InstalledHelper] = []

    def start(port: int) -> InstalledHelper:
        home = tmp_path / "helper" / "home"
        home.parent.mkdir()
        helper = InstalledHelper(venv, port, live_server.url, home)
        started.append(helper)
        return helper

    yield start
    for helper in started:
        helper.close()


@pytest.mark.browser
@pytest.mark.card
def test_unlock_through_the_installed_helper_wheel_and_pcscd(
        page, live_server, db, fresh_card, wheel, installed_helper, browser_errors, screenshot):
    from kamusm.card.pcsc import PcscBackend

    # Before the helper is started the page cannot reach it: chromium logs the refused fetch.
    browser_errors.expect(r"net::ERR_CONNECTION_REFUSED")
    # The helper process keeps real time; the portal's seals must be made on the same time line.
    live_server.clock.now = time.time()
    with PcscBackend(VIRTUAL_READER) as backend:
        for _ in range(3):
            with pytest.raises(CardError):
                reader.verify_pin(backend, WRONG_PIN, confirm_last_try=True)
        assert reader.read_card(backend)["pin_tries_left"] == 0

    live_server.app.config["KAMUSM_HELPER_DIST_DIR"] = str(wheel.parent)
    port = free_port()
    live_server.app.config["KAMUSM_HELPER_URL"] = f"http://127.0.0.1:{port}"
    traffic = Traffic(page)
    log_in(page, live_server)
    open_unlock(page)

    # The portal offers the very wheel that the fresh venv has installed.
    missing = page.locator("#unlock_unreachable")
    expect(missing).to_be_visible()
    expect(missing.locator("a[data-helper-wheel]")).to_have_text(wheel.name)
    expect(missing.locator("[data-helper-sha256]")).to_have_text(hashlib.sha256(wheel.read_bytes()).hexdigest())
    expect(missing.locator("details[open] [data-start-command]")).to_contain_text(f"--origin {live_server.url}")
    screenshot(page, "no-helper")

    helper = installed_helper(port)
    status = helper.wait_until_serving()
    missing.get_by_role("button", name="Tekrar Dene", exact=True).click()
    expect(page.locator("#unlock_pair [data-fingerprint]")).to_have_text(status["fingerprint"])

    shown = pair_in_browser(page, helper.console, screenshot)
    expect(page.locator("#unlock_forms")).to_contain_text("Kart yardımcınız eşleştirildi")
    expect_card_facts(page, SERIAL, 0)
    screenshot(page, "blocked-card")

    unblock(page)
    expect(result_line(page)).to_contain_text("kilidi çözüldü")
    expect_card_facts(page, SERIAL, 3)
    screenshot(page, "unlocked")
    unlock_html = page.content()

    assert helper.interrupt() == 0, helper.log.text()
    helper.close()
    with PcscBackend(VIRTUAL_READER) as backend:
        assert reader.verify_pin(backend, NEW_PIN) == {"pin_tries_left": 3}

    assert "POST /v1/pair 200" in helper.log.text() and "POST /v1/pin/unblock 200" in helper.log.text(), \
        helper.log.text()
    outcomes = audit_events(db, "unlock.")
    for expected in (("unlock.pair", "ok"), ("unlock.seal", "ok"), ("unlock.unblock", "ok")):
        assert expected in outcomes, outcomes
    assert storage.outbox.latest_outbox(db, "sms", 1)[0]["recipient"] == SELIN["phone"]

    places = {"the unlock page": unlock_html, "the server log": live_server.log.text(),
              "the helper log": helper.log.text(), "the helper console": helper.console.text(),
              "the audit": repr(list(storage.audit_log.audit_entries(db))), "the SMS outbox": repr(sms_bodies(db)),
              **traffic.places()}
    code = code_pattern(shown)
    typed_into = [where for where, text in places.items() if code.search(text)]
    assert len(typed_into) == 2 and typed_into[0] == "the helper console" \
        and typed_into[1].startswith(f"request POST {live_server('/unlock/pair')} "), \
        f"the pairing code is in {typed_into}"
    for where, text in places.items():
        assert PUK not in text, f"the PUK is in {where}"
        assert NEW_PIN not in text or where.startswith("request "), f"the new PIN is in {where}"

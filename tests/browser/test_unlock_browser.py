"""Kilit Çözme (/unlock) in a real browser (Debian's chromium through Playwright), end to end.

The page asks the local helper on 127.0.0.1 what it sees (GET /v1/status, GET /v1/card), reports
that to the portal (GET /unlock/state) and shows the state the portal renders: helper unreachable
(with the wheel and its commands), pairing, the pairing code, step-up, card problem, foreign card,
blocked for good, or the forms. Pairing goes the way a holder does it: "Eşleştir", then the code the
helper printed on its own console (the ``display`` callback of make_server, read here) typed into
the page.

The whole chain of an online unlock: the portal's page in chromium -> the helper
(kamusm.helper.make_server, in a thread) -> pyscard -> pcscd -> vpcd -> the virtual card
(``python -m kamusm.card.virtual``, tests/card_stack.py). The portal seals the vaulted PUK for the
paired helper's key; the test proves the PUK shows up in no page, no response the browser got, no
request it sent, no server or helper log line and no audit entry, that the pairing code travels only
in the one request the holder typed it into, and that the new PIN really is on the card afterwards.

The other tests use the helper's sim backend (kamusm.helper.make_backend("sim", home): Selin's demo
card 14000001).

The portal's app is built before the helper can know the portal's origin (the live server picks a
free port), so the tests point the running app at the helper with
``app.config["KAMUSM_HELPER_URL"]``; /unlock and its CSP read it per request.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from card_stack import (  # noqa: F401  (the *_fixture names register the card_stack and fresh_card fixtures)
    PIN,
    PUK,
    SERIAL,
    VIRTUAL_READER,
    card_stack_fixture,
    fresh_card_fixture,
)
from pages import (
    NEW_PIN,
    WRONG_PIN,
    HelperConsole,
    Traffic,
    card_fact,
    closed_port,
    code_pattern,
    expect_card_facts,
    log_in,
    open_unlock,
    operation_done,
    pair_in_browser,
    result_line,
    running_helper,
    sms_bodies,
    unblock,
    url_path,
)
from playwright.sync_api import expect

from kamusm import storage
from kamusm.card import reader
from kamusm.card.apdu import CardError
from kamusm.demo import DEMO_HOLDERS
from kamusm.helper import make_backend
from kamusm.helper.dist import wheel_filename
from kamusm.web.stepup import RECENT_CODE_SECONDS
from tests.conftest import audit_events, id_of

# wide_screen (conftest.py): a desktop's width, where the screenshots are looked at.
pytestmark = pytest.mark.usefixtures("wide_screen")

SELIN = DEMO_HOLDERS[0]
AYSE = DEMO_HOLDERS[2]
WRONG_PUK = "11111111"
HELPER_LOGGER = "kamusm.helper"

assert (SERIAL, PIN, PUK) == (SELIN["card_serial"], SELIN["pin"], SELIN["puk"]), "the virtual card is Selin's card"


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


@pytest.fixture
def console() -> HelperConsole:
    return HelperConsole()


@pytest.mark.browser
@pytest.mark.card
def test_unlock_through_the_helper_and_pcscd_to_the_virtual_card(
        page, live_server, db, fresh_card, helper_log, console, tmp_path, screenshot):
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

        with running_helper(backend, tmp_path / "helper-home", live_server, console) as server:
            helper_url = f"http://127.0.0.1:{server.port}"
            log_in(page, live_server)
            open_unlock(page)
            pair = page.locator("#unlock_pair")
            expect(pair).to_be_visible()
            expect(pair.locator("[data-fingerprint]")).to_have_text(server.helper.fingerprint)
            expect(page.locator("#unlock form[data-operation]")).to_have_count(0)
            screenshot(page, "pair")

            shown = pair_in_browser(page, console, screenshot)
            forms = page.locator("#unlock_forms")
            expect(forms).to_contain_text("Kart yardımcınız eşleştirildi")
            expect_card_facts(page, SERIAL, 0)
            expect(card_fact(page, "reader")).to_have_text(VIRTUAL_READER)
            expect(card_fact(page, "puk_tries_left")).to_have_text("3")
            expect(page.locator("#unlock_helpers [data-helper-fingerprint]")).to_have_attribute(
                "data-helper-fingerprint", server.helper.fingerprint)
            screenshot(page, "blocked-card")

            unblock(page)
            expect(result_line(page)).to_contain_text("kilidi çözüldü")
            expect(result_line(page)).to_have_attribute("role", "status")
            expect_card_facts(page, SERIAL, 3)  # the closing refresh read the unblocked card
            expect(forms.locator("#new_pin")).to_have_value("")  # the page forgot the PINs typed
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
    assert "POST /v1/pair 200" in helper_log.text() and "POST /v1/pin/unblock 200" in helper_log.text()

    outcomes = audit_events(db, "unlock.")
    for expected in (("unlock.pair_start", "sent"), ("unlock.pair", "ok"), ("unlock.pair_notice", "sent"),
                     ("unlock.seal", "ok"), ("unlock.unblock", "ok")):
        assert expected in outcomes, outcomes
    texts = [(message["recipient"], message["body"]) for message in storage.outbox.latest_outbox(db, "sms", 10)]
    pairing_notice, seal_alert = (next(text for text in texts if words in text[1])
                                  for words in (server.helper.fingerprint, "kart yardımcısına şifreli gönderildi"))
    assert pairing_notice[0] == seal_alert[0] == SELIN["phone"], texts

    page.goto(live_server("/pin-puk"))
    notice_line = page.locator("#pin_puk_masked table.secrets .alert-info")
    expect(notice_line).to_contain_text("artık geçerli değildir")
    screenshot(page, "pin-puk-stale")

    assert not traffic.missed(helper_url), traffic.missed(helper_url)
    places = {"the unlock page": unlock_html, "the PIN/PUK page": page.content(),
              "the server log": live_server.log.text(), "the helper log": helper_log.text(),
              "the audit": repr(list(storage.audit_log.audit_entries(db))), "the SMS outbox": repr(sms_bodies(db)),
              **traffic.places()}
    code = code_pattern(shown)
    typed_into = [where for where, text in places.items() if code.search(text)]
    assert len(typed_into) == 1 and typed_into[0].startswith(f"request POST {live_server('/unlock/pair')} "), \
        f"the pairing code is in {typed_into}"
    for where, text in places.items():
        assert PUK not in text, f"the PUK is in {where}"
        assert NEW_PIN not in text or where.startswith("request "), f"the new PIN is in {where}"


@pytest.mark.browser
def test_unlock_page_without_helper_explains_how_to_install_and_start_it(
        page, live_server, browser_errors, console, tmp_path, screenshot):
    # fetch() of a closed port: chromium logs the refused connection as a failed resource.
    browser_errors.expect(r"net::ERR_CONNECTION_REFUSED")
    dist = Path(live_server.app.config["KAMUSM_HELPER_DIST_DIR"])
    dist.mkdir(parents=True, exist_ok=True)
    wheel_bytes = b"the helper wheel, as make helper-dist leaves it"
    (dist / wheel_filename()).write_bytes(wheel_bytes)
    digest = hashlib.sha256(wheel_bytes).hexdigest()
    port = closed_port()
    live_server.app.config["KAMUSM_HELPER_URL"] = f"http://127.0.0.1:{port}"
    log_in(page, live_server)
    open_unlock(page)

    missing = page.locator("#unlock_unreachable")
    expect(missing).to_be_visible()
    expect(page.locator("#unlock_checking")).to_have_count(0)
    expect(missing.get_by_role("alert")).to_have_text("Kart yardımcısına ulaşılamadı.")
    link = missing.locator("a[data-helper-wheel]")
    expect(link).to_have_text(wheel_filename())
    expect(link).to_have_attribute("href", f"/helper/{wheel_filename()}")
    expect(missing.locator("[data-helper-sha256]")).to_have_text(digest)
    download = page.request.get(live_server(link.get_attribute("href")))
    assert download.status == 200 and hashlib.sha256(download.body()).hexdigest() == digest
    # chromium on Linux: the Debian steps first and open.
    first = missing.locator("details.install-steps").first
    expect(first).to_have_attribute("data-system", "debian")
    expect(first).to_have_attribute("open", "")
    expect(first.locator("[data-install-command]")).to_contain_text(
        f"{live_server.url}/helper/{wheel_filename()}#sha256={digest}")
    # The helper is not on its default port here, so the start command names the one the page calls.
    expect(first.locator("[data-start-command]")).to_have_text(
        f"~/.local/bin/kamusm-helper --port {port} --origin {live_server.url}")
    expect(missing.locator("details.install-steps")).to_have_count(3)
    for command in missing.locator("[data-start-command]").all():
        expect(command).to_contain_text(f"--port {port} --origin {live_server.url}")
    expect(missing).to_contain_text("Yerel ağ erişimi")
    expect(missing).to_contain_text("Chrome 142")
    expect(missing).to_contain_text("Firefox'ta ek bir izin gerekmez")
    # Nothing to type a PIN into, and no empty card facts, while no helper answers.
    expect(page.locator("#unlock form[data-operation]")).to_have_count(0)
    expect(page.locator("#unlock input[type=password]")).to_have_count(0)
    expect(page.locator("#unlock dl.card-facts")).to_have_count(0)
    screenshot(page, "no-helper")

    # The holder starts the helper as told, on the port the portal names, and clicks "Tekrar Dene".
    home = tmp_path / "helper-home"
    with running_helper(make_backend("sim", home), home, live_server, console, port=port):
        missing.get_by_role("button", name="Tekrar Dene", exact=True).click()
        expect(page.locator("#unlock_pair")).to_be_visible()
        expect(missing).to_have_count(0)
        screenshot(page, "helper-started")


@pytest.mark.browser
def test_foreign_card_gets_no_forms_and_no_seal(
        page, live_server, db, helper_log, console, tmp_path, screenshot):
    home = tmp_path / "helper-home"
    backend = make_backend("sim", home)  # Selin's card 14000001 in the reader
    traffic = Traffic(page)
    with running_helper(backend, home, live_server, console):
        log_in(page, live_server, AYSE["identity"], AYSE["security_word"])
        open_unlock(page)
        pair_in_browser(page, console)
        foreign = page.locator("#unlock_foreign_card")
        expect(foreign).to_be_visible()
        expect(foreign.get_by_role("alert")).to_contain_text("size ait değil")
        expect(card_fact(page, "serial", "unlock_foreign_card")).to_have_text(SELIN["card_serial"])
        expect(page.locator("#unlock form[data-operation]")).to_have_count(0)
        screenshot(page, "foreign-card")

    assert traffic.sent_to("POST", "/unlock") == [], "the page asked for a seal for another holder's card"
    assert traffic.sent_to("POST", "/v1/pin/unblock") == [], "the page went on to the helper"
    assert "/v1/pin/" not in helper_log.text(), helper_log.text()
    outcomes = audit_events(db, "unlock.")
    assert ("unlock.pair", "ok") in outcomes and not [event for event in outcomes if event[0] == "unlock.seal"], \
        outcomes
    # The card is untouched: every try left, and the PIN it had.
    assert reader.read_card(backend)["pin_tries_left"] == 3 and reader.read_card(backend)["puk_tries_left"] == 3
    assert reader.verify_pin(backend, SELIN["pin"]) == {"pin_tries_left": 3}
    for where, text in {"the page": page.content(), "the server log": live_server.log.text(),
                        **traffic.places()}.items():
        assert SELIN["puk"] not in text and AYSE["puk"] not in text, f"a PUK is in {where}"


@pytest.mark.browser
def test_pin_test_and_change_through_the_sim_helper(
        page, live_server, db, browser_errors, helper_log, console, tmp_path, screenshot):
    # The helper answers a wrong PIN with 409, which the browser logs as a failed resource.
    browser_errors.expect(r"status of 409 .*/v1/pin/verify:")
    home = tmp_path / "helper-home"
    backend = make_backend("sim", home)
    with running_helper(backend, home, live_server, console):
        log_in(page, live_server)
        open_unlock(page)
        pair_in_browser(page, console)
        expect_card_facts(page, SELIN["card_serial"], 3)
        result = result_line(page)

        verify_form = page.locator("#unlock_forms form[data-operation=verify]")
        verify_form.locator("#test_pin").fill(SELIN["pin"])
        with operation_done(page):
            verify_form.get_by_role("button", name="Dene", exact=True).click()
        expect(result).to_have_text("PIN doğru.")
        expect(result).to_have_class("alert alert-info")
        screenshot(page, "pin-right")

        change_form = page.locator("#unlock_forms form[data-operation=change]")
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
    outcomes = audit_events(db, "unlock.")
    for expected in (("unlock.verify", "ok"), ("unlock.change", "ok"), ("unlock.verify", "wrong_pin")):
        assert expected in outcomes, outcomes
    assert outcomes.count(("unlock.pin_op", "permitted")) == 3, outcomes
    for line in helper_log.lines:
        assert SELIN["pin"] not in line and NEW_PIN not in line, line
    assert NEW_PIN not in live_server.log.text() and SELIN["pin"] not in live_server.log.text()


@pytest.mark.browser
def test_a_stale_session_confirms_an_sms_code_before_the_unblock(
        page, live_server, db, console, tmp_path, screenshot):
    home = tmp_path / "helper-home"
    backend = make_backend("sim", home)
    traffic = Traffic(page)
    with running_helper(backend, home, live_server, console):
        log_in(page, live_server)
        open_unlock(page)
        pair_in_browser(page, console)  # right after login: the session is fresh
        expect(page.locator("#unlock_forms form[data-operation=unblock]")).to_be_visible()

        live_server.clock.advance(RECENT_CODE_SECONDS + 1)
        page.reload()
        forms = page.locator("#unlock_forms")
        expect(forms).to_be_visible()
        needs_code = forms.locator("[data-unblock-needs-code]")
        expect(needs_code).to_be_visible()
        expect(forms.locator("form[data-operation=unblock]")).to_have_count(0)
        expect(forms.locator("form[data-operation=change]")).to_be_visible()  # a PIN change needs no code
        screenshot(page, "code-needed")

        needs_code.get_by_role("button", name="SMS Onay Kodu Gönder", exact=True).click()
        stepup = page.locator("#unlock_stepup")
        expect(stepup).to_be_visible()
        screenshot(page, "code-asked")
        stepup.locator("#code").fill(live_server.latest_sms_code())
        stepup.get_by_role("button", name="Gönder", exact=True).click()
        expect(stepup).to_have_count(0)
        expect(forms.locator("form[data-operation=unblock]")).to_be_visible()

        unblock(page)
        expect(result_line(page)).to_contain_text("kilidi çözüldü")
        screenshot(page, "unlocked")

    assert reader.verify_pin(backend, NEW_PIN) == {"pin_tries_left": 3}
    assert len(traffic.sent_to("POST", "/unlock/stepup/send")) == 1
    outcomes = audit_events(db)
    for expected in (("stepup.sms", "sent"), ("stepup.code", "ok"), ("unlock.seal", "ok"), ("unlock.unblock", "ok")):
        assert expected in outcomes, outcomes
    assert ("unlock.seal", "stepup") not in outcomes, "the page asked for a seal before the code"


@pytest.mark.browser
def test_a_wrong_pairing_code_and_removing_a_paired_helper(
        page, live_server, db, browser_errors, console, tmp_path, screenshot):
    # The portal answers the wrong code with 422, which the browser logs as a failed resource.
    browser_errors.expect(r"status of 422 .*/unlock/pair:")
    home = tmp_path / "helper-home"
    with running_helper(make_backend("sim", home), home, live_server, console) as server:
        log_in(page, live_server)
        open_unlock(page)
        page.locator("#unlock_pair").get_by_role("button", name="Eşleştir", exact=True).click()
        code_screen = page.locator("#unlock_pair_code")
        expect(code_screen).to_be_visible()
        digits = console.pairing_code().replace(" ", "")
        code_screen.locator("#pairing_code").fill(f"{(int(digits) + 1) % 1_000_000:06d}")
        code_screen.get_by_role("button", name="Onayla", exact=True).click()

        field = page.locator("#unlock_pair_code #pairing_code")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_attribute("aria-describedby", "pairing_code-error")
        expect(page.locator("#pairing_code-error")).to_have_text("Eşleştirme kodu hatalı.")
        expect(page.locator("#unlock_pair_code")).to_contain_text("kalan deneme: 2")
        expect(field).to_be_focused()
        screenshot(page, "wrong-code")

        # The same code, typed right this time, still pairs.
        field.fill(console.pairing_code())
        page.locator("#unlock_pair_code").get_by_role("button", name="Onayla", exact=True).click()
        expect(page.locator("#unlock_forms")).to_be_visible()
        row = page.locator(f"#unlock_helpers tr[data-helper-fingerprint='{server.helper.fingerprint}']")
        expect(row).to_be_visible()
        screenshot(page, "paired")

        row.get_by_role("button", name="Kaldır", exact=True).click()
        page.wait_for_url(url_path("/unlock"))
        expect(page.locator("#unlock_pair")).to_be_visible()
        expect(page.locator("#unlock_helpers")).to_contain_text("Henüz eşleştirilmiş bir kart yardımcınız yok.")
        screenshot(page, "removed")

    outcomes = audit_events(db, "unlock.")
    for expected in (("unlock.pair", "wrong_code"), ("unlock.pair", "ok"), ("unlock.helper_removed", "ok")):
        assert expected in outcomes, outcomes
    assert storage.helper_keys.holder_helper_keys(db, id_of(db)) == []


@pytest.mark.browser
def test_a_card_whose_puk_is_blocked_for_good(page, live_server, db, console, tmp_path, screenshot):
    home = tmp_path / "helper-home"
    backend = make_backend("sim", home)
    for tries_left in (2, 1, 0):
        with pytest.raises(CardError) as wrong:
            reader.unblock_pin(backend, WRONG_PUK, NEW_PIN, confirm_last_try=True)
        assert (wrong.value.error, wrong.value.tries_left) == ("wrong_puk", tries_left)
    assert reader.read_card(backend)["puk_tries_left"] == 0
    traffic = Traffic(page)
    with running_helper(backend, home, live_server, console):
        log_in(page, live_server)
        open_unlock(page)
        pair_in_browser(page, console)
        blocked = page.locator("#unlock_blocked")
        expect(blocked).to_be_visible()
        expect(blocked.get_by_role("alert")).to_contain_text("kalıcı olarak bloke")
        expect(card_fact(page, "puk_tries_left", "unlock_blocked")).to_have_text("0")
        expect(page.locator("#unlock form[data-operation]")).to_have_count(0)
        screenshot(page, "blocked-for-good")

    assert traffic.sent_to("POST", "/unlock") == [] and traffic.sent_to("POST", "/unlock/op") == []

"""The presenter (/demo/presenter) in a real browser, in Turkish and in English: every panel shows; a scenario
button changes the card panel live, without a reload; an SMS the portal sends (in its own window) comes up on the
presenter's phone panel by polling; and the buttons keep working after that login renewed the session."""
from __future__ import annotations

import re

import pytest
from pages import marker, polls_held, set_marker, url_path, wait_for_captcha
from playwright.sync_api import expect

from kamusm.demo import DEMO_HOLDERS
from tests.conftest import CAPTCHA_ANSWER

pytestmark = pytest.mark.browser

SELIN, KEMAL = DEMO_HOLDERS[0], DEMO_HOLDERS[1]
POLL_TIMEOUT_MS = 8_000  # the panels poll every 2 s
TEXTS = {
    "tr": {"heading": "Sunum ekranı", "phone": "Tanıtım telefonu", "mail": "Tanıtım e-posta kutusu",
           "open": "Portalı ayrı pencerede aç", "blocked": "PIN blokeli", "locked": "Kilitli"},
    "en": {"heading": "Presenter", "phone": "Demo phone", "mail": "Demo mailbox",
           "open": "Open the portal in its own window", "blocked": "PIN blocked", "locked": "Locked"},
}


def english_merged(page) -> bool:
    """The lead merges the English of new msgids; until then the English run checks, in English, only the texts
    the catalog had before (the demo phone and mailbox, "Locked")."""
    return page.locator(".presenter-intro h1").inner_text() != TEXTS["tr"]["heading"]


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_presenter_panels_update_live(lang, page, context, live_server, screenshot):
    page.goto(live_server(f"/demo/presenter?lang={lang}"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    texts = TEXTS[lang]
    if lang == "en" and not english_merged(page):
        texts = {**TEXTS["tr"], **{name: TEXTS["en"][name] for name in ("phone", "mail", "locked")}}
    expect(page.locator(".presenter-intro h1")).to_have_text(texts["heading"])
    expect(page.locator("#demo_phone_messages h1")).to_have_text(texts["phone"])
    expect(page.locator("#demo_mail_messages h1")).to_have_text(texts["mail"])
    for panel in ("#demo_presenter_state", "#demo_presenter_scenarios", "#demo_phone_messages", "#demo_mail_messages"):
        expect(page.locator(panel)).to_be_visible()
    expect(page.locator("#demo_presenter_state [data-field=card]")).to_be_visible()  # the helper never ran
    set_marker(page)
    screenshot(page, f"presenter-{lang}")

    # The portal opens in its own window from the presenter's button (the CSP forbids framing it).
    with context.expect_page() as opened:
        page.get_by_role("link", name=texts["open"], exact=True).click()
    portal = opened.value
    portal.wait_for_url(url_path("/login"))

    page.locator("#demo_presenter_scenarios button[value=pin-blocked]").click()
    expect(page.locator("#demo_presenter_scenarios .alert-info")).to_contain_text(SELIN["name"])
    expect(page.locator("#demo_presenter_state [data-field=pin]")).to_contain_text(
        f"0 / 3 · {texts['blocked']}", timeout=POLL_TIMEOUT_MS)
    assert marker(page) == "still here", "the scenario button reloaded the presenter instead of swapping"

    # The portal's window logs in up to the SMS: the code comes up on the presenter's phone panel.
    wait_for_captcha(portal)
    portal.locator("#identity").fill(SELIN["identity"])
    portal.locator("#captcha").fill(CAPTCHA_ANSWER)
    portal.locator("#security_word").fill(SELIN["security_word"])
    portal.locator("#login_form button[type=submit]").click()
    portal.wait_for_url(url_path("/login/sms"))
    portal.locator("#login_sms_confirm button[type=submit]").first.click()
    portal.wait_for_url(url_path("/login/code"))
    newest = page.locator("#demo_phone_messages ol.messages li").first
    expect(newest).to_contain_text(SELIN["phone"], timeout=POLL_TIMEOUT_MS)
    assert re.search(r"\b\d{6}\b", newest.inner_text()).group(0) == live_server.latest_sms_code()
    assert marker(page) == "still here", "the phone panel reloaded instead of polling"

    # That login started a new session in this browser: after the next poll the buttons carry its token.
    page.wait_for_timeout(2_500)
    page.locator("#holder").select_option(KEMAL["identity"])
    page.locator("#demo_presenter_scenarios button[value=locked-out]").click()
    expect(page.locator("#demo_presenter_scenarios .alert-info")).to_contain_text(KEMAL["name"])
    kemal_login = page.locator(f'#demo_presenter_state tr[data-identity="{KEMAL["identity"]}"] [data-field=login]')
    expect(kemal_login).to_contain_text(texts["locked"], timeout=POLL_TIMEOUT_MS)
    assert marker(page) == "still here"
    screenshot(page, f"presenter-{lang}-after")


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_the_presenter_passes_axe_and_the_keyboard(lang, tour, page, live_server):
    """The accessibility tour of every other screen (tests/browser/test_accessibility_browser.py), with a blocked
    card and a locked holder on the panels."""
    page.goto(live_server(f"/demo/presenter?lang={lang}"))
    page.locator("#demo_presenter_scenarios button[value=pin-blocked]").click()
    page.locator("#demo_presenter_scenarios button[value=locked-out]").click()
    expect(page.locator("#demo_presenter_state [data-field=pin]")).to_contain_text("0 / 3", timeout=POLL_TIMEOUT_MS)
    with polls_held(page, live_server("/demo/presenter/state")), \
            polls_held(page, live_server("/demo/phone")), \
            polls_held(page, live_server("/demo/mail")):
        tour.check("presenter", "#demo_presenter_scenarios button[value=pin-blocked]")
    tour.assert_clean()

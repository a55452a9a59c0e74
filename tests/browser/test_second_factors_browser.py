"""Passkeys, the authenticator app and recovery codes in a real browser (Debian's chromium through Playwright).

What only a browser shows: static/js/passkey.js really runs the WebAuthn ceremonies against chromium's
virtual authenticator (a platform authenticator with user verification, driven over CDP) and its answer
is accepted by the portal at enrolment, at login and at the PIN/PUK step-up; the app's enrolment screen
shows a seed that pyotp turns into codes the portal takes; a recovery code typed into the second step's
folded-away form logs in; /security speaks English after the language switch; axe-core finds nothing on
the new screens. No screen has a console error or a CSP violation (the `context` fixture fails the test
otherwise). Screenshots go to test-artifacts/.

Browsers refuse an IP address as a WebAuthn rp id, so these tests open the live server as
http://localhost:<port> and set KAMUSM_PUBLIC_URL to that origin (the app reads it per request).
"""
from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import pyotp
import pytest
from pages import AXE, AXE_PATH, DESKTOP, Tour, click_plain_form_button, fill_login, log_in, url_path, wait_for_captcha
from playwright.sync_api import expect

from kamusm import storage
from kamusm.demo import DEMO_HOLDERS
from kamusm.web.stepup import RECENT_CODE_SECONDS

pytestmark = pytest.mark.browser

SELIN = DEMO_HOLDERS[0]
TOTP_STEP_SECONDS = 30
VIRTUAL_AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                         "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}


@pytest.fixture
def site(live_server):
    """The live server under the name localhost, which is also the portal's public URL (the passkeys' rp id)."""
    url = f"http://localhost:{urlsplit(live_server.url).port}"
    live_server.app.config["KAMUSM_PUBLIC_URL"] = url
    return dataclasses.replace(live_server, url=url)


@pytest.fixture
def authenticator(context, page):
    """Chromium's virtual authenticator on `page`: (the CDP session, the authenticator's id)."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})
    return cdp, added["authenticatorId"]


def credentials_of(authenticator) -> list[dict]:
    cdp, authenticator_id = authenticator
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


def sms_count(db) -> int:
    return len(storage.outbox.latest_outbox(db, "sms", 1000))


def holder_id(db) -> int:
    return storage.holders.find_holder(db, SELIN["identity"])["id"]


def factor_uses(db, factor: str) -> int:
    return sum(1 for entry in storage.audit_log.audit_entries(db, holder_id(db))
               if (entry["event"], entry["outcome"]) == (f"factor.{factor}", "ok"))


def open_security(page):
    """From the menu, the way a holder goes: the "Güvenlik Yöntemlerim" button."""
    page.locator("#menu_operations").get_by_role("link", name="Güvenlik Yöntemlerim", exact=True).click()
    page.wait_for_url(url_path("/security"))
    screen = page.locator("#security_list")
    expect(screen).to_be_visible()
    return screen


def log_out(page) -> None:
    click_plain_form_button(page, page.locator("form.logout button[type=submit]"), "/logout")
    page.wait_for_url(url_path("/login"))


def to_second_step(page, site):
    """The security word step of a new login; returns the second step's screen."""
    page.goto(site("/login"))
    wait_for_captcha(page)
    fill_login(page, SELIN["security_word"])
    page.get_by_role("button", name="Giriş", exact=True).click()
    page.wait_for_url(url_path("/login/sms"))
    screen = page.locator("#login_sms_confirm")
    expect(screen).to_be_visible()
    return screen


def enrol_passkey(page, name: str = "Dizüstü") -> None:
    screen = open_security(page)
    expect(screen).to_contain_text("Kayıtlı geçiş anahtarınız yok.")
    screen.locator("#name").fill(name)
    screen.get_by_role("button", name="Geçiş anahtarı ekle", exact=True).click()
    listing = page.locator("#security_list")
    expect(listing.locator(".alert-info")).to_have_text(f"Geçiş anahtarı eklendi: {name}")
    expect(listing.locator("table.factor-table tbody tr")).to_have_count(1)
    expect(listing.locator("table.factor-table tbody td").first).to_have_text(name)


def enrol_app(page, clock) -> pyotp.TOTP:
    """Start the app on /security, read the seed off the screen, confirm with its current code."""
    open_security(page).get_by_role("button", name="Doğrulama uygulaması ekle", exact=True).click()
    screen = page.locator("#security_totp")
    expect(screen).to_be_visible()
    expect(screen.locator(".qr svg")).to_be_visible()
    seed = screen.locator("code.seed").inner_text().replace(" ", "")
    app_totp = pyotp.TOTP(seed)
    screen.locator("#new_totp_code").fill(app_totp.at(clock()))
    screen.locator("#name").fill("Telefon")
    screen.get_by_role("button", name="Ekle", exact=True).click()
    expect(page.locator("#security_list .alert-info")).to_have_text("Doğrulama uygulaması eklendi: Telefon")
    assert seed not in page.content(), "the seed is still on the page after the enrolment"
    return app_totp


def make_recovery_codes(page) -> list[str]:
    open_security(page).get_by_role("button", name="Kurtarma kodları oluştur", exact=True).click()
    screen = page.locator("#security_recovery_codes")
    expect(screen).to_be_visible()
    expect(screen.locator("ol.recovery-codes code")).to_have_count(10)
    return screen.locator("ol.recovery-codes code").all_inner_texts()


def test_passkey_enrolled_in_the_browser_logs_in_and_confirms_the_pin_reveal(page, site, authenticator, db,
                                                                              screenshot):
    log_in(page, site)
    enrol_passkey(page)
    screenshot(page, "passkey-added")
    made = credentials_of(authenticator)
    assert len(made) == 1 and made[0]["rpId"] == "localhost" and made[0]["isResidentCredential"]
    assert len(storage.factors.holder_passkeys(db, holder_id(db))) == 1

    log_out(page)
    screen = to_second_step(page, site)
    screenshot(page, "second-step")
    sent_before = sms_count(db)
    screen.get_by_role("button", name="Geçiş anahtarımı kullan", exact=True).click()
    page.wait_for_url(url_path("/menu"))
    expect(page.locator("#menu_operations")).to_be_visible()
    assert sms_count(db) == sent_before, "a passkey login sent an SMS"
    assert factor_uses(db, "passkey") == 1
    assert storage.factors.holder_passkeys(db, holder_id(db))[0]["last_used_at"] is not None

    page.locator("#menu_operations").get_by_role("link", name="PIN/PUK Bilgisi", exact=True).click()
    page.wait_for_url(url_path("/pin-puk"))
    site.clock.advance(RECENT_CODE_SECONDS + 1)
    page.locator("#pin_puk_masked").get_by_role("button", name="Göster", exact=True).click()
    stepup = page.locator("#pin_puk_stepup")
    expect(stepup).to_be_visible()
    assert sms_count(db) == sent_before, "the step-up sent an SMS unasked to a holder with a passkey"
    screenshot(page, "pin-puk-stepup")
    stepup.get_by_role("button", name="Geçiş anahtarımı kullan", exact=True).click()
    revealed = page.locator("#pin_puk_revealed")
    expect(revealed).to_be_visible()
    expect(revealed.locator("td.value[data-field=pin]")).to_have_text(SELIN["pin"])
    assert factor_uses(db, "passkey") == 2
    assert credentials_of(authenticator)[0]["signCount"] > made[0]["signCount"]


def test_app_enrolled_in_the_browser_logs_in_once_per_time_step(page, site, browser_errors, db, screenshot):
    # The replayed code is refused with a 422, which htmx swaps in and the browser logs as a failed resource.
    browser_errors.expect(r"status of 422 .*/login/sms")
    log_in(page, site)
    app_totp = enrol_app(page, site.clock)
    enrolment_code = app_totp.at(site.clock())

    log_out(page)
    screen = to_second_step(page, site)
    app_form = screen.locator("form:has(#totp_code)")
    app_form.locator("#totp_code").fill(enrolment_code)
    app_form.get_by_role("button", name="Onayla", exact=True).click()
    expect(page.locator("#totp_code")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#login_sms_confirm .alert-error")).to_contain_text("Bu kod az önce kullanıldı")
    assert page.url == site("/login/sms")
    screenshot(page, "replay-refused")

    site.clock.advance(TOTP_STEP_SECONDS)
    sent_before = sms_count(db)
    app_form = page.locator("#login_sms_confirm form:has(#totp_code)")
    app_form.locator("#totp_code").fill(app_totp.at(site.clock()))
    app_form.get_by_role("button", name="Onayla", exact=True).click()
    page.wait_for_url(url_path("/menu"))
    expect(page.locator("#menu_operations")).to_be_visible()
    assert sms_count(db) == sent_before, "an app login sent an SMS"
    assert factor_uses(db, "totp") == 1


def test_recovery_code_made_in_the_browser_logs_in_once(page, site, db, screenshot):
    log_in(page, site)
    codes = make_recovery_codes(page)
    assert len(set(codes)) == 10
    screenshot(page, "recovery-codes")
    page.get_by_role("link", name="Kodları kaydettim", exact=True).click()
    page.wait_for_url(url_path("/security"))
    expect(page.locator("#security_list")).to_contain_text("10 / 10 kod kullanılmadı")
    assert codes[0] not in page.content(), "the recovery codes are shown again"

    log_out(page)
    screen = to_second_step(page, site)
    folded = screen.locator("details.factor")
    expect(folded.locator("#recovery_code")).to_be_hidden()
    folded.get_by_text("Kurtarma kodu kullan", exact=True).click()
    folded.locator("#recovery_code").fill(codes[0])
    folded.get_by_role("button", name="Onayla", exact=True).click()
    page.wait_for_url(url_path("/menu"))
    expect(page.locator("#menu_operations")).to_be_visible()
    assert storage.factors.recovery_code_counts(db, holder_id(db))["unused"] == 9
    assert factor_uses(db, "recovery") == 1


def test_security_screen_in_english(page, site, screenshot):
    log_in(page, site)
    open_security(page)
    page.locator("ul.languages").get_by_role("link", name="English", exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    screen = page.locator("#security_list")
    expect(screen.locator("h1")).to_have_text("My security methods")
    expect(screen.get_by_role("heading", name="Passkeys", exact=True)).to_be_visible()
    expect(screen.get_by_role("heading", name="Recovery codes", exact=True)).to_be_visible()
    expect(screen.get_by_role("button", name="Add a passkey", exact=True)).to_be_visible()
    expect(screen.get_by_role("button", name="Add an authenticator app", exact=True)).to_be_visible()
    for turkish in ("Güvenlik Yöntemlerim", "Geçiş anahtarları", "Kurtarma kodları", "Doğrulama uygulaması ekle"):
        expect(screen).not_to_contain_text(turkish)
    screenshot(page, "security-en")


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_second_factor_screens_pass_axe(lang, page, site, authenticator, db):
    page.route(site(AXE_PATH), lambda route: route.fulfill(path=AXE, content_type="text/javascript"))
    page.set_viewport_size(DESKTOP)
    tour = Tour(page, lang, site(AXE_PATH))
    log_in(page, site)
    page.goto(site(f"/security?lang={lang}"))  # the language cookie keeps it for the rest of the walk
    expect(page.locator("html")).to_have_attribute("lang", lang)
    tour.check("security", "#security_list [data-passkey-run]")

    page.locator("#security_list form:has(input[value=start_totp]) button").click()
    expect(page.locator("#security_totp")).to_be_visible()
    tour.check("security app enrolment", "#security_totp button[type=submit]")
    seed = page.locator("#security_totp code.seed").inner_text().replace(" ", "")
    page.locator("#new_totp_code").fill(pyotp.TOTP(seed).at(site.clock()))
    page.locator("#security_totp button[type=submit]").click()
    expect(page.locator("#security_list .alert-info")).to_be_visible()

    page.locator("#security_list #name").fill("Dizüstü")
    page.locator("#security_list [data-passkey-run]").click()
    expect(page.locator("#security_list table.factor-table tbody tr")).to_have_count(1)
    page.locator("#security_list form:has(input[value=new_recovery_codes]) button").click()
    expect(page.locator("#security_recovery_codes")).to_be_visible()
    tour.check("security recovery codes", "#security_recovery_codes a")

    page.goto(site("/security"))
    tour.check("security with every method", "#security_list form:has(input[value=sms_off]) button")

    log_out(page)
    page.goto(site("/login"))
    wait_for_captcha(page)
    fill_login(page, SELIN["security_word"])
    page.locator("#login_form button[type=submit]").click()
    page.wait_for_url(url_path("/login/sms"))
    tour.check("login second step", "#login_sms_confirm [data-passkey-run]")
    page.locator("#login_sms_confirm [data-passkey-run]").click()
    page.wait_for_url(url_path("/menu"))

    page.goto(site("/pin-puk"))
    site.clock.advance(RECENT_CODE_SECONDS + 1)
    page.locator("#pin_puk_masked form[action='/pin-puk/reveal'] button").click()
    expect(page.locator("#pin_puk_stepup")).to_be_visible()
    tour.check("pin-puk stepup with every method", "#pin_puk_stepup [data-passkey-run]")
    tour.assert_clean()

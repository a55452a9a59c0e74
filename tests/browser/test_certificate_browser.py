"""Sertifika Durumu in a real browser (Debian's chromium through Playwright), in Turkish and English.

What only a browser shows: the menu link leads to the screen; suspend (with a fresh SMS code),
resume and revoke are htmx swaps of the same section (a marker set on `window` survives, so there
was no page load); a revoke without the box is refused in place with a 422; the CRL the portal
publishes follows each step; no state has a console error or a CSP violation (the `context` fixture
fails the test otherwise). Buttons are found by their form's data-action, not by their label, so the
English run works before the English catalogue has these strings. Screenshots go to test-artifacts/.
"""
from __future__ import annotations

import pytest
from cryptography import x509
from pages import log_in, marker, set_marker, url_path
from playwright.sync_api import expect

from kamusm import storage
from kamusm.demo import DEMO_HOLDERS
from tests.conftest import id_of, open_db, with_demo_certificates

pytestmark = pytest.mark.browser

SELIN = DEMO_HOLDERS[0]
RECENT_CODE_SECONDS = 300


@pytest.fixture
def app(app):
    """tests/conftest.py's app, plus the demo CA and the demo holders' certificates (`kamusm demo`)."""
    return with_demo_certificates(app)


def selin_serial(live_server) -> int:
    with open_db(live_server.app) as db:
        return int(storage.certificates.holder_certificates(db, id_of(db))[0]["serial_hex"], 16)


def crl_reason(page, live_server) -> x509.ReasonFlags | None | str:
    """Selin's entry on the CRL the portal serves: its reason, None without one, "absent" if not listed."""
    crl = x509.load_der_x509_crl(page.request.get(live_server("/crl.der")).body())
    entry = crl.get_revoked_certificate_by_serial_number(selin_serial(live_server))
    if entry is None:
        return "absent"
    return next((extension.value.reason for extension in entry.extensions), None)


def act(page, action: str):
    """Click the button of the form for `action` in the current section (an htmx post)."""
    page.locator(f"section.screen form[data-action={action}] button[type=submit]").click()


def expect_done(page, status: str):
    done = page.locator("#certificate_done")
    expect(done).to_be_visible()
    expect(done.locator(f"[data-status={status}]")).to_have_count(1)
    assert marker(page) == "still here", "the answer reloaded the page instead of being swapped in by htmx"
    return done


def walk_suspend_resume_revoke(page, live_server, screenshot, language: str) -> None:
    """Suspend with a fresh SMS code, resume, then revoke: first without the box, then with it."""
    live_server.clock.advance(RECENT_CODE_SECONDS + 1)
    set_marker(page)
    act(page, "suspend")
    stepup = page.locator("#certificate_stepup")
    expect(stepup).to_be_visible()
    assert marker(page) == "still here"
    stepup.locator("#code").fill(live_server.latest_sms_code())
    screenshot(page, f"stepup-{language}")
    stepup.locator("button[type=submit]").click()
    done = expect_done(page, "suspended")
    expect(done.locator("form[data-action=resume]")).to_have_count(1)
    expect(done.locator("form[data-action=suspend]")).to_have_count(0)
    assert crl_reason(page, live_server) == x509.ReasonFlags.certificate_hold
    screenshot(page, f"suspended-{language}")

    act(page, "resume")  # the code confirmed a moment ago is still recent
    expect_done(page, "valid")
    assert crl_reason(page, live_server) == "absent"

    act(page, "revoke")
    refused = page.locator("#certificate_list")
    expect(refused.locator(".alert-error")).to_be_visible()
    assert marker(page) == "still here", "the 422 answer reloaded the page instead of being swapped in"
    expect(refused.locator("[data-status=valid]")).to_have_count(1)
    screenshot(page, f"revoke-refused-{language}")

    form = refused.locator("form[data-action=revoke]")
    form.locator("select[name=reason]").select_option("keyCompromise")
    form.locator("input[name=confirm]").check()
    act(page, "revoke")
    done = expect_done(page, "revoked")
    expect(done.locator("form")).to_have_count(0)
    assert crl_reason(page, live_server) == x509.ReasonFlags.key_compromise
    screenshot(page, f"revoked-{language}")

    page.reload()
    expect(page.locator("#certificate_list [data-status=revoked]")).to_have_count(1)
    expect(page.locator("#certificate_list form")).to_have_count(0)


def test_suspend_resume_revoke_in_turkish(page, live_server, browser_errors, screenshot):
    browser_errors.expect(r"status of 422 .*/certificate:")
    log_in(page, live_server)
    page.locator("#menu_operations").get_by_role("link", name="Sertifika Durumu", exact=True).click()
    page.wait_for_url(url_path("/certificate"))
    screen = page.locator("#certificate_list")
    expect(screen.locator("h1")).to_have_text("Sertifika Durumu")
    expect(screen.locator("#certificate_warnings")).to_contain_text("İptal işlemi kalıcıdır")
    expect(screen.locator("[data-field=status]")).to_contain_text("Geçerli")
    expect(screen.locator("form[data-action=suspend] button")).to_have_text("Askıya Al")
    expect(screen.locator("form[data-action=revoke] button")).to_have_text("İptal Et")
    screenshot(page, "list-tr")
    walk_suspend_resume_revoke(page, live_server, screenshot, "tr")
    expect(page.locator("#certificate_list [data-field=status]")).to_contain_text("İptal Edildi")


def test_suspend_resume_revoke_in_english(page, live_server, browser_errors, screenshot):
    browser_errors.expect(r"status of 422 .*/certificate:")
    log_in(page, live_server)
    page.goto(live_server("/certificate?lang=en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#certificate_list")).to_be_visible()
    screenshot(page, "list-en")
    walk_suspend_resume_revoke(page, live_server, screenshot, "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")

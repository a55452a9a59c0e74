"""The e-mail change link in a real browser: opening it shows a page, only its button confirms.

What only a browser shows: the page the link opens (as a mail scanner or a link preview would)
changes nothing however long it stays open; the button's POST carries the CSRF token and htmx swaps
the answer into the same page; the link works on another device that is not logged in, where the
new address is masked, while the holder's own session sees it in full; a voided or used link
answers 410 with its reason, on opening and on a click from a page that was already open.
"""
from __future__ import annotations

import re

import pytest
from pages import log_in_in_language, marker, open_profile, set_marker
from playwright.sync_api import expect

from kamusm import storage
from kamusm.demo import DEMO_HOLDERS

SELIN = DEMO_HOLDERS[0]
FIRST_EMAIL = "selin.ilk@demo.edu.tr"
SECOND_EMAIL = "selin.ikinci@demo.edu.tr"
CONFIRM_BUTTON = "E-posta Adresini Onayla"
VOIDED = "Bu bağlantı, daha sonra istediğiniz yeni bir e-posta adresi değişikliğiyle geçersiz kaldı."
USED = "Bu bağlantı daha önce kullanıldı: e-posta adresi değişikliği zaten onaylandı."


def ask_for(page, address: str) -> None:
    """Kişisel Bilgiler, a new address, "E-postayı Değiştir": the answer is swapped in."""
    view = page.locator("#profile_view")
    view.locator("#email").fill(address)
    view.get_by_role("button", name="E-postayı Değiştir", exact=True).click()
    expect(page.locator("#profile_view .alert-info")).to_contain_text(f"{address} adresine bir doğrulama bağlantısı")


def link_to(db, live_server, address: str) -> str:
    body = next(message["body"] for message in storage.outbox.latest_outbox(db, "mail")
                if message["recipient"] == address)
    found = re.findall(rf"{re.escape(live_server.url)}/profile/email/[A-Za-z0-9_-]+", body)
    assert len(found) == 1, body
    return found[0]


def state(db) -> tuple:
    """What a confirmation writes: the holder's address, the tokens, the audit log."""
    return (storage.holders.find_holder(db, SELIN["identity"])["email"],
            db.execute("SELECT id_hash, used_at, voided_at FROM tokens ORDER BY rowid").fetchall(),
            db.execute("SELECT count(*) FROM audit").fetchone()[0])


@pytest.mark.browser
def test_the_link_page_confirms_only_on_its_button(page, browser, browser_errors, live_server, db, screenshot):
    # htmx 4 swaps 4xx answers; the browser logs each one as a failed resource, by design.
    browser_errors.expect(r"status of 410 .*/profile/email/")
    live_server.app.config["KAMUSM_PUBLIC_URL"] = live_server.url  # so the mailed links lead to this server
    log_in_in_language(page, live_server, "tr")
    open_profile(page, live_server, "tr")
    ask_for(page, FIRST_EMAIL)
    ask_for(page, SECOND_EMAIL)  # voids the first link
    first, second = link_to(db, live_server, FIRST_EMAIL), link_to(db, live_server, SECOND_EMAIL)

    # The holder's own browser: the address in full, and nothing happens until the button is pressed.
    opened = page.goto(second)
    assert opened.status == 200 and opened.headers["cache-control"] == "no-store"
    own = page.locator("#profile_email_confirm")
    expect(own).to_contain_text(SECOND_EMAIL)
    expect(own.get_by_role("button", name=CONFIRM_BUTTON, exact=True)).to_be_visible()
    screenshot(page, "own-session")

    # Another device, not logged in: the page a mail scanner would see.
    elsewhere = browser.new_context(locale="tr-TR")
    elsewhere.on("page", browser_errors.watch)
    other = elsewhere.new_page()
    try:
        refused = other.goto(first)
        assert refused.status == 410
        expect(other.locator("#profile_email_invalid .alert-error")).to_contain_text(VOIDED)
        expect(other.get_by_role("button", name=CONFIRM_BUTTON)).to_have_count(0)
        screenshot(other, "voided")

        before = state(db)
        opened = other.goto(second)
        assert opened.status == 200 and opened.headers["cache-control"] == "no-store"
        screen = other.locator("#profile_email_confirm")
        expect(screen).to_contain_text("s*****@demo.edu.tr")
        assert SECOND_EMAIL not in other.content()
        other.wait_for_load_state("networkidle")
        assert state(db) == before, "opening the link wrote to the database"
        screenshot(other, "confirm-page")

        set_marker(other)
        with other.expect_response(lambda response: response.request.method == "POST"
                                   and response.url == second) as answer:
            screen.get_by_role("button", name=CONFIRM_BUTTON, exact=True).click()
        assert answer.value.status == 200
        assert "csrf_token=" in (answer.value.request.post_data or "")
        confirmed = other.locator("#profile_email_confirmed")
        expect(confirmed.locator(".alert-info")).to_have_text("Yeni e-posta adresiniz kaydedildi.")
        expect(other.locator("#profile_email_confirm")).to_have_count(0)
        assert marker(other) == "still here", "the answer came with a page load, not an htmx swap"
        assert storage.holders.find_holder(db, SELIN["identity"])["email"] == SECOND_EMAIL
        screenshot(other, "confirmed")

        again = other.goto(second)
        assert again.status == 410
        expect(other.locator("#profile_email_invalid .alert-error")).to_contain_text(USED)
    finally:
        elsewhere.close()

    # The holder's page was still open on the used link: its button now gets the reason, swapped in.
    set_marker(page)
    page.locator("#profile_email_confirm").get_by_role("button", name=CONFIRM_BUTTON, exact=True).click()
    expect(page.locator("#profile_email_invalid .alert-error")).to_contain_text(USED)
    assert marker(page) == "still here"
    screenshot(page, "used")
    outcomes = [row["outcome"] for row in storage.audit_log.audit_entries(db) if row["event"] == "profile.email"]
    assert outcomes.count("confirmed") == 1 and outcomes[-1] == "refused"

"""Son İşlemlerim in a real browser, in Turkish and English: reached from the menu, the holder's login and
PIN/PUK reveal listed newest first with their address, and the screen passes the accessibility tour."""
from __future__ import annotations

import pytest
from pages import LANGUAGES, log_in_then_switch_language
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LABELS = {"tr": ("Son İşlemlerim", "PIN/PUK görüntülendi", "Giriş yapıldı"),
          "en": ("My recent activity", "PIN/PUK shown", "Logged in")}


@LANGUAGES
def test_recent_activity_lists_the_holders_own_events(lang, tour, page, live_server):
    log_in_then_switch_language(page, live_server, lang)
    title, revealed, logged_in = LABELS[lang]
    page.locator("#menu_operations a", has_text="PIN/PUK").first.click()
    page.locator("#pin_puk_masked button[type=submit]").first.click()
    expect(page.locator("#pin_puk_revealed")).to_be_visible()
    page.goto(live_server("/menu"))
    page.get_by_role("link", name=title).click()
    rows = page.locator("#activity_list tbody tr")
    expect(rows.first).to_contain_text(revealed)
    expect(page.locator("#activity_list")).to_contain_text(logged_in)
    expect(rows.first).to_contain_text("127.0.0.1")
    tour.check("activity", "#activity_list a")
    tour.assert_clean()

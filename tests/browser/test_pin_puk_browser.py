"""PIN ve PUK Bilgileri in a real browser (Debian's chromium through Playwright).

What only a browser shows: the menu link leads to the screen; "Göster", the step-up code and
"Parolalarımı Sil" (with its own step-up code after five minutes) are htmx swaps of the same
section (a marker set on `window` survives, so there was no page load); "Parolalarımı Kaydet"
really makes the browser download a file; the English
catalogue covers the screen; no state has a console error or a CSP violation (the `context`
fixture fails the test otherwise). Screenshots of every state go to test-artifacts/.
"""
from __future__ import annotations

import pytest
from pages import log_in, marker, set_marker, url_path
from playwright.sync_api import expect

from kamusm import storage
from kamusm.demo import DEMO_HOLDERS

SELIN = DEMO_HOLDERS[0]
KEMAL = DEMO_HOLDERS[1]
RECENT_CODE_SECONDS = 300
WARNINGS = ("Önemli Uyarı", "SERTİFİKANIZ KALICI OLARAK KİLİTLENECEK", "ÜCRET KARŞILIĞINDA")


def open_pin_puk(page) -> None:
    """From the menu, the way a holder goes: the "PIN/PUK Bilgisi" button."""
    page.locator("#menu_operations").get_by_role("link", name="PIN/PUK Bilgisi", exact=True).click()
    page.wait_for_url(url_path("/pin-puk"))
    expect(page.locator("#pin_puk_masked")).to_be_visible()


def reveal(page, button_name: str = "Göster"):
    """Click "Göster" on the masked screen; returns the section it was swapped for."""
    set_marker(page)
    page.locator("#pin_puk_masked").get_by_role("button", name=button_name, exact=True).click()
    revealed = page.locator("#pin_puk_revealed")
    expect(revealed).to_be_visible()
    expect(page.locator("#pin_puk_masked")).to_have_count(0)
    assert marker(page) == "still here", "the reveal reloaded the page instead of being swapped in by htmx"
    return revealed


def value(section, field: str):
    return section.locator(f"td.value[data-field={field}]")


def assert_not_in_page(page, *secrets: str) -> None:
    html = page.content()
    for secret in secrets:
        assert secret not in html, f"{secret} is in the page HTML"


@pytest.mark.browser
def test_masked_screen_shows_the_warnings_and_no_secret(page, live_server, screenshot):
    log_in(page, live_server)
    open_pin_puk(page)
    screen = page.locator("#pin_puk_masked")
    expect(screen.locator("h1")).to_have_text("PIN ve PUK Bilgileri")
    for warning in WARNINGS:
        expect(screen.locator("ul.warnings")).to_contain_text(warning)
    expect(screen.locator("ul.warnings strong", has_text="SERTİFİKANIZ KALICI OLARAK KİLİTLENECEK")).to_be_visible()
    table = screen.locator("table.secrets")
    expect(table.get_by_role("cell", name="14*****", exact=True)).to_be_visible()
    expect(value(table, "pin")).to_have_text("0*****")
    expect(value(table, "puk")).to_have_count(0)  # a 2014 card: unlocked online, no PUK row
    expect(screen.get_by_role("button", name="Göster", exact=True)).to_be_visible()
    expect(screen.get_by_role("button", name="Parolalarımı Sil", exact=True)).to_be_visible()
    assert_not_in_page(page, SELIN["pin"], SELIN["card_serial"], SELIN["puk"])
    screenshot(page, "masked")


@pytest.mark.browser
def test_reveal_right_after_login_swaps_in_the_secrets(page, live_server, screenshot):
    log_in(page, live_server)
    open_pin_puk(page)
    revealed = reveal(page)
    expect(value(revealed, "pin")).to_have_text(SELIN["pin"])
    expect(revealed.get_by_role("cell", name=SELIN["card_serial"], exact=True)).to_be_visible()
    expect(revealed.get_by_role("cell", name="PUK", exact=True)).to_have_count(0)
    expect(value(revealed, "puk")).to_have_count(0)
    assert_not_in_page(page, SELIN["puk"])
    for warning in WARNINGS:
        expect(revealed.locator("ul.warnings")).to_contain_text(warning)
    assert page.url == live_server("/pin-puk")
    screenshot(page, "revealed")


@pytest.mark.browser
def test_reveal_after_five_minutes_asks_for_a_fresh_sms_code(page, live_server, db, screenshot):
    log_in(page, live_server)
    open_pin_puk(page)
    live_server.clock.advance(RECENT_CODE_SECONDS + 1)
    set_marker(page)
    page.locator("#pin_puk_masked").get_by_role("button", name="Göster", exact=True).click()

    stepup = page.locator("#pin_puk_stepup")
    expect(stepup).to_be_visible()
    expect(stepup).to_contain_text("yeni bir SMS Onay Kodu gönderildi")
    expect(page.locator("#pin_puk_masked")).to_have_count(0)
    assert marker(page) == "still here", "the step-up screen came with a page load, not an htmx swap"
    assert_not_in_page(page, SELIN["pin"], SELIN["card_serial"])
    assert len(storage.outbox.latest_outbox(db, "sms")) == 2, "no new SMS was sent for the step-up"
    code = live_server.latest_sms_code()
    screenshot(page, "stepup")

    stepup.locator("#code").fill(code)
    stepup.get_by_role("button", name="Gönder", exact=True).click()
    revealed = page.locator("#pin_puk_revealed")
    expect(revealed).to_be_visible()
    expect(value(revealed, "pin")).to_have_text(SELIN["pin"])
    expect(revealed.get_by_role("cell", name=SELIN["card_serial"], exact=True)).to_be_visible()
    assert marker(page) == "still here", "the step-up answer reloaded the page instead of being swapped in"
    screenshot(page, "revealed")


@pytest.mark.browser
def test_2009_card_shows_its_puk(page, live_server, screenshot):
    log_in(page, live_server, KEMAL["identity"], KEMAL["security_word"])
    open_pin_puk(page)
    masked = page.locator("#pin_puk_masked")
    expect(value(masked, "puk")).to_have_text("0*****")
    assert_not_in_page(page, KEMAL["pin"], KEMAL["puk"], KEMAL["card_serial"])
    revealed = reveal(page)
    expect(value(revealed, "pin")).to_have_text(KEMAL["pin"])
    expect(value(revealed, "puk")).to_have_text(KEMAL["puk"])
    expect(revealed.get_by_role("cell", name=KEMAL["card_serial"], exact=True)).to_be_visible()
    screenshot(page, "revealed-with-puk")


@pytest.mark.browser
def test_save_downloads_a_text_file_with_the_pin(page, live_server):
    log_in(page, live_server)
    open_pin_puk(page)
    revealed = reveal(page)
    with page.expect_download() as download_info:
        revealed.get_by_role("button", name="Parolalarımı Kaydet", exact=True).click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".txt"), download.suggested_filename
    with open(download.path(), encoding="utf-8") as saved:
        text = saved.read()
    assert SELIN["pin"] in text and SELIN["card_serial"] in text
    assert SELIN["puk"] not in text  # a 2014 card's PUK is never shown, nor saved
    expect(page.locator("#pin_puk_revealed")).to_be_visible()  # the download left the screen in place


@pytest.mark.browser
def test_delete_needs_the_box_then_is_for_good(page, live_server, browser_errors, screenshot):
    # htmx 4 swaps 4xx answers: the browser logs the 422 as a failed resource, by design.
    browser_errors.expect(r"status of 422 .*/pin-puk/delete:")
    log_in(page, live_server)
    open_pin_puk(page)
    set_marker(page)

    page.locator("#pin_puk_masked").get_by_role("button", name="Parolalarımı Sil", exact=True).click()
    masked = page.locator("#pin_puk_masked")
    expect(masked.locator(".alert-error")).to_contain_text("kutuyu işaretleyerek")
    assert marker(page) == "still here", "the 422 answer reloaded the page instead of being swapped in"
    assert page.url == live_server("/pin-puk")
    expect(value(masked, "pin")).to_have_text("0*****")  # nothing was deleted
    screenshot(page, "not-confirmed")

    masked.locator("#confirm").check()
    masked.get_by_role("button", name="Parolalarımı Sil", exact=True).click()
    deleted = page.locator("#pin_puk_deleted")
    expect(deleted).to_be_visible()
    expect(deleted).to_contain_text("kalıcı olarak silindi")
    expect(page.locator("#pin_puk_masked")).to_have_count(0)
    expect(page.get_by_role("button", name="Göster", exact=True)).to_have_count(0)
    assert marker(page) == "still here", "the delete reloaded the page instead of being swapped in"
    screenshot(page, "deleted")

    page.reload()
    expect(page.locator("#pin_puk_deleted")).to_contain_text("kalıcı olarak silindi")
    expect(page.locator("#pin_puk_masked")).to_have_count(0)
    expect(page.get_by_role("button", name="Göster", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Parolalarımı Sil", exact=True)).to_have_count(0)
    assert_not_in_page(page, SELIN["pin"], SELIN["card_serial"])


@pytest.mark.browser
def test_delete_after_five_minutes_asks_for_a_fresh_sms_code(page, live_server, screenshot):
    log_in(page, live_server)
    open_pin_puk(page)
    live_server.clock.advance(RECENT_CODE_SECONDS + 1)
    set_marker(page)
    masked = page.locator("#pin_puk_masked")
    masked.locator("#confirm").check()
    masked.get_by_role("button", name="Parolalarımı Sil", exact=True).click()

    stepup = page.locator("#pin_puk_stepup")
    expect(stepup).to_be_visible()
    expect(stepup).to_contain_text("silmek için kimliğinizi yeniden doğrulayınız")
    expect(stepup).to_contain_text("Cep telefonunuza yeni bir SMS Onay Kodu gönderildi.")
    expect(stepup.locator("input[name=confirm]")).to_have_value("yes")  # the ticked box goes along
    expect(page.locator("#pin_puk_masked")).to_have_count(0)
    assert marker(page) == "still here", "the step-up screen came with a page load, not an htmx swap"
    code = live_server.latest_sms_code()
    screenshot(page, "delete-stepup")

    stepup.locator("#code").fill(code)
    stepup.get_by_role("button", name="Parolalarımı Sil", exact=True).click()
    deleted = page.locator("#pin_puk_deleted")
    expect(deleted).to_be_visible()
    expect(deleted).to_contain_text("kalıcı olarak silindi")
    assert marker(page) == "still here", "the delete reloaded the page instead of being swapped in"
    screenshot(page, "deleted-after-stepup")


@pytest.mark.browser
def test_stale_pin_notice(page, live_server, db, screenshot):
    storage.cards.mark_pin_replaced(db, SELIN["card_serial"], live_server.clock())
    log_in(page, live_server)
    open_pin_puk(page)
    notice = page.locator("#pin_puk_masked table.secrets .alert-info")
    expect(notice).to_contain_text("artık geçerli değildir")
    expect(notice).to_contain_text("Kilit Çözme")
    screenshot(page, "stale-pin")


@pytest.mark.browser
def test_english_screen_and_reveal(page, live_server, screenshot):
    log_in(page, live_server)
    page.goto(live_server("/pin-puk?lang=en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    masked = page.locator("#pin_puk_masked")
    expect(masked).to_be_visible()
    expect(masked.get_by_role("button", name="Show", exact=True)).to_be_visible()
    expect(masked.get_by_role("button", name="Delete my PIN and PUK", exact=True)).to_be_visible()
    expect(masked.get_by_role("cell", name="Card serial number", exact=True)).to_be_visible()
    expect(masked.locator("ul.warnings")).to_contain_text("Delete my PIN and PUK")
    for turkish in ("Göster", "Parolalarımı Sil", "Kart Seri Numarası", "Önemli Uyarı"):
        expect(masked).not_to_contain_text(turkish)
    screenshot(page, "masked-en")

    revealed = reveal(page, "Show")
    expect(value(revealed, "pin")).to_have_text(SELIN["pin"])
    expect(revealed.get_by_role("button", name="Save my PIN and PUK", exact=True)).to_be_visible()
    expect(revealed.get_by_role("button", name="Delete my PIN and PUK", exact=True)).to_be_visible()
    expect(revealed).not_to_contain_text("Parolalarımı Kaydet")
    screenshot(page, "revealed-en")

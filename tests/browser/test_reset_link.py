"""A mailed one-time link that sets a new security word, in a real browser.

The link is issued server-side (as the forgot mail does); the browser opens it, a too-short word is
refused on the same screen (a 422 swapped in by htmx: a marker set on `window` survives), a good word
leads to the done screen, the new word logs in through the whole flow, and the spent link shows
"Bağlantı geçersiz".
"""
from __future__ import annotations

import pytest
from pages import log_in, marker, set_marker, url_path
from playwright.sync_api import expect

from kamusm import reset
from kamusm.demo import DEMO_HOLDERS
from tests.conftest import id_of

SELIN = DEMO_HOLDERS[0]
NEW_WORD = "mavi-gokyuzu-kumsal"
TOO_SHORT = "kisa-soz"


@pytest.mark.browser
def test_reset_link_sets_a_new_word_once(page, live_server, db, browser_errors, screenshot):
    # htmx 4 swaps 4xx answers; the browser logs each one as a failed resource, by design. The spent
    # link's page is a 404 too.
    browser_errors.expect(r"status of 422 .*/reset/")
    browser_errors.expect(r"status of 404 .*/reset/")
    token = reset.issue_link_token(db, id_of(db), reset.PURPOSE_RESET, live_server.clock())
    path = f"/reset/{token}"

    page.goto(live_server(path))
    form = page.locator("#reset_form")
    expect(form.locator("h1")).to_have_text("Yeni Güvenlik Sözcüğü")
    screenshot(page, "form")
    set_marker(page)

    with page.expect_response(lambda response: response.request.method == "POST"
                              and url_path(path).match(response.url)) as answer:
        form.locator("#security_word").fill(TOO_SHORT)
        form.locator("#security_word_confirm").fill(TOO_SHORT)
        form.get_by_role("button", name="Kaydet", exact=True).click()
    assert answer.value.status == 422
    expect(page.locator("#security_word-error")).to_contain_text("en az 10 karakter")
    expect(page.locator("#security_word")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#security_word")).to_have_value("")  # a password is never sent back
    assert marker(page) == "still here", "the 422 answer reloaded the page instead of being swapped in"
    assert page.url == live_server(path)
    screenshot(page, "too-short")

    page.locator("#security_word").fill(NEW_WORD)
    page.locator("#security_word_confirm").fill(NEW_WORD)
    page.locator("#reset_form").get_by_role("button", name="Kaydet", exact=True).click()
    done = page.locator("#reset_done")
    expect(done).to_be_visible()
    expect(done.locator("h1")).to_have_text("Güvenlik sözcüğü kaydedildi")
    expect(done).to_contain_text("Yeni sözcüğünüzle giriş yapabilirsiniz")
    expect(page.locator("#reset_form")).to_have_count(0)
    assert marker(page) == "still here", "the done screen came with a page load, not an htmx swap"
    screenshot(page, "done")

    log_in(page, live_server, SELIN["identity"], NEW_WORD)
    expect(page.locator("#menu_operations .greeting")).to_have_text("Sayın S***** Y*****")
    screenshot(page, "menu")

    page.goto(live_server(path))
    invalid = page.locator("#reset_invalid")
    expect(invalid.locator("h1")).to_have_text("Bağlantı geçersiz")
    expect(invalid).to_contain_text("Bu bağlantı kullanılmış")
    expect(page.locator("#reset_form")).to_have_count(0)
    screenshot(page, "spent")

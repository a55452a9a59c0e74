"""Kartımı kaybettim in a real browser: from the login page to /lost, a wrong code and then the printed one,
in Turkish and in English; a new code made on /security, printed (only the sheet goes on paper) and then
used; and the new screens through axe-core and the keyboard (tests/browser/test_accessibility_browser.py)."""
from __future__ import annotations

import pytest
from pages import (
    AXE,
    AXE_PATH,
    DESKTOP,
    Tour,
    click_plain_form_button,
    log_in,
    marker,
    set_marker,
    url_path,
    wait_for_captcha,
)
from playwright.sync_api import expect

from kamusm import storage
from kamusm.demo import DEMO_HOLDERS
from tests.conftest import CAPTCHA_ANSWER, with_demo_certificates

pytestmark = pytest.mark.browser

SELIN, KEMAL = DEMO_HOLDERS[0], DEMO_HOLDERS[1]
SAME_ANSWER_TR = "Bilgiler doğruysa sertifikanız şimdi askıya alındı"


@pytest.fixture
def app(app):
    """tests/conftest.py's app, plus the demo CA and the demo holders' certificates (`kamusm demo`)."""
    return with_demo_certificates(app)


def certificate_status(db, holder: dict) -> str:
    holder_id = storage.holders.find_holder(db, holder["identity"])["id"]
    return storage.certificates.holder_certificates(db, holder_id)[-1]["status"]


def fill_lost(page, identity: str, code: str) -> None:
    wait_for_captcha(page)
    form = page.locator("#lost_form")
    form.locator("#identity").fill(identity)
    form.locator("#lost_code").fill(code)
    form.locator("#captcha").fill(CAPTCHA_ANSWER)


def test_lost_card_suspends_in_turkish(page, live_server, db, browser_errors, screenshot):
    browser_errors.expect(r"status of 422 .*/lost")  # htmx 4 swaps the 4xx answer; chromium logs it
    page.goto(live_server("/login"))
    page.get_by_role("link", name="Kartımı kaybettim", exact=True).click()
    page.wait_for_url(url_path("/lost"))
    expect(page.locator("#lost_form h1")).to_have_text("Kartımı Kaybettim: Sertifikamı Askıya Al")
    set_marker(page)
    screenshot(page, "form")

    fill_lost(page, SELIN["identity"], "")
    with page.expect_response(lambda response: response.request.method == "POST"
                              and url_path("/lost").match(response.url)) as answer:
        page.get_by_role("button", name="Askıya Al", exact=True).click()
    assert answer.value.status == 422
    expect(page.locator("#lost_code-error")).to_have_text("Kayıp kart kodunuzu giriniz.")
    assert marker(page) == "still here", "the 422 answer reloaded the page instead of being swapped in"

    fill_lost(page, SELIN["identity"], "0000-0000-0000-0000")
    page.get_by_role("button", name="Askıya Al", exact=True).click()
    done = page.locator("#lost_done")
    expect(done).to_contain_text(SAME_ANSWER_TR)
    assert certificate_status(db, SELIN) == "valid"
    wrong_answer = done.inner_text()

    page.goto(live_server("/lost"))
    fill_lost(page, SELIN["identity"], SELIN["lost_code"].lower().replace("-", " "))
    page.get_by_role("button", name="Askıya Al", exact=True).click()
    expect(page.locator("#lost_done")).to_contain_text(SAME_ANSWER_TR)
    assert page.locator("#lost_done").inner_text() == wrong_answer
    assert certificate_status(db, SELIN) == "suspended"
    screenshot(page, "done")
    page.goto(live_server("/demo/phone"))
    expect(page.locator("body")).to_contain_text("kayıp kart kodunuzla 1 sertifikanız askıya alındı")


def test_lost_card_suspends_in_english(page, live_server, db):
    page.goto(live_server("/lost?lang=en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("label[for=identity]")).to_have_text("ID number")
    fill_lost(page, KEMAL["identity"], KEMAL["lost_code"])
    page.get_by_role("button", name="Suspend", exact=True).click()
    expect(page.locator("#lost_done")).to_be_visible()
    expect(page.get_by_role("link", name="Back to login", exact=True)).to_be_visible()
    assert certificate_status(db, KEMAL) == "suspended" and certificate_status(db, SELIN) == "valid"


def test_a_new_code_from_security_prints_and_works(page, live_server, db, screenshot):
    log_in(page, live_server)
    page.goto(live_server("/security"))
    listing = page.locator("#security_list")
    expect(listing).to_contain_text("Kayıp kart kodu")
    set_marker(page)
    listing.get_by_role("button", name="Yeni kayıp kart kodu oluştur", exact=True).click()
    sheet = page.locator("#security_lost_code")
    expect(sheet).to_be_visible()
    assert marker(page) == "still here", "the code screen came with a page load, not an htmx swap"
    code = sheet.locator("[data-lost-code]").inner_text()
    assert len(code) == 19 and code != SELIN["lost_code"]
    screenshot(page, "new-code")

    page.evaluate("() => { window.print = () => { window.__printed = (window.__printed || 0) + 1; }; }")
    sheet.get_by_role("button", name="Yazdır", exact=True).click()
    assert page.evaluate("window.__printed") == 1  # print.js ran from the swapped-in partial, once
    page.emulate_media(media="print")
    expect(sheet.locator("[data-lost-code]")).to_be_visible()
    expect(sheet.locator("h1")).to_be_hidden()
    expect(page.locator(".site-header")).to_be_hidden()
    page.emulate_media(media="screen")
    expect(sheet.locator("h1")).to_be_visible()

    click_plain_form_button(page, page.locator("form.logout button[type=submit]"), "/logout")
    page.goto(live_server("/lost"))
    fill_lost(page, SELIN["identity"], SELIN["lost_code"])  # the old code: nothing happens
    page.get_by_role("button", name="Askıya Al", exact=True).click()
    expect(page.locator("#lost_done")).to_contain_text(SAME_ANSWER_TR)
    assert certificate_status(db, SELIN) == "valid"
    page.goto(live_server("/lost"))
    fill_lost(page, SELIN["identity"], code)
    page.get_by_role("button", name="Askıya Al", exact=True).click()
    expect(page.locator("#lost_done")).to_contain_text(SAME_ANSWER_TR)
    assert certificate_status(db, SELIN) == "suspended"


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_lost_card_screens_pass_axe(lang, page, live_server, browser_errors):
    browser_errors.expect(r"status of 422 .*/lost")
    page.route(live_server(AXE_PATH), lambda route: route.fulfill(path=AXE, content_type="text/javascript"))
    page.set_viewport_size(DESKTOP)
    tour = Tour(page, lang, live_server(AXE_PATH))
    log_in(page, live_server)
    page.goto(live_server(f"/security?lang={lang}"))  # the language cookie keeps it for the rest of the walk
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.locator("#security_list form:has(input[value=new_lost_code]) button").click()
    expect(page.locator("#security_lost_code")).to_be_visible()
    tour.check("lost-card code sheet", "#security_lost_code [data-print]")
    page.goto(live_server("/lost"))
    wait_for_captcha(page)
    tour.check("lost form", "#lost_form button[type=submit]")
    page.locator("#lost_form button[type=submit]").click()
    expect(page.locator("#lost_code-error")).to_be_visible()
    tour.field_error("lost form with errors", "#lost_code")
    tour.check("lost form with errors", "#lost_form button[type=submit]")
    fill_lost(page, SELIN["identity"], "0000-0000-0000-0000")
    page.locator("#lost_form button[type=submit]").click()
    expect(page.locator("#lost_done")).to_be_visible()
    tour.check("lost done", "#lost_done a")
    tour.assert_clean()

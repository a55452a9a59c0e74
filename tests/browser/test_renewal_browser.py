"""Yenileme Talebi in a real browser, in Turkish and English: the holder files it on /certificate (an htmx post
answered with a redirect), sees "talep edildi" with the date, and an operator finds it in the console and marks
it done. Elements are found by data attributes, so the English run works before the catalogue has the strings.
"""
from __future__ import annotations

import pytest
from pages import OperatorConsole, log_in, url_path
from playwright.sync_api import expect

from kamusm import storage
from kamusm.reminders import DAY_SECONDS
from tests.conftest import id_of, open_db, with_demo_certificates

pytestmark = pytest.mark.browser


@pytest.fixture
def app(app):
    return with_demo_certificates(app)


def near_the_end(live_server) -> int:
    """Move the server's clock to 30 days before Selin's certificate ends; return the certificate's id."""
    with open_db(live_server.app) as db:
        row = storage.certificates.holder_certificates(db, id_of(db))[-1]
    live_server.clock.now = row["not_after"] - 30 * DAY_SECONDS
    return row["id"]


def open_requests(live_server) -> list[dict]:
    with open_db(live_server.app) as db:
        return [row for row in storage.reminders.holder_renewal_requests(db, id_of(db)) if row["state"] == "open"]


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_file_a_renewal_request_and_close_it_in_the_console(page, live_server, screenshot, lang):
    certificate_id = near_the_end(live_server)
    log_in(page, live_server)
    page.goto(live_server(f"/certificate?lang={lang}"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    row = page.locator(f"#certificate_list [data-certificate='{certificate_id}']")
    button = row.locator("form[data-action=renewal] button[type=submit]")
    if lang == "tr":
        expect(button).to_have_text("Yenileme Talebi")
    screenshot(page, f"renewal-offered-{lang}")
    button.click()
    page.wait_for_url(url_path("/certificate"))
    expect(page.locator(f"[data-certificate='{certificate_id}'] [data-field=renewal]")).to_be_visible()
    expect(page.locator("form[data-action=renewal]")).to_have_count(0)
    if lang == "tr":
        expect(page.locator("[data-field=renewal]")).to_contain_text("Yenileme talep edildi:")
    screenshot(page, f"renewal-filed-{lang}")
    (filed,) = open_requests(live_server)

    console = OperatorConsole(page, live_server, lang, f"yenileme.{lang}", "operator")
    console.enrol()
    console.log_in()
    page.goto(live_server(f"/admin/renewals?lang={lang}"))
    listed = page.locator(f"#admin_renewals_list [data-renewal='{filed['id']}']")
    expect(listed).to_contain_text("Selin Yılmaz")
    screenshot(page, f"renewal-console-{lang}")
    listed.locator("button[type=submit]").click()
    page.wait_for_url(url_path("/admin/renewals"))
    expect(page.locator("#admin_renewals_list [data-renewal]")).to_have_count(0)
    assert open_requests(live_server) == []

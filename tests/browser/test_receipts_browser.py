"""Signed receipts in a real browser, Turkish and English: after a suspend on /certificate the done screen offers
the receipt, the browser downloads it, and `openssl cms -verify` accepts it against the demo CA; after a PIN/PUK
delete the screen and "Son İşlemlerim" offer theirs."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pages import log_in, url_path
from playwright.sync_api import expect

from kamusm import ca
from tests.conftest import with_demo_certificates

pytestmark = pytest.mark.browser

LANGUAGES = pytest.mark.parametrize("lang, download_label, status_line", [
    ("tr", "İmzalı işlem makbuzunu indir", "Yeni durum: Askıda"),
    ("en", "Download the signed receipt", "New status: Suspended"),
])


@pytest.fixture
def app(app):
    return with_demo_certificates(app)


def verified_text(download, live_server) -> str:
    checked = subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in", download.path(),
                              "-CAfile", str(Path(live_server.app.instance_path) / ca.CA_CERT_FILE)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    return checked.stdout


@LANGUAGES
def test_a_suspend_offers_a_receipt_that_verifies(lang, download_label, status_line, page, live_server,
                                                  screenshot):
    log_in(page, live_server)
    page.goto(live_server(f"/certificate?lang={lang}"))
    page.locator("section.screen form[data-action=suspend] button[type=submit]").click()
    done = page.locator("#certificate_done")
    expect(done).to_be_visible()
    link = done.get_by_role("link", name=download_label, exact=True)
    expect(link).to_be_visible()
    screenshot(page, f"receipt-offered-{lang}")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("makbuz-") and download.suggested_filename.endswith(".p7m")
    assert status_line in verified_text(download, live_server)


@LANGUAGES
def test_a_vault_delete_offers_its_receipt_there_and_on_activity(lang, download_label, status_line, page,
                                                                 live_server):
    log_in(page, live_server)
    page.goto(live_server(f"/pin-puk?lang={lang}"))
    page.locator("input[name=confirm]").check()
    page.locator("form[action='/pin-puk/delete'] button[type=submit]").click()
    expect(page.locator("#pin_puk_deleted")).to_be_visible()
    link = page.locator("#pin_puk_deleted").get_by_role("link", name=download_label, exact=True)
    with page.expect_download() as download_info:
        link.click()
    assert "PIN/PUK" in verified_text(download_info.value, live_server)
    page.goto(live_server("/activity"))
    page.wait_for_url(url_path("/activity"))
    receipts = page.locator("#activity_list a[download]")
    expect(receipts).to_have_count(1)
    with page.expect_download() as download_info:
        receipts.first.click()
    assert "PIN/PUK" in verified_text(download_info.value, live_server)

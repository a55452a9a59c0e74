"""The institution console (/admin) in a real browser (Debian's chromium through Playwright), in Turkish and English.

An operator enrols from the one-time link (password twice and the code pyotp computes from the seed on
the screen), logs in with name, password and app code, and walks the console; every screen goes through
the accessibility Tour (axe-core at a desktop's and a phone's width, no sideways scroll, a visible focus
ring on the way to the main action). An operator locks and unlocks a holder, the audit log downloads as
CSV, and 15 idle minutes on the server's clock end the console session. No screen may log a console
error or a CSP violation (the `context` fixture fails the test otherwise).

The texts looked for are the portal's own msgids, translated through the app, so a missing English
msgstr fails here as Turkish text on an English screen.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pyotp
import pytest
from flask_babel import force_locale, gettext

from kamusm import operators, storage
from kamusm.demo import DEMO_HOLDERS
from tests.conftest import open_db

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the conftest skips or fails with the reason
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

# Imported under their own names, as pytest loads a test folder without __init__.py.
from test_accessibility_browser import AXE, AXE_PATH, DESKTOP, LANGUAGES, Tour, with_lang  # noqa: E402
from test_login_flow import url_path  # noqa: E402

pytestmark = pytest.mark.browser

SELIN = DEMO_HOLDERS[0]
PASSWORD = "Kurum-Konsolu-2026!"
TOTP_STEP_SECONDS = 30
IDLE_SECONDS = 15 * 60
LOGIN_BUTTON = "#admin_login_form button[type=submit]"
ENROL_BUTTON = "#admin_enrol_form button[type=submit]"
FILTER_BUTTON = "#admin_audit_list .audit-filters button[type=submit]:not([formaction])"


class Console:
    """One operator in the browser: the app's codes at the live server's clock, and the texts in `lang`."""

    def __init__(self, page, live_server, lang: str, name: str, role: str):
        self.page, self.live_server, self.lang, self.name = page, live_server, lang, name
        self.totp: pyotp.TOTP | None = None
        with open_db(live_server.app) as db:
            self.token = operators.add(db, name, role, live_server.clock())

    def text(self, msgid: str, **values) -> str:
        app = self.live_server.app
        with app.test_request_context(), force_locale(self.lang):
            translated = gettext(msgid, **values)
        if self.lang != "tr":
            with app.test_request_context(), force_locale("tr"):
                assert translated != gettext(msgid, **values), f"no {self.lang} msgstr for {msgid!r}"
        return translated

    def pattern(self, msgid: str, name: str, value: str | int, wildcard: str) -> re.Pattern:
        """The translated text as a regular expression, with `wildcard` where the value `name` goes."""
        text = re.escape(self.text(msgid, **{name: value}))
        return re.compile("^" + text.replace(re.escape(str(value)), wildcard) + "$")

    def code(self) -> str:
        return self.totp.at(self.live_server.clock())

    def open_enrolment(self) -> None:
        self.page.goto(self.live_server(with_lang(f"/admin/enrol/{self.token}", self.lang)))
        expect(self.page.locator("html")).to_have_attribute("lang", self.lang)
        seed = self.page.locator("#admin_enrol_form code.seed").inner_text().replace(" ", "")
        self.totp = pyotp.TOTP(seed)

    def fill_enrolment(self, password: str) -> None:
        page = self.page
        page.locator("#password").fill(password)
        page.locator("#password_confirm").fill(password)
        page.locator("#totp_code").fill(self.code())
        page.locator(ENROL_BUTTON).click()

    def enrol(self) -> None:
        self.open_enrolment()
        self.fill_enrolment(PASSWORD)
        expect(self.page.locator("#admin_enrol_done")).to_be_visible()

    def fill_login(self, password: str = PASSWORD) -> None:
        self.live_server.clock.advance(TOTP_STEP_SECONDS)  # a new time step: each is accepted once
        page = self.page
        page.locator("#name").fill(self.name)
        page.locator("#password").fill(password)
        page.locator("#totp_code").fill(self.code())
        page.locator(LOGIN_BUTTON).click()

    def log_in(self) -> None:
        self.page.goto(self.live_server("/admin/login"))
        self.fill_login()
        self.page.wait_for_url(url_path("/admin"))
        expect(self.page.locator("#admin_home_menu")).to_be_visible()

    def open_selin(self) -> None:
        page = self.page
        page.goto(self.live_server("/admin/holders"))
        page.locator("#q").fill(SELIN["name"])
        page.locator("#admin_holders_list .search button[type=submit]").click()
        expect(page.locator("#admin_holders_list [role=status]")).to_have_text(
            self.text("Bulunan kart sahibi: %(n)d", n=1))
        page.locator("#admin_holders_list tbody").get_by_role("link", name=SELIN["name"], exact=True).click()
        expect(page.locator("#admin_holder_view h1")).to_have_text(SELIN["name"])


@pytest.fixture
def tour(page, live_server, browser_errors, lang) -> Tour:
    # Refused logins and enrolments answer 401 and 422, which the browser logs as failed resources.
    browser_errors.expect(r"status of (401|403|422) ")
    page.route(live_server(AXE_PATH), lambda route: route.fulfill(path=AXE, content_type="text/javascript"))
    page.set_viewport_size(DESKTOP)
    return Tour(page, lang, live_server(AXE_PATH))


@LANGUAGES
def test_enrolment_login_and_every_console_screen(lang, tour, page, live_server):
    console = Console(page, live_server, lang, "denetci", "auditor")
    console.open_enrolment()
    tour.check("enrolment form", ENROL_BUTTON)
    console.fill_enrolment("kisa")
    expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")
    tour.check("enrolment, short password", ENROL_BUTTON)
    tour.field_error("enrolment, short password", "#password")
    seed = page.locator("#admin_enrol_form code.seed").inner_text().replace(" ", "")
    assert seed == console.totp.secret, "the refused enrolment showed another seed"

    console.fill_enrolment(PASSWORD)
    done = page.locator("#admin_enrol_done")
    expect(done.locator(".alert-info")).to_have_text(console.text(
        "Kaydınız tamamlandı. Artık kullanıcı adınız, parolanız ve uygulamanızdaki kodla giriş yapabilirsiniz."))
    assert seed not in page.content(), "the seed is still on the page after the enrolment"
    tour.check("enrolment done", "#admin_enrol_done a")

    done.get_by_role("link", name=console.text("Operatör Girişi"), exact=True).click()
    page.wait_for_url(url_path("/admin/login"))
    tour.check("login form", LOGIN_BUTTON)
    console.fill_login("Yanlis-Parola-2026")
    expect(page.locator("#admin_login_form .alert-error")).to_have_text(
        console.text("Kullanıcı adı, parola ya da doğrulama kodu hatalı; ya da hesap bir süre kilitli."))
    expect(page.locator("#name")).to_have_value(console.name)
    tour.check("login, wrong password", LOGIN_BUTTON)

    console.fill_login()
    page.wait_for_url(url_path("/admin"))
    expect(page.locator("#admin_home_menu h1")).to_have_text(console.text("Kurum Yönetim Konsolu"))
    tour.check("home", "#admin_home_menu .operations a")

    page.locator("#admin_home_menu .operations").get_by_role(
        "link", name=console.text("Kart Sahipleri"), exact=True).click()
    page.wait_for_url(url_path("/admin/holders"))
    expect(page.locator("#admin_holders_list tbody tr")).to_have_count(len(DEMO_HOLDERS))
    tour.check("holders", "#admin_holders_list .search button[type=submit]")

    console.open_selin()
    expect(page.locator("#admin_holder_view")).not_to_contain_text(SELIN["identity"])
    expect(page.locator("#admin_holder_view form[action$='/lock']")).to_have_count(0)  # an auditor only reads
    tour.check("holder", "#admin_holder_view .table-scroll")
    page.go_back()
    expect(page.locator("#admin_holders_list tbody tr")).to_have_count(1)
    tour.check("holders, search", "#admin_holders_list tbody a")

    page.locator(".admin-nav").get_by_role("link", name=console.text("Denetim Kaydı"), exact=True).click()
    page.wait_for_url(url_path("/admin/audit"))
    expect(page.locator("#admin_audit_list .audit-table tbody tr").first).to_be_visible()
    tour.check("audit", FILTER_BUTTON)

    page.get_by_role("button", name=console.text("Zinciri Doğrula"), exact=True).click()
    status = page.locator("#admin_audit_list .alert-info")
    expect(status).to_have_text(console.pattern("Zincir sağlam: %(n)d kayıt doğrulandı.", "n", 4242, r"[1-9]\d*"))
    tour.check("audit, verified", FILTER_BUTTON)

    page.locator("#since").fill("dün")
    page.locator(FILTER_BUTTON).click()
    expect(page.locator("#since")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#since-error")).to_have_text(console.text("Tarihi YYYY-AA-GG biçiminde giriniz."))
    tour.check("audit, bad date", FILTER_BUTTON)
    tour.field_error("audit, bad date", "#since")

    # An auditor is shown no lock button; the console must still refuse the POST, so the logout form
    # (which carries the console's CSRF token) is sent to the lock action instead.
    with open_db(live_server.app) as db:
        holder_id = storage.holders.find_holder(db, SELIN["identity"])["id"]
    page.evaluate("(action) => { document.querySelector('form.logout').action = action; }",
                  f"/admin/holders/{holder_id}/lock")
    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.locator("form.logout button[type=submit]").click()
    assert answer.value.status == 403
    expect(page.locator("#admin_home_forbidden h1")).to_have_text(console.text("Yetkiniz yok"))
    tour.check("forbidden", "#admin_home_forbidden .admin-nav a")
    with open_db(live_server.app) as db:
        assert storage.holders.get_holder(db, holder_id)["locked_until"] <= live_server.clock()
    tour.assert_clean()


@LANGUAGES
def test_an_operator_locks_and_unlocks_a_holder(lang, tour, page, live_server):
    console = Console(page, live_server, lang, "operator", "operator")
    console.enrol()
    console.log_in()
    console.open_selin()
    state = page.locator("#admin_holder_view dd[data-field=lock]")
    expect(state).to_have_text(console.text("Kilitli değil"))
    lock = "#admin_holder_view form[action$='/lock'] button[type=submit]"
    tour.check("holder, operator", lock)

    page.get_by_role("button", name=console.text("Girişi Kilitle"), exact=True).click()
    expect(page.locator("#admin_holder_view .alert-info")).to_have_text(
        console.text("Kart sahibinin girişi kilitlendi; açık oturumları kapatıldı."))
    expect(state).to_have_text(console.pattern("Kilitli (%(until)s tarihine kadar)", "until", "UNTIL", ".+"))
    expect(page.locator(lock)).to_have_count(0)
    tour.check("holder, locked", "#admin_holder_view form[action$='/unlock'] button[type=submit]")
    with open_db(live_server.app) as db:
        assert storage.holders.find_holder(db, SELIN["identity"])["locked_until"] > live_server.clock()

    page.get_by_role("button", name=console.text("Kilidi Kaldır"), exact=True).click()
    expect(page.locator("#admin_holder_view .alert-info")).to_have_text(
        console.text("Kart sahibinin kilidi kaldırıldı."))
    expect(state).to_have_text(console.text("Kilitli değil"))
    expect(page.locator(lock)).to_be_visible()
    with open_db(live_server.app) as db:
        assert storage.holders.find_holder(db, SELIN["identity"])["locked_until"] <= live_server.clock()
    tour.assert_clean()


@LANGUAGES
def test_the_audit_log_downloads_as_csv(lang, page, live_server):
    console = Console(page, live_server, lang, "denetci", "auditor")
    console.enrol()
    console.log_in()
    page.goto(live_server("/admin/audit"))
    with page.expect_download() as download_info:
        page.get_by_role("button", name=console.text("CSV olarak indir"), exact=True).click()
    download = download_info.value
    assert download.suggested_filename == "kamusm-audit.csv"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("id,at,event,"), text[:80]
    assert ",operator.login,ok," in text and ",operator.enrol,ok," in text


@LANGUAGES
def test_the_console_session_ends_after_15_idle_minutes(lang, tour, page, live_server):
    console = Console(page, live_server, lang, "denetci", "auditor")
    console.enrol()
    console.log_in()
    live_server.clock.advance(IDLE_SECONDS + 1)
    page.reload()
    page.wait_for_url(url_path("/admin/login"))
    assert page.url.endswith("/admin/login?expired=1")
    expect(page.locator("#admin_login_form .alert-info")).to_have_text(
        console.text("Oturumunuzun süresi doldu. Lütfen yeniden giriş yapınız."))
    expect(page.locator("form.logout")).to_have_count(0)
    tour.check("login, expired", LOGIN_BUTTON)
    tour.assert_clean()

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

import re
from pathlib import Path

import pytest
from flask_babel import force_locale
from pages import (
    AXE,
    AXE_PATH,
    DESKTOP,
    ENROL_BUTTON,
    LANGUAGES,
    LOGIN_BUTTON,
    PASSWORD,
    OperatorConsole,
    Tour,
    reach_code_screen,
    url_path,
)
from playwright.sync_api import expect

from kamusm import roster, storage
from kamusm.demo import DEMO_HOLDERS
from tests.conftest import open_db, with_demo_certificates
from tests.test_roster import GOOD, HEADER

pytestmark = pytest.mark.browser

SELIN = DEMO_HOLDERS[0]
IDLE_SECONDS = 15 * 60
FILTER_BUTTON = "#admin_audit_list .audit-filters button[type=submit]:not([formaction])"
ADD_OPERATOR_BUTTON = "#admin_operators_list form[action$='/admin/operators'] button[type=submit]"
ENROL_LINK = re.compile(r"^https?://[^/]+/admin/enrol/[A-Za-z0-9_-]{43}$")
SUSPEND_BUTTON = "#admin_holder_view form.suspend-form button[type=submit]"
UPLOAD_BUTTON = "#admin_import_form .actions button[type=submit]"
ROTATE_BUTTON = "#admin_vault_view .actions button[type=submit]"
IMPORTED = ("10000000450", "10000000528")  # the identities of GOOD
# Line 3 fails the identity checksum; line 4 has a phone too short and an e-mail outside the domains.
BAD_LINES = [
    "10000000451,Bad Checksum,+905430000012,x@demo.edu.tr,15000012,2015-01-01,1234,12345678,\n",
    "10000000537,Kisa Telefon,+90543,kisa.telefon@example.com,15000013,2015-01-01,1234,12345678,\n",
]
JOB_WAIT_MS = 60_000  # the import hashes every PIN and PUK in a thread of its own; the page polls every 1 s


@pytest.fixture
def tour(page, live_server, browser_errors, lang) -> Tour:
    # Refused logins and enrolments answer 401 and 422, which the browser logs as failed resources.
    browser_errors.expect(r"status of (401|403|422) ")
    page.route(live_server(AXE_PATH), lambda route: route.fulfill(path=AXE, content_type="text/javascript"))
    page.set_viewport_size(DESKTOP)
    return Tour(page, lang, live_server(AXE_PATH))


@LANGUAGES
def test_enrolment_login_and_every_console_screen(lang, tour, page, live_server):
    console = OperatorConsole(page, live_server, lang, "denetci", "auditor")
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
    console = OperatorConsole(page, live_server, lang, "operator", "operator")
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
    console = OperatorConsole(page, live_server, lang, "denetci", "auditor")
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
    console = OperatorConsole(page, live_server, lang, "denetci", "auditor")
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


@LANGUAGES
def test_an_admin_adds_disables_and_enables_an_operator(lang, tour, page, live_server):
    console = OperatorConsole(page, live_server, lang, "yonetici", "admin")
    console.enrol()
    console.log_in()
    page.locator(".admin-nav").get_by_role("link", name=console.text("Operatörler"), exact=True).click()
    page.wait_for_url(url_path("/admin/operators"))
    screen = page.locator("#admin_operators_list")
    expect(screen.locator("h1")).to_have_text(console.text("Operatörler"))
    expect(screen.locator("tbody tr")).to_have_count(1)
    tour.check("operators", ADD_OPERATOR_BUTTON)

    page.locator("#name").fill("x")
    page.locator("#role").select_option("operator")
    page.locator(ADD_OPERATOR_BUTTON).click()
    expect(page.locator("#name-error")).to_have_text(
        console.text("Kullanıcı adı 2-32 karakterdir: küçük harf, rakam, nokta, tire; harfle başlar."))
    expect(page.locator("#name")).to_have_value("x")
    expect(page.locator("#role")).to_have_value("operator")  # the choice survives the refusal
    tour.check("operators, bad name", ADD_OPERATOR_BUTTON)
    tour.field_error("operators, bad name", "#name")

    page.locator("#name").fill("yeni.denetci")
    page.locator("#role").select_option(label=console.text("Denetçi"))
    page.get_by_role("button", name=console.text("Ekle ve kayıt bağlantısı oluştur"), exact=True).click()
    expect(screen.locator("p.alert-info")).to_have_text(console.text("Operatör eklendi: %(name)s", name="yeni.denetci"))
    expect(screen.locator("code.digest")).to_have_text(ENROL_LINK)
    row = screen.locator("tbody tr").filter(has=page.get_by_role("cell", name="yeni.denetci", exact=True))
    expect(row.locator("td").nth(1)).to_have_text(console.text("Denetçi"))
    expect(row.locator("td").nth(2)).to_have_text(console.text("Kayıt bekliyor"))
    tour.check("operators, link shown", ADD_OPERATOR_BUTTON)
    with open_db(live_server.app) as db:
        assert storage.operators.find_operator(db, "yeni.denetci")["role"] == "auditor"

    row.get_by_role("button", name=console.text("Devre dışı bırak"), exact=True).click()
    expect(screen.locator("p.alert-info")).to_have_text(
        console.text("%(name)s devre dışı bırakıldı.", name="yeni.denetci"))
    expect(screen.locator("code.digest")).to_have_count(0)  # the link is shown once only
    expect(row.locator("td").nth(2)).to_have_text(console.text("Devre dışı"))
    with open_db(live_server.app) as db:
        assert storage.operators.find_operator(db, "yeni.denetci")["disabled_at"] is not None

    row.get_by_role("button", name=console.text("Etkinleştir"), exact=True).click()
    expect(screen.locator("p.alert-info")).to_have_text(console.text("%(name)s etkinleştirildi.", name="yeni.denetci"))
    expect(row.locator("td").nth(2)).to_have_text(console.text("Kayıt bekliyor"))
    expect(row.get_by_role("button", name=console.text("Devre dışı bırak"), exact=True)).to_be_visible()
    with open_db(live_server.app) as db:
        assert storage.operators.find_operator(db, "yeni.denetci")["disabled_at"] is None
    tour.assert_clean()


@LANGUAGES
def test_an_operator_sends_a_link_and_suspends_a_certificate(lang, tour, page, live_server):
    with_demo_certificates(live_server.app)
    console = OperatorConsole(page, live_server, lang, "operator", "operator")
    console.enrol()
    console.log_in()
    console.open_selin()
    screen = page.locator("#admin_holder_view")
    tour.check("holder, suspend form", SUSPEND_BUTTON)

    page.get_by_role("button", name=console.text("Güvenlik sözcüğü yenileme bağlantısı gönder"), exact=True).click()
    expect(screen.locator(".alert-info")).to_have_text(
        console.text("Bağlantı kart sahibinin kurumsal e-posta adresine gönderildi."))
    expect(screen).not_to_contain_text("/reset/")
    with open_db(live_server.app) as db:
        mail = storage.outbox.latest_outbox(db, "mail", 1)[0]
    assert mail["recipient"] == SELIN["email"] and "/reset/" in mail["body"]

    certificate = screen.locator("ul.certificate-rows > li").first
    expect(certificate).to_contain_text(console.text("Geçerli"))
    page.locator(SUSPEND_BUTTON).first.click()
    expect(screen.locator(".alert-error")).to_have_text(
        console.text("Askıya alma nedenini %(min)d-%(max)d karakterle yazınız.", min=5, max=200))
    expect(certificate).to_contain_text(console.text("Geçerli"))
    tour.check("holder, no reason", SUSPEND_BUTTON)

    certificate.get_by_label(console.text("Kart sahibinin telefondaki askıya alma nedeni"), exact=True).fill(
        "Kartını kaybettiğini telefonla bildirdi")
    certificate.get_by_role("button", name=console.text("Sertifikayı Askıya Al"), exact=True).click()
    expect(screen.locator(".alert-info")).to_have_text(
        console.text("Sertifika askıya alındı; neden ve işlemi yapan kaydedildi."))
    expect(certificate).to_contain_text(console.text("Askıda"))
    expect(certificate.locator("form.suspend-form")).to_have_count(0)
    with open_db(live_server.app) as db:
        holder_id = storage.holders.find_holder(db, SELIN["identity"])["id"]
        assert storage.certificates.holder_certificates(db, holder_id)[0]["status"] == "suspended"
    tour.check("holder, suspended", "#admin_holder_view .table-scroll")
    tour.assert_clean()


@LANGUAGES
def test_the_outgoing_messages_show_no_body_or_code(lang, tour, page, live_server):
    reach_code_screen(page, live_server)  # a holder's login sends an SMS with a code
    console = OperatorConsole(page, live_server, lang, "denetci", "auditor")
    console.enrol()
    console.log_in()
    page.locator(".admin-nav").get_by_role("link", name=console.text("Giden İletiler"), exact=True).click()
    page.wait_for_url(url_path("/admin/mail"))
    screen = page.locator("#admin_mail_list")
    expect(screen.locator("h1")).to_have_text(console.text("Giden İletiler"))
    sms = screen.locator("tbody tr").filter(has=page.get_by_role("cell", name="sms", exact=True))
    expect(sms.first.locator("td").nth(1)).to_have_text(SELIN["phone"][:6] + "*****")
    with open_db(live_server.app) as db:
        bodies = [row["body"] for row in storage.outbox.latest_outbox(db, None, 50)]
    assert bodies
    html = page.content()
    assert not any(body in html for body in bodies), "a message body is on the screen"
    assert live_server.latest_sms_code() not in html
    assert re.search(r"\b\d{6}\b", screen.inner_text()) is None
    expect(screen.get_by_role("button", name=console.text("Bekleyenleri şimdi yeniden dene"))).to_have_count(0)
    tour.check("outgoing messages", "#admin_mail_list .table-scroll")
    tour.assert_clean()


def roster_problems(app, text: str, lang: str) -> list[tuple[int, str]]:
    """The (line, reason) pairs the portal names for `text`, its reasons in `lang`."""
    with app.test_request_context(), force_locale(lang), pytest.raises(roster.RosterError) as refused:
        roster.parse_roster(text, app.config["KAMUSM_EMAIL_DOMAINS"])
    return refused.value.problems


@LANGUAGES
def test_an_operator_imports_a_roster_after_a_refused_one(lang, tour, page, live_server, tmp_path):
    console = OperatorConsole(page, live_server, lang, "yukleyici", "operator")
    console.enrol()
    console.log_in()
    page.locator(".admin-nav").get_by_role("link", name=console.text("Kart Listesi Yükle"), exact=True).click()
    page.wait_for_url(url_path("/admin/import"))
    expect(page.locator("#admin_import_form h1")).to_have_text(console.text("Kart Listesi Yükle"))
    tour.check("import form", UPLOAD_BUTTON)

    bad_text = HEADER + GOOD[0] + "".join(BAD_LINES)
    problems = roster_problems(live_server.app, bad_text, lang)
    assert [line for line, _ in problems] == [3, 4]
    bad = tmp_path / "bad.csv"
    bad.write_text(bad_text, encoding="utf-8")
    page.set_input_files("#roster", bad)
    page.locator(UPLOAD_BUTTON).click()
    screen = page.locator("#admin_import_form")
    expect(screen.locator(".alert-error")).to_have_text(console.text(
        "Hiçbir satır içe aktarılmadı: %(n)d satır hatalı. Düzeltip dosyayı yeniden yükleyiniz.", n=2))
    expect(page.get_by_role("list", name=console.text("Hatalı satırlar"), exact=True).locator("li")).to_have_text(
        [console.text("Satır %(line)d: %(reason)s", line=line, reason=reason) for line, reason in problems])
    assert "12345678" not in page.content(), "a PUK of the file is on the page"
    tour.check("import, bad lines", UPLOAD_BUTTON)
    with open_db(live_server.app) as db:
        assert all(storage.holders.find_holder(db, identity) is None for identity in IMPORTED)

    good = tmp_path / "good.csv"
    good.write_text(HEADER + "".join(GOOD), encoding="utf-8")
    page.set_input_files("#roster", good)
    page.locator(UPLOAD_BUTTON).click()
    checked = page.locator("#admin_import_checked")
    expect(checked.locator(".alert-info")).to_have_text(
        console.text("Bütün satırlar geçerli: %(n)d satır içe aktarılmaya hazır.", n=len(GOOD)) + " "
        + console.text("%(n)d kart sahibinin güvenlik sözcüğü yok; onlara etkinleştirme bağlantısı gönderiniz.",
                       n=1))
    start = "#admin_import_checked .actions button[type=submit]"
    tour.check("import, checked", start)
    with open_db(live_server.app) as db:
        assert all(storage.holders.find_holder(db, identity) is None for identity in IMPORTED)

    page.get_by_role("button", name=console.text("İçe Aktar"), exact=True).click()
    done = page.locator("#admin_import_done")
    expect(done.locator(".alert-info")).to_have_text(
        console.text("İçe aktarma tamamlandı: %(n)d satır kaydedildi.", n=len(GOOD)), timeout=JOB_WAIT_MS)
    tour.check("import, done", "#admin_import_done .alert-info + p a")
    with open_db(live_server.app) as db:
        holders = [storage.holders.find_holder(db, identity) for identity in IMPORTED]
    assert [holder and holder["name"] for holder in holders] == ["Deniz Aydın", "Ali Veli"]
    tour.assert_clean()


@LANGUAGES
def test_an_admin_rotates_the_vault_key(lang, tour, page, live_server):
    console = OperatorConsole(page, live_server, lang, "kasaci", "admin")
    console.enrol()
    console.log_in()
    page.locator(".admin-nav").get_by_role("link", name=console.text("Kasa Anahtarı"), exact=True).click()
    page.wait_for_url(url_path("/admin/vault"))
    facts = page.locator("#admin_vault_view dl.card-facts dd")
    expect(facts.first).to_have_text(re.compile(r"^[0-9a-f]{16}$"))
    old_id, records = facts.nth(0).inner_text(), int(facts.nth(1).inner_text())
    assert records > 0
    tour.check("vault", ROTATE_BUTTON)

    page.get_by_role("button", name=console.text("Anahtarı Döndür"), exact=True).click()
    done = page.locator("#admin_vault_done")
    expect(done.locator(".alert-info")).to_have_text(console.text(
        "Anahtar döndürüldü: %(n)d kayıt yeni anahtarla yeniden sarıldı.", n=records), timeout=JOB_WAIT_MS)
    tour.check("vault, rotated", "#admin_vault_done .alert-info + p a")

    done.locator(".alert-info + p").get_by_role("link", name=console.text("Kasa Anahtarı"), exact=True).click()
    page.wait_for_url(url_path("/admin/vault"))
    expect(facts.first).to_have_text(re.compile(r"^[0-9a-f]{16}$"))
    expect(facts.first).not_to_have_text(old_id)
    expect(page.locator("#admin_vault_view [role=status]")).to_have_count(0)  # no half-done rotation left
    tour.check("vault, new key", ROTATE_BUTTON)
    tour.assert_clean()

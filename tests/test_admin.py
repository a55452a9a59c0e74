"""The institution console over HTTP: operator enrolment and login, roles, the area's own session,
holder search and lock, the audit viewer."""
from __future__ import annotations

import csv
import io
import re

import pyotp
import pytest

from kamusm import operators, storage
from kamusm.demo import DEMO_HOLDERS
from tests.conftest import SELIN, audit_events, id_of, open_db, post

PASSWORD = "Kurum-Konsolu-2026!"
SEED = re.compile(r'<code class="seed">([A-Z2-7 ]+)</code>')


class Operator:
    def __init__(self, client, clock, name: str, app_totp: pyotp.TOTP):
        self.client, self.clock, self.name, self.totp = client, clock, name, app_totp

    def log_in(self, password: str = PASSWORD, new_step: bool = True):
        if new_step:
            self.clock.advance(30)  # a new time step: each is accepted once
        return post(self.client, "/admin/login", token_page="/admin/login", name=self.name, password=password,
                    totp_code=self.totp.at(self.clock()))

    def post(self, path: str, **form):
        return post(self.client, path, token_page="/admin", **form)


def enrol(app, client, clock, name: str, role: str) -> Operator:
    with open_db(app) as db:
        token = operators.add(db, name, role, clock())
    page = client.get(f"/admin/enrol/{token}").get_data(as_text=True)
    app_totp = pyotp.TOTP(SEED.search(page).group(1).replace(" ", ""))
    done = post(client, f"/admin/enrol/{token}", token_page=f"/admin/enrol/{token}", password=PASSWORD,
                password_confirm=PASSWORD, totp_code=app_totp.at(clock()))
    assert done.status_code == 200 and 'id="admin_enrol_done"' in done.get_data(as_text=True)
    return Operator(client, clock, name, app_totp)


@pytest.fixture
def make(app, client, clock):
    def make_operator(role: str, name: str | None = None) -> Operator:
        operator = enrol(app, client, clock, name or role, role)
        assert operator.log_in().headers["Location"] == "/admin"
        return operator
    return make_operator


def test_the_command_prints_a_one_time_enrolment_link(app, runner, client, clock):
    result = runner.invoke(args=["kamusm", "operator", "add", "ayse.kaya", "--role", "operator"])
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:5000/admin/enrol/[A-Za-z0-9_-]{43}", link)
    path = link.removeprefix("http://127.0.0.1:5000")
    page = client.get(path).get_data(as_text=True)
    app_totp = pyotp.TOTP(SEED.search(page).group(1).replace(" ", ""))
    short = post(client, path, token_page=path, password="kisa", password_confirm="kisa",
                 totp_code=app_totp.at(clock()))
    assert short.status_code == 422 and 'aria-invalid="true"' in short.get_data(as_text=True)
    wrong = post(client, path, token_page=path, password=PASSWORD, password_confirm=PASSWORD, totp_code="000000"
                 if app_totp.at(clock()) != "000000" else "111111")
    assert wrong.status_code == 422
    assert post(client, path, token_page=path, password=PASSWORD, password_confirm=PASSWORD,
                totp_code=app_totp.at(clock())).status_code == 200
    assert client.get(path).status_code == 404
    again = runner.invoke(args=["kamusm", "operator", "add", "ayse.kaya", "--role", "admin"])
    assert again.exit_code != 0 and "name is taken" in again.output  # commands speak English
    with open_db(app) as db:
        row = storage.operators.find_operator(db, "ayse.kaya")
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in str(row)


def test_login_needs_name_password_and_a_fresh_app_code_with_one_message(app, client, clock):
    operator = enrol(app, client, clock, "denetci", "auditor")
    wrong_password = operator.log_in("Yanlis-Parola-2026")
    clock.advance(30)
    wrong_code = post(client, "/admin/login", token_page="/admin/login", name="denetci", password=PASSWORD,
                      totp_code="123456" if operator.totp.at(clock()) != "123456" else "654321")
    unknown = post(client, "/admin/login", token_page="/admin/login", name="kimse", password=PASSWORD,
                   totp_code="123456")
    texts = {response.get_data(as_text=True).count("hesap bir süre kilitli") for response in
             (wrong_password, wrong_code, unknown)}
    assert {wrong_password.status_code, wrong_code.status_code, unknown.status_code} == {401} and texts == {1}
    code = operator.totp.at(clock() + 30)
    clock.advance(30)
    assert post(client, "/admin/login", token_page="/admin/login", name="denetci", password=PASSWORD,
                totp_code=code).status_code == 303
    post(client, "/admin/logout", token_page="/admin")
    replay = post(client, "/admin/login", token_page="/admin/login", name="denetci", password=PASSWORD, totp_code=code)
    assert replay.status_code == 401


def test_wrong_passwords_lock_the_operator(app, client, clock):
    operator = enrol(app, client, clock, "kilitli", "operator")
    threshold = app.config["KAMUSM_LOCKOUT_THRESHOLD"]
    for _ in range(threshold):
        assert operator.log_in("Yanlis-Parola-2026", new_step=False).status_code == 401
    assert operator.log_in(new_step=False).status_code == 401  # the right password, within the 30 s lock
    with open_db(app) as db:
        events = audit_events(db, "operator.")
    assert events.count(("operator.lockout", "locked")) == 1
    assert events[-1] == ("operator.login", "locked")  # refused for the lock, before any hash
    clock.advance(3600)
    assert operator.log_in().status_code == 303


@pytest.mark.parametrize(("role", "allowed"), [("auditor", False), ("operator", True), ("admin", True)])
def test_each_role_may_lock_a_holder_or_is_refused(app, make, role, allowed):
    operator = make(role)
    with open_db(app) as db:
        holder_id = id_of(db)
    assert operator.client.get(f"/admin/holders/{holder_id}").status_code == 200
    response = operator.post(f"/admin/holders/{holder_id}/lock")
    assert response.status_code == (200 if allowed else 403)
    with open_db(app) as db:
        locked = storage.holders.get_holder(db, holder_id)["locked_until"] > operator.clock()
        entries = list(storage.audit_log.audit_entries(db, holder_id))
    assert locked is allowed
    if allowed:
        assert any(entry["event"] == "admin.holder_lock" and f'"operator":"{role}"' in entry["detail"]
                   for entry in entries)
        assert operator.post(f"/admin/holders/{holder_id}/unlock").status_code == 200


def test_a_locked_holder_cannot_log_in_and_loses_open_sessions(app, make, auth, client):
    auth.login()
    operator = make("operator")
    with open_db(app) as db:
        holder_id = id_of(db)
    operator.post(f"/admin/holders/{holder_id}/lock")
    assert client.get("/menu").status_code == 303
    assert auth.word().status_code == 401


def test_the_areas_keep_their_own_sessions(app, make, auth, client):
    auth.login()
    assert client.get("/admin").headers["Location"].startswith("/admin/login")
    make("admin")
    assert client.get("/admin").status_code == 200
    assert client.get("/menu").status_code == 200  # the holder's own session, still there beside it
    post(client, "/logout")
    assert client.get("/menu").status_code == 303
    assert client.get("/admin").status_code == 200


def test_an_operator_session_never_opens_holder_pages(app, make, client):
    make("admin")
    for path in ("/menu", "/pin-puk", "/security", "/profile", "/certificate"):
        assert client.get(path).headers["Location"].startswith("/login"), path


def test_a_holder_token_in_the_console_cookie_opens_nothing(app, auth, client):
    auth.login()
    holder_token = client.get_cookie("kamusm_session").value
    client.set_cookie("kamusm_admin", holder_token)
    assert client.get("/admin").headers["Location"].startswith("/admin/login")


def test_the_console_session_ends_after_15_idle_minutes(make, client, clock):
    make("auditor")
    clock.advance(14 * 60)
    assert client.get("/admin").status_code == 200
    clock.advance(15 * 60 + 1)
    assert client.get("/admin").headers["Location"] == "/admin/login?expired=1"


def test_every_console_page_is_no_store(make, client):
    make("admin")
    for path in ("/admin", "/admin/holders", "/admin/audit", "/admin/login"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_search_by_identity_name_and_card_serial(app, make, client):
    make("auditor")
    selin = client.get(f"/admin/holders?q={SELIN['identity'][:5]}").get_data(as_text=True)
    assert SELIN["name"] in selin and SELIN["identity"] not in selin
    by_name = client.get(f"/admin/holders?q={SELIN['name'].split()[-1].lower()}").get_data(as_text=True)
    assert SELIN["name"] in by_name
    by_serial = client.get(f"/admin/holders?q={SELIN['card_serial']}").get_data(as_text=True)
    assert SELIN["name"] in by_serial and "Bulunan kart sahibi: 1" in by_serial
    for folded in ("YILMAZ", "yilmaz", "Yılmaz", "AYSE", "ayşe k"):
        assert "Bulunan kart sahibi: 1" in client.get(f"/admin/holders?q={folded}").get_data(as_text=True), folded
    everyone = client.get("/admin/holders").get_data(as_text=True)
    assert all(holder["name"] in everyone for holder in DEMO_HOLDERS)
    assert client.get("/admin/holders?page=abc&q=%00").status_code == 200


def test_search_pages_through_many_holders(app, make, client, clock):
    with open_db(app) as db:
        for number in range(60):
            storage.holders.upsert_holder(db, {"identity": f"P{number:07d}", "name": f"Sayfa Deneme {number:02d}",
                                               "phone": "+905300000000", "email": "", "word_hash": None}, clock())
    make("auditor")
    first = client.get("/admin/holders?q=Sayfa").get_data(as_text=True)
    assert "Bulunan kart sahibi: 60" in first and "Sayfa 1 / 3" in first and "Sayfa Deneme 25" not in first
    third = client.get("/admin/holders?q=Sayfa&page=3").get_data(as_text=True)
    assert "Sayfa Deneme 59" in third and "Sayfa Deneme 00" not in third


def test_the_holder_page_shows_no_secret(app, make, client):
    make("admin")
    with open_db(app) as db:
        holder = storage.holders.get_holder(db, id_of(db))
    page = client.get(f"/admin/holders/{holder['id']}").get_data(as_text=True)
    for secret in (SELIN["pin"], SELIN["puk"], SELIN["security_word"], holder["word_hash"], SELIN["identity"],
                   SELIN["phone"]):
        assert secret not in page
    assert client.get("/admin/holders/999999").status_code == 404


def test_the_audit_viewer_filters_verifies_and_exports(app, make, client):
    operator = make("admin")
    with open_db(app) as db:
        holder_id = id_of(db)
    operator.post(f"/admin/holders/{holder_id}/lock")
    filtered = client.get(f"/admin/audit?holder={SELIN['identity']}&event=admin.&operator=admin")
    assert filtered.status_code == 200 and "admin.holder_lock" in filtered.get_data(as_text=True)
    nothing = client.get("/admin/audit?operator=nobody").get_data(as_text=True)
    assert "admin.holder_lock" not in nothing
    assert client.get("/admin/audit?since=yesterday").status_code == 422
    verified = operator.post("/admin/audit/verify")
    assert "Zincir sağlam" in verified.get_data(as_text=True)
    exported = client.get("/admin/audit.csv?event=admin.")
    assert exported.mimetype == "text/csv" and "admin.holder_lock" in exported.get_data(as_text=True)
    with open_db(app) as db:
        assert ("operator.audit_export", "ok") in audit_events(db, "operator.audit_export")


def test_the_csv_export_defuses_formulas(app, make, client, clock):
    make("auditor")
    with open_db(app) as db:
        from kamusm import audit

        audit.record(db, clock(), "=cmd|' /C calc'!A0", "ok", None, "")
    rows = list(csv.reader(io.StringIO(client.get("/admin/audit.csv").get_data(as_text=True))))
    events = [row[2] for row in rows[1:]]
    assert "'=cmd|' /C calc'!A0" in events
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "@")]


def test_console_posts_need_the_console_csrf_token(make, client, app):
    make("admin")
    with open_db(app) as db:
        holder_id = id_of(db)
    assert client.post(f"/admin/holders/{holder_id}/lock").status_code == 400


def test_a_burst_of_wrong_passwords_gets_threshold_checks_and_one_lock(app, client, clock):
    import threading

    from tests.conftest import csrf_token

    enrol(app, client, clock, "patlama", "operator")
    threshold = app.config["KAMUSM_LOCKOUT_THRESHOLD"]
    clients = [app.test_client() for _ in range(threshold + 14)]
    tokens = [csrf_token(each, "/admin/login") for each in clients]
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def attempt(each, token):
        barrier.wait()
        statuses.append(each.post("/admin/login", data={"csrf_token": token, "name": "patlama",
                                                        "password": "Yanlis-Parola-2026", "totp_code": "123456"})
                        .status_code)

    threads = [threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open_db(app) as db:
        events = audit_events(db, "operator.")
    assert statuses == [401] * len(clients)
    assert events.count(("operator.login", "wrong")) == threshold
    assert events.count(("operator.login", "locked")) == len(clients) - threshold
    assert events.count(("operator.lockout", "locked")) == 1


def test_an_operator_logs_in_after_the_vault_key_is_rotated(app, client, clock, runner):
    operator = enrol(app, client, clock, "donus", "admin")
    with open_db(app) as db:
        before = storage.operators.find_operator(db, "donus")
    result = runner.invoke(args=["kamusm", "rotate-vault-key"])
    assert result.exit_code == 0, result.output
    with open_db(app) as db:
        after = storage.operators.find_operator(db, "donus")
    assert after["kek_id"] != before["kek_id"] and after["sealed_totp"] != before["sealed_totp"]
    assert operator.log_in().headers["Location"] == "/admin"


def test_only_an_admin_manages_operators(app, make, client):
    make("operator", "isletmen")
    assert client.get("/admin/operators").status_code == 403
    assert post(client, "/admin/operators", token_page="/admin", name="yeni", role="auditor").status_code == 403
    post(client, "/admin/logout", token_page="/admin")
    make("admin", "yonetici")
    page = client.get("/admin/operators").get_data(as_text=True)
    assert "isletmen" in page
    added = post(client, "/admin/operators", token_page="/admin/operators", name="Yeni.Denetci", role="auditor")
    text = added.get_data(as_text=True)
    assert added.status_code == 200 and re.search(r"/admin/enrol/[A-Za-z0-9_-]{43}", text)
    assert post(client, "/admin/operators", token_page="/admin/operators", name="x", role="auditor").status_code == 422
    assert post(client, "/admin/operators", token_page="/admin/operators", name="baska",
                role="root").status_code == 422
    with open_db(app) as db:
        assert storage.operators.find_operator(db, "yeni.denetci")["role"] == "auditor"
        entries = [entry["detail"] for entry in storage.audit_log.search_audit(db, event="operator.add")]
    assert any('"operator":"yonetici"' in detail and '"subject":"yeni.denetci"' in detail for detail in entries)


def test_a_disabled_operator_is_out_at_once(app, client, clock):
    admin_client, other_client = app.test_client(), app.test_client()
    admin = enrol(app, admin_client, clock, "yonetici", "admin")
    assert admin.log_in().status_code == 303
    other = enrol(app, other_client, clock, "denetci", "auditor")
    assert other.log_in().status_code == 303
    with open_db(app) as db:
        other_id = storage.operators.find_operator(db, "denetci")["id"]
    assert admin.post(f"/admin/operators/{other_id}", action="disable").status_code == 200
    assert other_client.get("/admin").headers["Location"].startswith("/admin/login")
    assert other.log_in().status_code == 401
    assert admin.post(f"/admin/operators/{other_id}", action="enable").status_code == 200
    assert other.log_in().status_code == 303
    with open_db(app) as db:
        admin_id = storage.operators.find_operator(db, "yonetici")["id"]
    assert admin.post(f"/admin/operators/{admin_id}", action="disable").status_code == 409
    assert admin.post(f"/admin/operators/{other_id}", action="bogus").status_code == 422
    relinked = admin.post(f"/admin/operators/{other_id}", action="reenrol")
    assert re.search(r"/admin/enrol/[A-Za-z0-9_-]{43}", relinked.get_data(as_text=True))
    assert other_client.get("/admin/login").headers["Location"] == "/admin/login"  # its session ended there
    assert other.log_in().status_code == 401  # the old password and app stop with a new link


def test_the_message_screens_show_no_body(app, make, client, auth):
    auth.word()
    auth.send_sms()
    make("auditor")
    page = client.get("/admin/mail").get_data(as_text=True)
    with open_db(app) as db:
        bodies = [row["body"] for row in storage.outbox.latest_outbox(db, None, 50)]
    assert bodies and not any(body in page for body in bodies)
    assert re.search(r"\b\d{6}\b", page) is None
    assert post(client, "/admin/mail/retry", token_page="/admin/mail").status_code == 403


def test_an_operator_mails_an_activation_or_reset_link_to_the_institutional_address(app, make, client):
    make("operator")
    with open_db(app) as db:
        holder_id = id_of(db)
    sent = post(client, f"/admin/holders/{holder_id}/link", token_page="/admin")
    assert sent.status_code == 200
    with open_db(app) as db:
        mail = storage.outbox.latest_outbox(db, "mail", 1)[0]
        entries = [entry["detail"] for entry in storage.audit_log.search_audit(db, event="admin.reset_link")]
    assert mail["recipient"] == SELIN["email"] and "/reset/" in mail["body"]
    assert any('"operator":"operator"' in detail for detail in entries)
    assert "/reset/" not in sent.get_data(as_text=True)


def test_an_operator_suspends_a_certificate_on_the_holders_call(app, make, client):
    from tests.conftest import with_demo_certificates

    with_demo_certificates(app)
    make("operator")
    with open_db(app) as db:
        holder_id = id_of(db)
        certificate = storage.certificates.holder_certificates(db, holder_id)[0]
    no_note = post(client, f"/admin/holders/{holder_id}/suspend", token_page="/admin",
                   certificate=str(certificate["id"]))
    assert no_note.status_code == 422
    done = post(client, f"/admin/holders/{holder_id}/suspend", token_page="/admin",
                certificate=str(certificate["id"]), note="Kartını kaybettiğini telefonla bildirdi")
    assert done.status_code == 200
    again = post(client, f"/admin/holders/{holder_id}/suspend", token_page="/admin",
                 certificate=str(certificate["id"]), note="Yeniden")
    assert again.status_code == 409
    assert post(client, f"/admin/holders/{holder_id}/suspend", token_page="/admin", certificate="abc",
                note="Geçersiz sertifika").status_code == 404
    with open_db(app) as db:
        assert storage.certificates.holder_certificates(db, holder_id)[0]["status"] == "suspended"
        entry = storage.audit_log.search_audit(db, event="certificate.suspend")[0]
    assert '"operator":"operator"' in entry["detail"] and "telefonla bildirdi" in entry["detail"]
    with open_db(app) as db:
        receipt = storage.receipts.holder_receipts(db, holder_id)[0]
        signed = storage.receipts.get_holder_receipt(db, holder_id, receipt["id"])["signed"]
    assert receipt["kind"] == "certificate" and "kurum görevlisi".encode() in signed  # the holder's receipt


def test_row_ids_past_64_bits_are_404_not_500(make, client):
    make("operator")
    for path in ("/admin/holders/99999999999999999999999", "/admin/holders/0"):
        assert client.get(path).status_code == 404
    assert post(client, "/admin/holders/99999999999999999999999/lock", token_page="/admin").status_code == 404

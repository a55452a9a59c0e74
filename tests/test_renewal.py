"""Yenileme Talebi over HTTP: filing from /certificate (once, with a notice mail, audited), a second press,
another holder's certificate, the console's list, CSV and "done", the holder page, the institution's export."""
from __future__ import annotations

import csv
import io
import json

import pytest

from kamusm import renewals, storage
from kamusm.reminders import DAY_SECONDS
from tests.conftest import KEMAL, SELIN, AuthActions, audit_events, id_of, open_db, post, with_demo_certificates
from tests.test_admin import enrol
from tests.test_concurrency import race


@pytest.fixture
def app(app):
    return with_demo_certificates(app)


def certificate(db, holder=SELIN) -> dict:
    return storage.certificates.holder_certificates(db, id_of(db, holder))[-1]


@pytest.fixture
def near_end(db, clock):
    """The clock 30 days before the demo certificates end: inside the window where renewal is offered."""
    clock.now = certificate(db)["not_after"] - 30 * DAY_SECONDS


def file(client, certificate_id, **headers):
    return post(client, "/certificate/renewal", token_page="/certificate", certificate=str(certificate_id), **headers)


def requests_of(db, holder=SELIN) -> list[dict]:
    return storage.reminders.holder_renewal_requests(db, id_of(db, holder))


def test_far_from_the_end_no_button_and_a_refusal(client, auth, db):
    auth.login()
    assert "Yenileme Talebi" not in client.get("/certificate").get_data(as_text=True)
    response = file(client, certificate(db)["id"])
    assert response.status_code == 409 and "90 günden fazla" in response.get_data(as_text=True)
    assert requests_of(db) == []
    assert ("certificate.renewal_request", "rejected") in audit_events(db, "certificate.renewal")


def test_filing_a_request_from_the_certificate_screen(client, auth, db, near_end):
    auth.login()
    page = client.get("/certificate").get_data(as_text=True)
    assert 'data-action="renewal"' in page and "Yenileme Talebi" in page
    response = file(client, certificate(db)["id"])
    assert response.status_code == 303 and response.headers["Location"] == "/certificate"
    page = client.get("/certificate").get_data(as_text=True)
    assert "Yenileme talep edildi:" in page and 'data-action="renewal"' not in page
    (filed,) = requests_of(db)
    assert filed["state"] == "open" and filed["certificate_id"] == certificate(db)["id"]
    assert audit_events(db, "certificate.renewal", id_of(db)) == [("certificate.renewal_request", "ok")]
    (notice,) = [message for message in storage.outbox.latest_outbox(db, "mail", 10)
                 if message["subject"] == "Yenileme talebiniz alındı"]
    assert notice["recipient"] == SELIN["email"] and certificate(db)["serial_hex"] in notice["body"]
    assert not [message for message in storage.outbox.latest_outbox(db, "sms", 10) if "enileme" in message["body"]]
    assert "Sertifika yenileme talebi iletildi" in client.get("/activity").get_data(as_text=True)


def test_a_second_press_says_it_is_filed_already(client, auth, db, near_end):
    auth.login()
    assert file(client, certificate(db)["id"]).status_code == 303
    again = file(client, certificate(db)["id"], htmx=True)
    body = again.get_data(as_text=True)
    assert again.status_code == 409 and "zaten kurumunuza iletilmiş" in body and "<html" not in body
    assert len(requests_of(db)) == 1
    assert ("certificate.renewal_request", "duplicate") in audit_events(db, "certificate.renewal")


def test_presses_at_once_file_one_request(app, db, clock, near_end):
    holder_id, certificate_id = id_of(db), certificate(db)["id"]

    def press():
        with open_db(app) as connection:
            try:
                return renewals.file_request(connection, holder_id, str(certificate_id), "", clock())["id"]
            except renewals.AlreadyRequested as exc:
                return ("already", exc.request["id"])

    results = race(press, 10)
    filed = [result for result in results if isinstance(result, int)]
    assert len(filed) == 1 and all(result == ("already", filed[0]) for result in results if result not in filed)
    assert len(requests_of(db)) == 1


@pytest.mark.parametrize("raw", ["", "abc", "9999999", "1" * 30])
def test_unknown_certificates_are_404(client, auth, db, near_end, raw):
    auth.login()
    assert file(client, raw).status_code == 404
    assert requests_of(db) == []


def test_another_holders_certificate_is_404(client, auth, db, near_end):
    auth.login()
    assert file(client, certificate(db, KEMAL)["id"]).status_code == 404
    assert requests_of(db, KEMAL) == [] and requests_of(db) == []


def test_a_revoked_certificate_is_not_offered(client, auth, db, clock, near_end):
    storage.certificates.set_certificate_status(db, certificate(db)["id"], "revoke", "revoked", "", clock())
    auth.login()
    assert 'data-action="renewal"' not in client.get("/certificate").get_data(as_text=True)
    assert file(client, certificate(db)["id"]).status_code == 409


def test_the_request_needs_the_csrf_token_and_a_login(client, auth, db, near_end):
    assert client.post("/certificate/renewal", data={"certificate": "1"}).status_code in (302, 303, 400, 401)
    auth.login()
    assert client.post("/certificate/renewal", data={"certificate": str(certificate(db)["id"])}).status_code == 400
    assert requests_of(db) == []


@pytest.fixture
def filed(app, db, clock, near_end):
    """Selin's request, filed over HTTP by a client of its own."""
    client = app.test_client()
    AuthActions(client, app).login()
    assert file(client, certificate(db)["id"]).status_code == 303
    return requests_of(db)[0]


def test_the_console_lists_open_requests_and_an_operator_marks_one_done(app, client, db, clock, filed):
    operator = enrol(app, client, clock, "yenileme.operator", "operator")
    assert operator.log_in().status_code == 303
    page = client.get("/admin/renewals").get_data(as_text=True)
    assert "Yenileme Talepleri" in page and "Selin Yılmaz" in page and certificate(db)["serial_hex"] in page
    assert f'data-renewal="{filed["id"]}"' in page and "Tamamlandı olarak işaretle" in page
    holder_page = client.get(f"/admin/holders/{id_of(db)}").get_data(as_text=True)
    assert "Açık, talep zamanı" in holder_page
    done = operator.post(f"/admin/renewals/{filed['id']}/done", back="holder")
    assert done.status_code == 303 and done.headers["Location"] == f"/admin/holders/{id_of(db)}"
    assert requests_of(db)[0]["state"] == "done"
    entry = next(entry for entry in storage.audit_log.audit_entries(db, id_of(db))
                 if entry["event"] == "certificate.renewal_done")
    assert json.loads(entry["detail"])["operator"] == "yenileme.operator"
    assert "Açık yenileme talebi yok." in client.get("/admin/renewals").get_data(as_text=True)
    again = operator.post(f"/admin/renewals/{filed['id']}/done")
    assert again.status_code == 409 and "zaten tamamlanmış" in again.get_data(as_text=True)
    assert operator.post("/admin/renewals/99999/done").status_code == 404


def test_once_done_the_holder_may_ask_again(app, client, db, clock, filed):
    operator = enrol(app, client, clock, "yenileme.operator", "operator")
    operator.log_in()
    assert operator.post(f"/admin/renewals/{filed['id']}/done").headers["Location"] == "/admin/renewals"
    holder = app.test_client()
    AuthActions(holder, app).login()
    assert 'data-action="renewal"' in holder.get("/certificate").get_data(as_text=True)


def test_an_auditor_sees_the_list_but_cannot_mark_done(app, client, db, clock, filed):
    auditor = enrol(app, client, clock, "yenileme.denetci", "auditor")
    auditor.log_in()
    page = client.get("/admin/renewals").get_data(as_text=True)
    assert "Selin Yılmaz" in page and "Tamamlandı olarak işaretle" not in page
    assert auditor.post(f"/admin/renewals/{filed['id']}/done").status_code == 403
    assert requests_of(db)[0]["state"] == "open"


def test_the_csv_export_defuses_formulas_and_is_audited(app, client, db, clock, filed):
    db.execute("UPDATE holders SET name = ? WHERE id = ?", ["=HYPERLINK(\"http://x\")", id_of(db)])
    operator = enrol(app, client, clock, "yenileme.denetci", "auditor")
    operator.log_in()
    response = client.get("/admin/renewals.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1 and rows[0]["name"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["id"] == str(filed["id"]) and rows[0]["certificate_serial"] == certificate(db)["serial_hex"]
    assert rows[0]["card_serial"] == "14*****" and rows[0]["certificate_status"] == "valid"
    assert ("operator.renewals_export", "ok") in audit_events(db, "operator.renewals_export")


def test_the_holder_page_shows_the_reminders_sent(app, client, db, clock, runner, near_end):
    assert runner.invoke(args=["kamusm", "reminders", "send"]).exit_code == 0
    operator = enrol(app, client, clock, "yenileme.denetci", "auditor")
    operator.log_in()
    page = client.get(f"/admin/holders/{id_of(db)}").get_data(as_text=True)
    assert "Süre Hatırlatmaları" in page and page.count("30 gün kala") == 2 and "Gönderildi:" in page


def test_the_institutions_export_carries_requests_and_their_closing(app, client, db, clock, runner, filed):
    operator = enrol(app, client, clock, "yenileme.operator", "operator")
    operator.log_in()
    operator.post(f"/admin/renewals/{filed['id']}/done")
    storage.certificates.set_certificate_status(db, certificate(db, KEMAL)["id"], "suspend", "suspended", "",
                                                clock())
    result = runner.invoke(args=["kamusm", "certificates", "export"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    renewal = [line for line in lines if line.get("kind") == "renewal"]
    assert [(line["action"], line["status"]) for line in renewal] == [("renewal_request", "open"),
                                                                      ("renewal_done", "done")]
    assert renewal[0]["certificate_serial"] == certificate(db)["serial_hex"] and renewal[0]["card_serial"]
    assert [line["at"] for line in lines] == sorted(line["at"] for line in lines)
    assert any(line.get("action") == "suspend" for line in lines)
    assert SELIN["identity"] not in result.output

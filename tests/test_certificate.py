"""Sertifika Durumu over HTTP: list, suspend, resume, revoke with the step-up; /crl.der and /ocsp
without login; the portal without a CA of its own; the export command."""
from __future__ import annotations

import base64
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from kamusm import ca, certificates, storage
from kamusm.cli.certificate_commands import certificates_cli
from kamusm.web.factory import create_app
from tests.conftest import (
    KEMAL,
    SELIN,
    AuthActions,
    audit_events,
    csrf_token,
    id_of,
    latest_code,
    load_demo,
    open_db,
    post,
    with_demo_certificates,
)

RECENT_CODE_SECONDS = 300


@pytest.fixture
def app(app):
    """tests/conftest.py's app, plus the demo CA and the demo holders' certificates (`kamusm demo`)."""
    return with_demo_certificates(app)


def own(db, holder=SELIN) -> dict:
    return storage.certificates.holder_certificates(db, id_of(db, holder))[-1]


def status(db, holder=SELIN) -> str:
    return own(db, holder)["status"]


def sms_count(db) -> int:
    return len(storage.outbox.latest_outbox(db, "sms", 100))


def crl_serials(client) -> dict[int, x509.ReasonFlags | None]:
    crl = x509.load_der_x509_crl(client.get("/crl.der").data)
    return {entry.serial_number: next((ext.value.reason for ext in entry.extensions), None) for entry in crl}


def wrong_code(app) -> str:
    return "000000" if latest_code(app) != "000000" else "111111"


def test_list_shows_serial_validity_status_and_the_final_warning(client, auth, db, clock):
    auth.login()
    response = client.get("/certificate")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    row = own(db)
    issued_year = str(datetime.fromtimestamp(clock(), timezone.utc).year)  # issued today, not on the card's date
    for text in (row["serial_hex"], "14*****", "Geçerli", issued_year, "Askıya Al", "İptal Et", "İptal Nedeni",
                 "İptal işlemi kalıcıdır", "geri alınamayacağını anladım"):
        assert text in page
    assert "Askıyı Kaldır" not in page
    assert SELIN["identity"] not in page and SELIN["card_serial"] not in page
    assert own(db, KEMAL)["serial_hex"] not in page


def test_menu_links_to_the_screen(client, auth):
    auth.login()
    assert 'href="/certificate"' in client.get("/menu").get_data(as_text=True)


@pytest.mark.parametrize("method", ["get", "post"])
def test_screen_needs_a_full_login(client, auth, method):
    auth.word()
    response = getattr(client, method)("/certificate", data={"csrf_token": csrf_token(client, "/login/sms"),
                                                             "action": "suspend", "certificate": "1"})
    assert response.status_code == 303 and response.headers["Location"] == "/login/sms"


def test_post_without_csrf_token_is_refused(client, auth, db):
    auth.login()
    response = client.post("/certificate", data={"action": "suspend", "certificate": str(own(db)["id"])})
    assert response.status_code == 400 and status(db) == "valid"


def test_suspend_right_after_login_uses_the_login_code(client, auth, db):
    auth.login()
    sent = sms_count(db)
    response = post(client, "/certificate", action="suspend", certificate=own(db)["id"])
    assert response.status_code == 303 and response.headers["Location"] == "/certificate"
    assert status(db) == "suspended" and sms_count(db) == sent
    page = client.get("/certificate").get_data(as_text=True)
    assert "Askıda" in page and "Askıyı Kaldır" in page and "Askıya Al<" not in page
    assert crl_serials(client) == {int(own(db)["serial_hex"], 16): x509.ReasonFlags.certificate_hold}


def test_suspend_later_needs_a_fresh_code(client, auth, db, app, clock):
    auth.login()
    clock.advance(RECENT_CODE_SECONDS + 1)
    certificate_id = own(db)["id"]
    sent = sms_count(db)
    stepup = post(client, "/certificate", action="suspend", certificate=certificate_id)
    page = stepup.get_data(as_text=True)
    assert stepup.status_code == 200 and 'id="certificate_stepup"' in page and "Askıya Al" in page
    assert sms_count(db) == sent + 1 and status(db) == "valid"

    wrong = post(client, "/certificate", action="suspend", certificate=certificate_id, code=wrong_code(app))
    assert wrong.status_code == 422 and 'id="certificate_stepup"' in wrong.get_data(as_text=True)
    assert status(db) == "valid"
    empty = post(client, "/certificate", action="suspend", certificate=certificate_id, code="")
    assert empty.status_code == 422 and status(db) == "valid"

    right = post(client, "/certificate", action="suspend", certificate=certificate_id, code=latest_code(app))
    assert right.status_code == 303 and status(db) == "suspended"


def test_resume_takes_it_off_the_crl(client, auth, db):
    auth.login()
    certificate_id = own(db)["id"]
    post(client, "/certificate", action="suspend", certificate=certificate_id)
    response = post(client, "/certificate", action="resume", certificate=certificate_id)
    assert response.status_code == 303 and status(db) == "valid"
    assert crl_serials(client) == {}
    assert own(db)["reason"] == ""


@pytest.mark.parametrize("fields, message", [
    ({"confirm": "yes"}, "iptal nedeni seçiniz"),
    ({"reason": "", "confirm": "yes"}, "iptal nedeni seçiniz"),
    ({"reason": "cACompromise", "confirm": "yes"}, "iptal nedeni seçiniz"),
    ({"reason": "certificateHold", "confirm": "yes"}, "iptal nedeni seçiniz"),
    ({"reason": "keyCompromise"}, "kutuyu işaretleyerek"),
    ({"reason": "keyCompromise", "confirm": "on"}, "kutuyu işaretleyerek"),
])
def test_revoke_needs_a_listed_reason_and_the_box(client, auth, db, clock, fields, message):
    auth.login()
    clock.advance(RECENT_CODE_SECONDS + 1)  # a valid request would now need a code: none is sent for a bad one
    sent = sms_count(db)
    response = post(client, "/certificate", action="revoke", certificate=own(db)["id"], **fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and message in page and 'id="certificate_list"' in page
    assert status(db) == "valid" and sms_count(db) == sent


def test_revoke_is_final(client, auth, db, app, clock):
    auth.login()
    clock.advance(RECENT_CODE_SECONDS + 1)
    row = own(db)
    stepup = post(client, "/certificate", action="revoke", certificate=row["id"], reason="keyCompromise", confirm="yes")
    page = stepup.get_data(as_text=True)
    assert stepup.status_code == 200 and "geri alınamaz" in page and 'value="keyCompromise"' in page
    response = post(client, "/certificate", action="revoke", certificate=row["id"], reason="keyCompromise",
                    confirm="yes", code=latest_code(app))
    assert response.status_code == 303
    revoked = own(db)
    assert (revoked["status"], revoked["reason"]) == ("revoked", "keyCompromise")
    assert crl_serials(client) == {int(row["serial_hex"], 16): x509.ReasonFlags.key_compromise}

    for action in ("resume", "suspend", "revoke"):
        refused = post(client, "/certificate", action=action, certificate=row["id"], reason="superseded", confirm="yes")
        assert refused.status_code == 409
        assert "İptal edilmiş bir sertifikanın durumu değiştirilemez" in refused.get_data(as_text=True)
    assert own(db)["reason"] == "keyCompromise"
    page = client.get("/certificate").get_data(as_text=True)
    assert "İptal Edildi" in page and "Kartım ya da PIN" in page and 'data-action=' not in page


@pytest.mark.parametrize("action, from_status, message", [
    ("resume", "valid", "askıda değil"),
    ("suspend", "suspended", "zaten askıda"),
])
def test_impossible_transitions_are_409(client, auth, db, action, from_status, message):
    auth.login()
    certificate_id = own(db)["id"]
    if from_status == "suspended":
        post(client, "/certificate", action="suspend", certificate=certificate_id)
    response = post(client, "/certificate", action=action, certificate=certificate_id)
    assert response.status_code == 409 and message in response.get_data(as_text=True)
    assert status(db) == from_status


@pytest.mark.parametrize("action", ["", "delete", "SUSPEND", "renew"])
def test_unknown_action_is_422(client, auth, db, action):
    auth.login()
    response = post(client, "/certificate", action=action, certificate=own(db)["id"])
    assert response.status_code == 422 and "Bilinmeyen bir işlem" in response.get_data(as_text=True)
    assert status(db) == "valid"


@pytest.mark.parametrize("certificate", ["", "abc", "-1", "1.0", "999999", "9" * 40])
def test_unknown_certificate_is_404(client, auth, db, certificate):
    auth.login()
    response = post(client, "/certificate", action="suspend", certificate=certificate)
    assert response.status_code == 404 and "Sertifika bulunamadı" in response.get_data(as_text=True)


def test_someone_elses_certificate_is_404(client, auth, db):
    auth.login()
    kemal = own(db, KEMAL)
    for action, extra in (("suspend", {}), ("revoke", {"reason": "keyCompromise", "confirm": "yes"})):
        response = post(client, "/certificate", action=action, certificate=kemal["id"], **extra)
        assert response.status_code == 404
    assert status(db, KEMAL) == "valid"


def test_htmx_answers_are_partials(client, auth, db, app, clock):
    auth.login()
    certificate_id = own(db)["id"]
    done = post(client, "/certificate", htmx=True, action="suspend", certificate=certificate_id)
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "<html" not in body and 'id="certificate_done"' in body
    assert "askıya alındı" in body

    clock.advance(RECENT_CODE_SECONDS + 1)
    stepup = post(client, "/certificate", htmx=True, action="resume", certificate=certificate_id)
    assert 'id="certificate_stepup"' in stepup.get_data(as_text=True) and "<html" not in stepup.get_data(as_text=True)
    bad = post(client, "/certificate", htmx=True, action="nope", certificate=certificate_id)
    assert bad.status_code == 422 and 'id="certificate_list"' in bad.get_data(as_text=True)


def test_changes_are_audited(client, auth, db):
    auth.login()
    certificate_id = own(db)["id"]
    post(client, "/certificate", action="suspend", certificate=certificate_id)
    post(client, "/certificate", action="resume", certificate=certificate_id)
    post(client, "/certificate", action="revoke", certificate=certificate_id, reason="superseded")  # no box: rejected
    post(client, "/certificate", action="revoke", certificate=certificate_id, reason="superseded", confirm="yes")
    rows = [row for row in storage.audit_log.audit_entries(db) if row["event"].startswith("certificate.")]
    events = [(row["event"], row["outcome"]) for row in rows if row["event"] != "certificate.issue"]
    assert events == [("certificate.suspend", "ok"), ("certificate.resume", "ok"), ("certificate.change", "rejected"),
                      ("certificate.revoke", "ok")]
    revoke = json.loads(rows[-1]["detail"])
    assert revoke["reason"] == "superseded" and revoke["serial"] == own(db)["serial_hex"]
    assert all(row["holder_id"] == id_of(db) for row in rows[-4:])


def ocsp_request_for(app, db, nonce: bytes | None = None) -> bytes:
    cert = x509.load_der_x509_certificate(own(db)["der"])
    issuer = ca.load_ca(Path(app.instance_path)).cert
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def test_crl_without_login(client):
    response = client.get("/crl.der")
    assert response.status_code == 200 and response.mimetype == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.data)
    assert len(crl) == 0 and crl.next_update_utc > crl.last_update_utc


def test_ocsp_post_and_get_without_login_or_csrf(client, app, db):
    request_der = ocsp_request_for(app, db)
    posted = client.post("/ocsp", data=request_der, headers={"Content-Type": "application/ocsp-request"})
    assert posted.status_code == 200 and posted.mimetype == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(posted.data).certificate_status == ocsp.OCSPCertStatus.GOOD
    fetched = client.get("/ocsp/" + base64.b64encode(request_der).decode())
    assert fetched.status_code == 200
    assert ocsp.load_der_ocsp_response(fetched.data).certificate_status == ocsp.OCSPCertStatus.GOOD


def test_ocsp_get_keeps_slashes_and_plus_signs_of_base64(client, app, db):
    """RFC 6960 A.1 puts base64 in the path, where '/' and '//' are data, not separators."""
    for _attempt in range(20_000):
        nonce = os.urandom(16)
        encoded = base64.b64encode(ocsp_request_for(app, db, nonce=nonce)).decode()
        if "//" in encoded and "+" in encoded:
            break
    else:
        pytest.fail("no request with '//' and '+' in its base64 was found")
    response = client.get("/ocsp/" + encoded)
    assert response.status_code == 200
    assert ocsp.load_der_ocsp_response(response.data).extensions.get_extension_for_class(
        x509.OCSPNonce).value.nonce == nonce


def test_ocsp_sees_a_revocation_at_once(client, auth, app, db):
    request_der = ocsp_request_for(app, db)
    auth.login()
    post(client, "/certificate", action="revoke", certificate=own(db)["id"], reason="keyCompromise", confirm="yes")
    answer = ocsp.load_der_ocsp_response(client.post("/ocsp", data=request_der).data)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.key_compromise


@pytest.mark.parametrize("method, payload", [
    ("post", b""), ("post", b"not an ocsp request"), ("post", b"\x30\x80"), ("post", os.urandom(300)),
    ("get", "not-base64!!"), ("get", "AAAA"), ("get", base64.b64encode(b"\x30\x03\x02\x01\x01").decode()),
])
def test_malformed_ocsp_is_an_ocsp_error_not_a_500(client, method, payload):
    if method == "post":
        response = client.post("/ocsp", data=payload, headers={"Content-Type": "application/ocsp-request"})
    else:
        response = client.get("/ocsp/" + payload)
    assert response.status_code == 200 and response.mimetype == "application/ocsp-response"  # RFC 6960 A.1
    assert ocsp.load_der_ocsp_response(response.data).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_refuses_a_cross_site_browser_post(client, app, db):
    response = client.post("/ocsp", data=ocsp_request_for(app, db), headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403


@pytest.fixture
def elsewhere_app(app_config):
    """A real deployment (not demo mode): the institution's CA lives elsewhere. A stray demo CA in
    the instance folder must not be used."""
    app = create_app({**app_config, "KAMUSM_DEMO": False})
    load_demo(app)
    with open_db(app) as db:  # what the roster import does for the cards it makes
        certificates.issue_for_new_cards(db, Path(app.instance_path), False, "", app.config["CLOCK"]())
    ca.create_ca(Path(app.instance_path), app.config["CLOCK"]())
    return app


def test_without_own_ca_changes_are_recorded_for_the_export(elsewhere_app, tmp_path):
    client = elsewhere_app.test_client()
    AuthActions(client, elsewhere_app).login()
    page = client.get("/certificate").get_data(as_text=True)
    for text in ("sertifika hizmet sağlayıcısında", "Geçerli", "12 Mar 2014 tarihinden itibaren"):
        assert text in page
    with open_db(elsewhere_app) as db:
        row = own(db)
        assert row["serial_hex"] is None and row["der"] is None
        assert post(client, "/certificate", action="suspend", certificate=row["id"]).status_code == 303
        assert status(db) == "suspended"
        assert client.get("/crl.der").status_code == 404
        answer = client.post("/ocsp", data=b"anything")
        assert answer.status_code == 404
        assert ocsp.load_der_ocsp_response(answer.data).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
        assert storage.certificates.get_crl_state(db) is None
    result = elsewhere_app.test_cli_runner().invoke(certificates_cli, ["export"])
    line = json.loads(result.output)
    assert line["card_serial"] == SELIN["card_serial"] and line["certificate_serial"] is None
    assert (line["action"], line["status"], line["reason"]) == ("suspend", "suspended", "certificateHold")


def test_export_prints_json_lines_since_a_time(client, auth, db, clock, runner):
    auth.login()
    certificate_id = own(db)["id"]
    post(client, "/certificate", action="suspend", certificate=certificate_id)
    clock.advance(10)
    middle = clock()
    post(client, "/certificate", action="resume", certificate=certificate_id)
    post(client, "/certificate", action="revoke", certificate=certificate_id, reason="cessationOfOperation",
         confirm="yes")

    lines = [json.loads(line) for line in runner.invoke(certificates_cli, ["export"]).output.splitlines()]
    assert [(line["action"], line["status"], line["reason"]) for line in lines] == [
        ("suspend", "suspended", "certificateHold"), ("resume", "valid", None),
        ("revoke", "revoked", "cessationOfOperation")]
    assert {line["certificate_serial"] for line in lines} == {own(db)["serial_hex"]}
    assert all(line["card_serial"] == SELIN["card_serial"] and line["at"].endswith("+00:00") for line in lines)
    assert SELIN["identity"] not in json.dumps(lines)

    later = runner.invoke(certificates_cli, ["export", "--since", str(middle)]).output.splitlines()
    assert [json.loads(line)["action"] for line in later] == ["resume", "revoke"]
    iso = lines[1]["at"].replace("+00:00", "")
    assert len(runner.invoke(certificates_cli, ["export", "--since", iso]).output.splitlines()) == 2
    bad = runner.invoke(certificates_cli, ["export", "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output
    assert ("admin.certificates_export", "ok") in audit_events(db)


def test_pem_prints_the_card_certificate(runner, db):
    result = runner.invoke(certificates_cli, ["pem", SELIN["card_serial"]])
    cert = x509.load_pem_x509_certificate(result.output.encode())
    assert ca.serial_hex(cert.serial_number) == own(db)["serial_hex"]
    missing = runner.invoke(certificates_cli, ["pem", "99999999"])
    assert missing.exit_code == 1 and "no certificate" in missing.output


def test_a_change_that_lost_a_race_is_refused(app, db):
    holder_id = id_of(db)
    row = own(db)
    change = certificates.read_change(db, holder_id, {"action": "suspend", "certificate": str(row["id"])})
    storage.certificates.set_certificate_status(db, row["id"], "revoke", "revoked", "keyCompromise", 1.0)
    with pytest.raises(certificates.TransitionRefused):
        certificates.apply_change(db, None, change, holder_id, "", 2.0)
    assert status(db) == "revoked"


@pytest.mark.parametrize(("length", "well_formed"), [(1, True), (32, True), (33, False), (64, False)])
def test_a_nonce_over_32_octets_is_a_malformed_request(client, app, db, length, well_formed):
    response = client.post("/ocsp", data=ocsp_request_for(app, db, nonce=os.urandom(length)),
                           headers={"Content-Type": "application/ocsp-request"})
    answer = ocsp.load_der_ocsp_response(response.data)
    assert response.status_code == 200
    expected = ocsp.OCSPResponseStatus.SUCCESSFUL if well_formed else ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert answer.response_status == expected


def test_the_ca_certificate_is_served_and_named_in_each_certificate(client, app, db):
    response = client.get("/ca.crt")
    assert response.status_code == 200 and response.mimetype == "application/pkix-cert"
    served = x509.load_der_x509_certificate(response.data)
    assert served == ca.load_ca(Path(app.instance_path)).cert
    cert = x509.load_der_x509_certificate(own(db)["der"])
    access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    issuers = [entry.access_location.value for entry in access
               if entry.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS]
    assert issuers == ["http://127.0.0.1:5000/ca.crt"]


def test_crl_and_ocsp_get_answers_are_cacheable_until_next_update(client, app, db, clock):
    from email.utils import parsedate_to_datetime

    crl_response = client.get("/crl.der")
    crl = x509.load_der_x509_crl(crl_response.data)
    cache = crl_response.headers["Cache-Control"]
    assert "public" in cache and "must-revalidate" in cache and "no-store" not in cache
    assert int(re.search(r"max-age=(\d+)", cache).group(1)) == int(crl.next_update_utc.timestamp() - clock())
    assert parsedate_to_datetime(crl_response.headers["Expires"]) == crl.next_update_utc
    assert crl_response.headers["ETag"] and "Set-Cookie" not in crl_response.headers
    encoded = base64.b64encode(ocsp_request_for(app, db)).decode()
    got = client.get("/ocsp/" + encoded)
    answer = ocsp.load_der_ocsp_response(got.data)
    assert parsedate_to_datetime(got.headers["Expires"]) == answer.next_update_utc
    assert "public" in got.headers["Cache-Control"]
    posted = client.post("/ocsp", data=ocsp_request_for(app, db), headers={"Content-Type": "application/ocsp-request"})
    assert posted.headers["Cache-Control"] == "no-store"  # RFC 5019 caches GET answers only
    assert client.get("/ocsp/AAAA").headers["Cache-Control"] == "no-store"  # a malformedRequest is not kept


def test_a_revocation_after_a_hold_dates_from_the_hold(client, auth, app, db, clock):
    request_der = ocsp_request_for(app, db)
    auth.login()
    certificate_id = own(db)["id"]
    post(client, "/certificate", action="suspend", certificate=certificate_id)
    held_at = datetime.fromtimestamp(int(clock()), timezone.utc)
    clock.advance(3 * 86400)  # three days on hold, then the holder logs in again and revokes
    auth.login()
    post(client, "/certificate", action="revoke", certificate=certificate_id, reason="keyCompromise", confirm="yes")
    assert own(db)["status"] == "revoked"
    crl = x509.load_der_x509_crl(client.get("/crl.der").data)
    entry = crl.get_revoked_certificate_by_serial_number(int(own(db)["serial_hex"], 16))
    assert entry.revocation_date_utc.replace(microsecond=0) == held_at
    answer = ocsp.load_der_ocsp_response(client.post("/ocsp", data=request_der).data)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_time_utc.replace(microsecond=0) == held_at
    assert answer.revocation_reason == x509.ReasonFlags.key_compromise


def test_openssl_asks_about_two_certificates_and_gets_a_single_response_for_each(client, auth, app, db, tmp_path):
    import subprocess

    issuer = tmp_path / "ca.pem"
    issuer.write_bytes(ca.load_ca(Path(app.instance_path)).cert.public_bytes(serialization.Encoding.PEM))
    paths = []
    for holder in (SELIN, KEMAL):
        path = tmp_path / f"{holder['card_serial']}.pem"
        path.write_bytes(x509.load_der_x509_certificate(own(db, holder)["der"]).public_bytes(
            serialization.Encoding.PEM))
        paths.append(path)
    auth.login()
    post(client, "/certificate", action="suspend", certificate=own(db)["id"])
    certs = [arg for path in paths for arg in ("-cert", str(path))]
    subprocess.run(["openssl", "ocsp", "-issuer", str(issuer), *certs, "-reqout", str(tmp_path / "req.der")],
                   check=True, capture_output=True)
    response = client.post("/ocsp", data=(tmp_path / "req.der").read_bytes(),
                           headers={"Content-Type": "application/ocsp-request"})
    assert response.status_code == 200
    (tmp_path / "resp.der").write_bytes(response.data)
    checked = subprocess.run(["openssl", "ocsp", "-respin", str(tmp_path / "resp.der"), "-issuer", str(issuer),
                              "-CAfile", str(issuer), *certs, "-no_nonce"],
                             capture_output=True, text=True)
    report = checked.stdout + checked.stderr
    assert checked.returncode == 0, report
    assert "Response verify OK" in report
    assert f"{paths[0]}: revoked" in report and "Reason: certificateHold" in report
    assert f"{paths[1]}: good" in report
    answer = ocsp.load_der_ocsp_response(response.data)
    assert [single.certificate_status for single in answer.responses] == [ocsp.OCSPCertStatus.REVOKED,
                                                                          ocsp.OCSPCertStatus.GOOD]
    asked = subprocess.run(["openssl", "ocsp", "-reqin", str(tmp_path / "req.der"), "-req_text"],
                           check=True, capture_output=True, text=True).stdout
    nonce = answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce.hex().upper() in asked.replace(":", "")  # the request's nonce, echoed once for all


def test_a_relying_party_validating_inside_the_hold_sees_the_certificate_revoked(client, auth, app, db, clock):
    """pyhanko-certvalidator, revocation required, at points in time before, inside and after the hold."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from asn1crypto import crl as asn1_crl
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import RevokedError

    auth.login()
    certificate_id = own(db)["id"]
    held_at = datetime.fromtimestamp(clock(), timezone.utc)
    post(client, "/certificate", action="suspend", certificate=certificate_id)
    clock.advance(3 * 86400)
    auth.login()
    post(client, "/certificate", action="revoke", certificate=certificate_id, reason="keyCompromise", confirm="yes")
    root = asn1_x509.Certificate.load(ca.load_ca(Path(app.instance_path)).cert.public_bytes(
        serialization.Encoding.DER))
    crl = asn1_crl.CertificateList.load(client.get("/crl.der").data)
    cert = asn1_x509.Certificate.load(own(db)["der"])

    def validate_at(moment):
        context = ValidationContext(trust_roots=[root], crls=[crl], moment=moment, allow_fetching=False,
                                    revocation_mode="require", retroactive_revinfo=True)
        # In a thread of its own: Playwright's sync API, used by the browser tests in this process, keeps an
        # event loop running in the main thread, where asyncio.run() refuses to start another.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(lambda: asyncio.run(CertificateValidator(
                cert, validation_context=context).async_validate_usage(set()))).result()

    assert validate_at(held_at - timedelta(hours=1))
    for moment in (held_at + timedelta(hours=1), held_at + timedelta(days=2), held_at + timedelta(days=4)):
        with pytest.raises(RevokedError):
            validate_at(moment)

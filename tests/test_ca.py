"""The demo CA: root and end-entity fields, CRLs, OCSP answers; then the same checked by Debian's openssl,
the OCSP ones against the portal on a live port, before and after suspend, resume and revoke."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from werkzeug.serving import make_server

from kamusm import ca, certificates, storage
from tests.conftest import KEMAL, SELIN

NOW = datetime(2026, 5, 9, 12, 0, tzinfo=timezone.utc).timestamp()
PUBLIC_URL = "https://imza.example.edu.tr"
OPENSSL_TIMEOUT_SECONDS = 10


@pytest.fixture
def authority(tmp_path) -> ca.Authority:
    return ca.create_ca(tmp_path, NOW)[0]


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None,
                 algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    """An OCSP request; SHA-1 is what openssl and most clients send for the CertID."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def issue(authority: ca.Authority, now: float = NOW) -> x509.Certificate:
    return ca.issue_certificate(authority, SELIN["name"], SELIN["card_serial"], PUBLIC_URL, now)


def test_root_is_a_clearly_named_demo_ca_with_a_private_key_file(tmp_path, authority):
    root = authority.cert
    assert "DEMO" in root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert isinstance(authority.key, ec.EllipticCurvePrivateKey) and authority.key.curve.name == "secp256r1"
    root.verify_directly_issued_by(root)
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in (tmp_path / "ca.pem").read_bytes()
    again, created = ca.create_ca(tmp_path, NOW + 3600)
    assert not created and again.cert == root


def test_mismatched_ca_files_are_refused(tmp_path, authority):
    other = tmp_path / "other"
    ca.create_ca(other, NOW)
    shutil.copy(other / "ca.pem", tmp_path / "ca.pem")
    with pytest.raises(ca.CAError):
        ca.load_ca(tmp_path)


def test_no_ca_files_means_no_ca(tmp_path):
    assert ca.load_ca(tmp_path) is None


def test_end_entity_certificate_fields(authority):
    cert = issue(authority)
    cert.verify_directly_issued_by(authority.cert)
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SELIN["name"]
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == SELIN["card_serial"]
    assert SELIN["identity"] not in subject.rfc4514_string()
    assert cert.serial_number >= 2 ** 64  # 159 random bits; below 2**64 with probability 2**-95
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(entry.access_method, entry.access_location.value) for entry in aia] == [
        (AuthorityInformationAccessOID.OCSP, f"{PUBLIC_URL}/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{PUBLIC_URL}/ca.crt")]
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value == f"{PUBLIC_URL}/crl.der"
    today = datetime.fromtimestamp(NOW, timezone.utc).replace(hour=0, minute=0, second=0)
    assert cert.not_valid_before_utc == today  # issued today, whatever the card's own date
    assert issue(authority).public_key() != cert.public_key()  # a fresh key every time


def test_urls_default_to_the_local_portal(authority):
    cert = ca.issue_certificate(authority, "A B", "1", "", NOW)
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_location.value == "http://127.0.0.1:5000/ocsp"


def test_validity_runs_three_years_from_today():
    not_before, not_after = ca.certificate_validity(NOW, datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert not_before <= datetime.fromtimestamp(NOW, timezone.utc) < not_before + timedelta(days=1)
    assert not_after == not_before + timedelta(days=ca.CERT_VALIDITY_DAYS)


def test_validity_never_outlives_the_ca():
    ca_end = datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert ca.certificate_validity(NOW, ca_end)[1] == ca_end


def test_serial_hex_matches_openssl_spelling():
    assert ca.serial_hex(0xABC) == "0ABC" and ca.serial_hex(0x1F2E) == "1F2E"


def test_crl_fields_and_reasons(authority):
    entries = [ca.RevokedEntry(11, NOW - 60, "keyCompromise"), ca.RevokedEntry(12, NOW - 30, ca.REASON_HOLD),
               ca.RevokedEntry(13, NOW - 10, ca.REASON_UNSPECIFIED)]
    crl = x509.load_der_x509_crl(ca.build_crl(authority, entries, 7, NOW))
    assert crl.is_signature_valid(authority.key.public_key())
    assert crl.issuer == authority.cert.subject
    assert crl.last_update_utc.timestamp() == NOW
    assert crl.next_update_utc.timestamp() == NOW + ca.CRL_VALIDITY_SECONDS
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    reasons = {}
    for entry in crl:
        found = [ext.value.reason for ext in entry.extensions if isinstance(ext.value, x509.CRLReason)]
        reasons[entry.serial_number] = found[0] if found else None
    assert reasons == {11: x509.ReasonFlags.key_compromise, 12: x509.ReasonFlags.certificate_hold, 13: None}
    assert crl.get_revoked_certificate_by_serial_number(11).revocation_date_utc.timestamp() == NOW - 60


def answer(authority, request_der, statuses=None):
    der, well_formed = ca.answer_ocsp(authority, request_der, lambda serial: (statuses or {}).get(serial), NOW)
    return ocsp.load_der_ocsp_response(der), well_formed


def test_ocsp_good_revoked_unknown_with_nonce(authority):
    cert = issue(authority)
    nonce = os.urandom(16)
    good, well_formed = answer(authority, ocsp_request(cert, authority.cert, nonce),
                               {cert.serial_number: ca.CertStatus(revoked=False)})
    assert well_formed and good.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD and good.serial_number == cert.serial_number
    assert good.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert good.this_update_utc.timestamp() == NOW
    assert good.next_update_utc.timestamp() == NOW + ca.OCSP_VALIDITY_SECONDS
    authority.key.public_key().verify(good.signature, good.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))

    revoked, _ = answer(authority, ocsp_request(cert, authority.cert, algorithm=hashes.SHA256()),
                        {cert.serial_number: ca.CertStatus(True, NOW - 5, "keyCompromise")})
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason == x509.ReasonFlags.key_compromise
    assert revoked.revocation_time_utc.timestamp() == NOW - 5
    assert revoked.hash_algorithm.name == "sha256"
    with pytest.raises(x509.ExtensionNotFound):
        revoked.extensions.get_extension_for_class(x509.OCSPNonce)

    held, _ = answer(authority, ocsp_request(cert, authority.cert),
                     {cert.serial_number: ca.CertStatus(True, NOW - 5, ca.REASON_HOLD)})
    assert held.revocation_reason == x509.ReasonFlags.certificate_hold

    unknown, _ = answer(authority, ocsp_request(cert, authority.cert))
    assert unknown.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


def test_ocsp_for_another_issuer_is_unknown(tmp_path, authority):
    other = ca.create_ca(tmp_path / "other", NOW)[0]
    cert = issue(other)
    response, well_formed = answer(authority, ocsp_request(cert, other.cert),
                                   {cert.serial_number: ca.CertStatus(revoked=False)})
    assert well_formed and response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


@pytest.mark.parametrize("request_der", [b"", b"\x00", b"garbage" * 20, b"\x30\x03\x02\x01\x01"])
def test_malformed_ocsp_requests_get_malformed_request(authority, request_der):
    response, well_formed = answer(authority, request_der)
    assert not well_formed and response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def tlvs(der: bytes) -> list[tuple[int, bytes]]:
    """The (tag, contents) of each DER element in der, one level deep."""
    found, at = [], 0
    while at < len(der):
        first = der[at + 1]
        head, size = (2, first) if first < 0x80 else (2 + (first & 0x7F), int.from_bytes(
            der[at + 2:at + 2 + (first & 0x7F)], "big"))
        found.append((der[at], der[at + head:at + head + size]))
        at += head + size
    return found


def test_ocsp_requests_for_several_certificates_get_a_single_response_each_and_too_many_are_malformed(authority):
    """RFC 6960 4.2.2.3. OCSPRequest { TBSRequest { requestList, [2] requestExtensions } }, rebuilt
    with the requestList's one Request repeated."""
    cert = issue(authority)
    single = ocsp_request(cert, authority.cert, os.urandom(16))
    (_, tbs), = tlvs(tlvs(single)[0][1])
    (list_tag, request_list), (extensions_tag, extensions) = tlvs(tbs)

    def repeated(times: int) -> bytes:
        return tlv(0x30, tlv(0x30, tlv(list_tag, request_list * times) + tlv(extensions_tag, extensions)))

    response, well_formed = answer(authority, repeated(3))
    assert well_formed and len(list(response.responses)) == 3
    assert {single.serial_number for single in response.responses} == {cert.serial_number}
    authority.cert.public_key().verify(response.signature, response.tbs_response_bytes,
                                       ec.ECDSA(response.signature_hash_algorithm))
    response, well_formed = answer(authority, repeated(ca.MAX_CERTS_PER_REQUEST + 1))
    assert not well_formed and response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_requests_cryptography_refuses_get_malformed_request(authority):
    """OCSPRequest { TBSRequest { requestList, [2] requestExtensions } }, rebuilt with the nonce doubled;
    and a CertID with a negative serial number, which no certificate has."""
    cert = issue(authority)
    single = ocsp_request(cert, authority.cert, os.urandom(16))
    serial = cert.serial_number.to_bytes(cert.serial_number.bit_length() // 8 + 1, "big")  # DER INTEGER contents
    negative = single.replace(tlv(0x02, serial), tlv(0x02, b"\x80" + serial[1:]))
    (_, tbs), = tlvs(tlvs(single)[0][1])
    (list_tag, request_list), (extensions_tag, extensions) = tlvs(tbs)
    (_, extension_list), = tlvs(extensions)
    two_nonces = tlv(0x30, tlv(0x30, tlv(list_tag, request_list) + tlv(extensions_tag, tlv(0x30, extension_list * 2))))
    assert tlv(0x30, tlv(0x30, tlv(list_tag, request_list) + tlv(extensions_tag, extensions))) == single
    assert negative != single
    for request_der in (two_nonces, negative):
        response, well_formed = answer(authority, request_der)
        assert not well_formed and response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_truncated_ocsp_request_gets_malformed_request(authority):
    good = ocsp_request(issue(authority), authority.cert, os.urandom(16))
    for cut in range(1, len(good)):
        response, well_formed = answer(authority, good[:cut])
        assert not well_formed and response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def change(db, authority, holder_id: int, certificate_id: int, action: str, now: float, reason: str = "") -> None:
    """What POST /certificate does once the step-up is done."""
    form = {"action": action, "certificate": str(certificate_id), "reason": reason, "confirm": "yes"}
    certificates.apply_change(db, authority, certificates.read_change(db, holder_id, form), holder_id, "", now)


@pytest.fixture
def demo_ca(app, db, clock):
    """The app of tests/conftest.py with the demo CA and the demo holders' certificates."""
    certificates.issue_demo_certificates(db, Path(app.instance_path), "", clock())
    return ca.load_ca(Path(app.instance_path))


def selin(db) -> tuple[int, dict]:
    holder_id = storage.holders.find_holder(db, SELIN["identity"])["id"]
    return holder_id, storage.certificates.holder_certificates(db, holder_id)[0]


def crl_now(db) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(storage.certificates.get_crl_state(db)["der"])


def test_demo_certificates_for_every_card(db, demo_ca):
    for holder in (SELIN, KEMAL):
        rows = storage.certificates.holder_certificates(db, storage.holders.find_holder(db, holder["identity"])["id"])
        assert len(rows) == 1 and rows[0]["status"] == "valid" and rows[0]["card_serial"] == holder["card_serial"]
        cert = x509.load_der_x509_certificate(rows[0]["der"])
        cert.verify_directly_issued_by(demo_ca.cert)
        assert ca.serial_hex(cert.serial_number) == rows[0]["serial_hex"]


def test_crl_before_and_after_suspend_resume_revoke(db, demo_ca, clock):
    holder_id, row = selin(db)
    serial = int(row["serial_hex"], 16)
    first = crl_now(db)
    assert len(first) == 0

    change(db, demo_ca, holder_id, row["id"], "suspend", clock())
    held = crl_now(db)
    entry = held.get_revoked_certificate_by_serial_number(serial)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.certificate_hold

    clock.advance(10)
    change(db, demo_ca, holder_id, row["id"], "resume", clock())
    resumed = crl_now(db)
    assert resumed.get_revoked_certificate_by_serial_number(serial) is None

    clock.advance(10)
    change(db, demo_ca, holder_id, row["id"], "revoke", clock(), "superseded")
    revoked = crl_now(db)
    entry = revoked.get_revoked_certificate_by_serial_number(serial)
    assert entry.revocation_date_utc.timestamp() == int(clock())
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.superseded
    numbers = [crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
               for crl in (first, held, resumed, revoked)]
    assert numbers == sorted(set(numbers))
    assert all(crl.is_signature_valid(demo_ca.key.public_key()) for crl in (first, held, resumed, revoked))


def test_crl_is_resigned_before_it_goes_stale(db, demo_ca, clock):
    first = certificates.current_crl(db, demo_ca, clock())
    assert certificates.current_crl(db, demo_ca, clock() + 60) == first
    clock.advance(certificates.CRL_REFRESH_SECONDS)
    fresh = x509.load_der_x509_crl(certificates.current_crl(db, demo_ca, clock()))
    assert fresh.next_update_utc.timestamp() == int(clock()) + ca.CRL_VALIDITY_SECONDS


def test_demo_reset_replaces_a_revoked_certificate_and_keeps_it_revoked(app, db, demo_ca, clock):
    holder_id, row = selin(db)
    change(db, demo_ca, holder_id, row["id"], "revoke", clock(), "keyCompromise")
    assert certificates.issue_demo_certificates(db, Path(app.instance_path), "", clock()) == 1
    old, new = storage.certificates.holder_certificates(db, holder_id)
    assert (old["status"], new["status"]) == ("revoked", "valid") and new["card_serial"] == SELIN["card_serial"]
    assert crl_now(db).get_revoked_certificate_by_serial_number(int(old["serial_hex"], 16)) is not None
    assert certificates.issue_demo_certificates(db, Path(app.instance_path), "", clock()) == 0


@pytest.fixture(scope="session")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is missing: install Debian's openssl", pytrace=False)
        pytest.skip("openssl is missing")
    return path


def run(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_SECONDS)
    return done.stdout + done.stderr


@pytest.fixture
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="kamusm-ca-test-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def pems(tmp_path, app, db, demo_ca) -> tuple[Path, Path]:
    ca_pem = Path(app.instance_path) / "ca.pem"
    cert_pem = tmp_path / "selin.pem"
    der = selin(db)[1]["der"]
    cert_pem.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    return ca_pem, cert_pem


def test_openssl_reads_the_certificates(openssl, pems):
    ca_pem, cert_pem = pems
    assert f"{cert_pem}: OK" in run(openssl, "verify", "-CAfile", str(ca_pem), str(cert_pem))
    text = run(openssl, "x509", "-in", str(cert_pem), "-noout", "-text")
    assert "Digital Signature, Non Repudiation" in text
    assert "OCSP - URI:http://127.0.0.1:5000/ocsp" in text and "URI:http://127.0.0.1:5000/crl.der" in text
    assert f"serialNumber = {SELIN['card_serial']}" in text and "CA:FALSE" in text
    root = run(openssl, "x509", "-in", str(ca_pem), "-noout", "-text")
    assert "CA:TRUE, pathlen:0" in root and "Certificate Sign, CRL Sign" in root and "DEMO CA" in root


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=OPENSSL_TIMEOUT_SECONDS) as response:
        assert response.headers["Content-Type"] == "application/pkix-crl"
        return response.read()


def test_openssl_crl_and_verify_before_and_after_revoke(openssl, tmp_path, db, clock, demo_ca, pems, live_url):
    ca_pem, cert_pem = pems
    holder_id, row = selin(db)
    crl_der = tmp_path / "crl.der"
    crl_der.write_bytes(fetch(live_url + "/crl.der"))
    before = run(openssl, "crl", "-inform", "DER", "-in", str(crl_der), "-noout", "-text")
    assert "No Revoked Certificates." in before and "Next Update:" in before
    crl_pem = tmp_path / "crl.pem"
    run(openssl, "crl", "-inform", "DER", "-in", str(crl_der), "-out", str(crl_pem))
    verify = [openssl, "verify", "-crl_check", "-CAfile", str(ca_pem), "-CRLfile", str(crl_pem), str(cert_pem)]
    assert f"{cert_pem}: OK" in run(*verify)

    change(db, demo_ca, holder_id, row["id"], "revoke", clock(), "keyCompromise")
    crl_der.write_bytes(fetch(live_url + "/crl.der"))
    after = run(openssl, "crl", "-inform", "DER", "-in", str(crl_der), "-noout", "-text")
    assert f"Serial Number: {row['serial_hex']}" in after and "Key Compromise" in after
    run(openssl, "crl", "-inform", "DER", "-in", str(crl_der), "-out", str(crl_pem))
    assert "certificate revoked" in run(*verify)


def test_openssl_ocsp_follows_suspend_resume_revoke(openssl, db, clock, demo_ca, pems, live_url):
    ca_pem, cert_pem = pems
    holder_id, row = selin(db)
    query = [openssl, "ocsp", "-issuer", str(ca_pem), "-cert", str(cert_pem), "-CAfile", str(ca_pem),
             "-url", live_url + "/ocsp", "-resp_text"]

    def status() -> str:
        output = run(*query)
        assert "Response verify OK" in output, output
        assert "WARNING: no nonce in response" not in output
        return output

    assert f"{cert_pem}: good" in status()
    change(db, demo_ca, holder_id, row["id"], "suspend", clock())
    held = status()
    assert f"{cert_pem}: revoked" in held and "Reason: certificateHold" in held
    change(db, demo_ca, holder_id, row["id"], "resume", clock())
    assert f"{cert_pem}: good" in status()
    change(db, demo_ca, holder_id, row["id"], "revoke", clock(), "keyCompromise")
    revoked = status()
    assert f"{cert_pem}: revoked" in revoked and "Reason: keyCompromise" in revoked

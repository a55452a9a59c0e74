"""Signed receipts after a certificate status change or a vault delete: who, what, when, the CRL number and the
OCSP producedAt seen after it, signed under the receipt key and checked here as anyone would check them, with
`openssl cms -verify` (docs/receipts.md)."""
import re
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509

from kamusm import ca, receipts, storage
from kamusm.web.factory import create_app
from tests.conftest import KEMAL, SELIN, AuthActions, audit_events, id_of, load_demo, post, with_demo_certificates


@pytest.fixture
def app(app):
    return with_demo_certificates(app)


def own_certificate(db, holder=SELIN) -> dict:
    return storage.certificates.holder_certificates(db, id_of(db, holder))[-1]


def receipt_link(page: str) -> str:
    return re.search(r'href="(/receipts/\d+)" download', page).group(1)


def openssl_verify(signed: bytes, trusted: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "receipt.p7m").write_bytes(signed)
    return subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "receipt.p7m"),
                           "-CAfile", str(trusted)], capture_output=True, text=True, check=False)


def test_a_suspend_gives_a_receipt_openssl_verifies_against_the_ca(client, auth, app, db, tmp_path):
    auth.login()
    done = post(client, "/certificate", htmx=True, action="suspend", certificate=own_certificate(db)["id"])
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "İmzalı işlem makbuzunu indir" in page
    download = client.get(receipt_link(page))
    assert download.status_code == 200 and download.mimetype == "application/pkcs7-mime"
    assert download.headers["Cache-Control"] == "no-store" and ".p7m" in download.headers["Content-Disposition"]
    checked = openssl_verify(download.data, Path(app.instance_path) / ca.CA_CERT_FILE, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "Verification successful" in checked.stderr
    text = checked.stdout
    certificate = own_certificate(db)
    assert "Selin Yılmaz" in text and "100******46" in text and SELIN["identity"] not in text
    assert "Sertifika durumu değiştirildi: Askıya Al" in text and "Yeni durum: Askıda" in text
    assert f"Sertifika seri no: {certificate['serial_hex']}" in text
    assert f"Değişiklikten sonraki CRL numarası: {storage.certificates.get_crl_state(db)['number']}" in text
    assert re.search(r"OCSP yanıtı \(producedAt\): \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    assert "OCSP durumu: revoked (certificateHold)" in text


def test_a_changed_byte_fails_verification(client, auth, app, db, tmp_path):
    auth.login()
    page = post(client, "/certificate", htmx=True, action="suspend",
                certificate=own_certificate(db)["id"]).get_data(as_text=True)
    signed = bytearray(client.get(receipt_link(page)).data)
    at = bytes(signed).index("Askıda".encode())
    signed[at] ^= 0x01
    checked = openssl_verify(bytes(signed), Path(app.instance_path) / ca.CA_CERT_FILE, tmp_path)
    assert checked.returncode != 0


def test_an_untrusted_signer_fails_verification(client, auth, app, db, tmp_path):
    auth.login()
    page = post(client, "/certificate", htmx=True, action="suspend",
                certificate=own_certificate(db)["id"]).get_data(as_text=True)
    other = tmp_path / "other"
    other.mkdir()
    ca.create_ca(other, app.config["CLOCK"]())
    checked = openssl_verify(client.get(receipt_link(page)).data, other / ca.CA_CERT_FILE, tmp_path)
    assert checked.returncode != 0 and "certificate verify error" in checked.stderr.lower()


def test_a_receipt_is_only_its_holders(client, auth, app, db):
    auth.login()
    page = post(client, "/certificate", htmx=True, action="suspend",
                certificate=own_certificate(db)["id"]).get_data(as_text=True)
    link = receipt_link(page)
    other = app.test_client()
    AuthActions(other, app).login(KEMAL["identity"], KEMAL["security_word"])
    assert other.get(link).status_code == 404
    assert other.get("/receipts/999999").status_code == 404
    assert app.test_client().get(link).status_code in (302, 303, 401)


def test_a_vault_delete_gives_a_receipt_on_the_screen_and_on_activity(client, auth, app, db, tmp_path):
    auth.login()
    assert post(client, "/pin-puk/delete", token_page="/pin-puk", confirm="yes").status_code == 303
    link = receipt_link(client.get("/pin-puk").get_data(as_text=True))
    activity = client.get("/activity").get_data(as_text=True)
    assert link in activity and "PIN/PUK silme" in activity
    checked = openssl_verify(client.get(link).data, Path(app.instance_path) / ca.CA_CERT_FILE, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "PIN/PUK bilgileri portaldan kalıcı olarak silindi" in checked.stdout and "14*****" in checked.stdout
    assert SELIN["pin"] not in checked.stdout and SELIN["puk"] not in checked.stdout


def test_receipts_are_numbered_in_order_and_listed_on_activity(client, auth, app, db):
    auth.login()
    certificate_id = own_certificate(db)["id"]
    post(client, "/certificate", action="suspend", certificate=certificate_id)
    post(client, "/certificate", action="resume", certificate=certificate_id)
    rows = storage.receipts.holder_receipts(db, id_of(db))
    assert [row["kind"] for row in rows] == ["certificate", "certificate"] and rows[0]["id"] == rows[1]["id"] + 1
    activity = client.get("/activity").get_data(as_text=True)
    assert all(f"/receipts/{row['id']}" in activity for row in rows)


def test_english_receipts_read_in_english(client, auth, app, db, tmp_path):
    client.get("/login?lang=en")
    auth.login()
    page = post(client, "/certificate", htmx=True, action="suspend",
                certificate=own_certificate(db)["id"]).get_data(as_text=True)
    checked = openssl_verify(client.get(receipt_link(page)).data, Path(app.instance_path) / ca.CA_CERT_FILE,
                             tmp_path)
    assert checked.returncode == 0 and "Receipt no" in checked.stdout and "New status: Suspended" in checked.stdout


def test_without_a_demo_ca_the_receipt_is_self_signed_and_verifies_against_its_own_certificate(app_config,
                                                                                             tmp_path):
    app = create_app({**app_config, "KAMUSM_DEMO": False})
    load_demo(app)
    client = app.test_client()
    AuthActions(client, app).login()
    assert post(client, "/pin-puk/delete", token_page="/pin-puk", confirm="yes").status_code == 303
    link = receipt_link(client.get("/pin-puk").get_data(as_text=True))
    instance = Path(app.instance_path)
    assert not (instance / ca.CA_CERT_FILE).exists()
    signer = x509.load_pem_x509_certificate((instance / receipts.RECEIPT_CERT_FILE).read_bytes())
    assert signer.issuer == signer.subject
    assert (instance / receipts.RECEIPT_KEY_FILE).stat().st_mode & 0o777 == 0o600
    checked = openssl_verify(client.get(link).data, instance / receipts.RECEIPT_CERT_FILE, tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_parallel_workers_make_one_receipt_key(tmp_path):
    made = []
    threads = [threading.Thread(target=lambda: made.append(
        receipts.ensure_signer(tmp_path, None, "Demo Üniversitesi", 1_800_000_000.0))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 8 and len({signer.key.private_numbers().private_value for signer in made}) == 1
    assert len({signer.chain[0].serial_number for signer in made}) == 1
    assert receipts.load_signer(tmp_path).chain[0].public_key() == made[0].key.public_key()


def test_a_receipt_key_that_is_not_its_certificates_is_refused(tmp_path):
    receipts.ensure_signer(tmp_path, None, "Demo Üniversitesi", 1_800_000_000.0)
    other = tmp_path / "other"
    other.mkdir()
    receipts.ensure_signer(other, None, "Demo Üniversitesi", 1_800_000_000.0)
    (tmp_path / receipts.RECEIPT_CERT_FILE).write_bytes((other / receipts.RECEIPT_CERT_FILE).read_bytes())
    with pytest.raises(receipts.ReceiptKeyError):
        receipts.load_signer(tmp_path)


def test_a_broken_receipt_key_is_audited_and_the_change_stands(client, auth, app, db, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    receipts.ensure_signer(other, None, "Başka", 1_800_000_000.0)
    instance = Path(app.instance_path)
    receipts.ensure_signer(instance, None, "Demo Üniversitesi", 1_800_000_000.0)
    (instance / receipts.RECEIPT_CERT_FILE).write_bytes((other / receipts.RECEIPT_CERT_FILE).read_bytes())
    auth.login()
    done = post(client, "/certificate", htmx=True, action="suspend", certificate=own_certificate(db)["id"])
    assert done.status_code == 200 and "askıya alındı" in done.get_data(as_text=True)
    assert "makbuzunu indir" not in done.get_data(as_text=True) and own_certificate(db)["status"] == "suspended"
    assert ("receipt.issue", "key_error") in audit_events(db)


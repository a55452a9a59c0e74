"""Signed receipts: what the holder did (a certificate status change, a vault delete), when, and what the
CRL and OCSP said right after, as text signed in a CMS SignedData (RFC 5652) under the institution's receipt key.

Anyone holding the receipt checks it offline with `openssl cms -verify` (docs/receipts.md): the signature covers
the text, the signer certificate travels inside it, and the signingTime attribute dates the signature.

Security assumptions:
- The receipt key is its own EC key (instance/receipt.key, 0600), never the CA key: a leaked receipt key can forge
  receipts, not certificates. In demo mode the demo CA issues its certificate; otherwise it is self-signed until
  the institution drops in a key and certificate (chain) its own CA issued.
- A receipt holds no secret and a masked identity number: holders forward receipts to others.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from flask_babel import gettext as _

from kamusm import ca, storage
from kamusm.identity import mask_identity
from kamusm.keys import KEY_FILE_MODE

RECEIPT_KEY_FILE = "receipt.key"
RECEIPT_CERT_FILE = "receipt.pem"
RECEIPT_MIMETYPE = "application/pkcs7-mime; smime-type=signed-data"
KIND_CERTIFICATE = "certificate"
KIND_VAULT_DELETE = "vault_delete"


class ReceiptKeyError(Exception):
    """instance/receipt.key and receipt.pem do not belong together: an operator's problem."""


@dataclass(frozen=True)
class Signer:
    key: ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate]  # the signer's certificate first, then any issuers the institution put after it


def load_signer(instance_path: Path) -> Signer | None:
    """The receipt key and its certificate (chain), or None when either file is missing.
    Raises ReceiptKeyError when the first certificate is not the key's."""
    try:
        key = serialization.load_pem_private_key((instance_path / RECEIPT_KEY_FILE).read_bytes(), password=None)
        chain = x509.load_pem_x509_certificates((instance_path / RECEIPT_CERT_FILE).read_bytes())
    except FileNotFoundError:
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or chain[0].public_key() != key.public_key():
        raise ReceiptKeyError(f"{RECEIPT_KEY_FILE} and {RECEIPT_CERT_FILE} do not belong together")
    return Signer(key, chain)


def ensure_signer(instance_path: Path, issuer: ca.Authority | None, institution: str, now: float) -> Signer:
    """Load the receipt signer, or make it: the key, then its certificate, each created once and whole
    (ca.write_new_file), so parallel workers all load the first one's."""
    signer = load_signer(instance_path)
    if signer is not None:
        return signer
    key_path = instance_path / RECEIPT_KEY_FILE
    if not key_path.exists():
        ca.write_new_file(key_path, ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            KEY_FILE_MODE)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    chain = [ca.issue_receipt_signer(issuer, key, institution, now)] + ([issuer.cert] if issuer else [])
    ca.write_new_file(instance_path / RECEIPT_CERT_FILE,
                      b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain), ca.CA_CERT_FILE_MODE)
    return load_signer(instance_path)


def sign(signer: Signer, text: str) -> bytes:
    """CMS SignedData (DER) holding the text, the signer's chain and a signingTime."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(text.encode()).add_signer(
        signer.chain[0], signer.key, ca.SIGNATURE_HASH)
    for cert in signer.chain[1:]:
        builder = builder.add_certificate(cert)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def _utc_text(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ocsp_seen(authority: ca.Authority, certificate_der: bytes, lookup, now: float) -> tuple[str, str]:
    """(producedAt, status) of the answer this portal's responder gives about the certificate at `now`."""
    cert = x509.load_der_x509_certificate(certificate_der)
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, authority.cert, ca.SIGNATURE_HASH).build()
    answer, _well_formed = ca.answer_ocsp(authority, request.public_bytes(serialization.Encoding.DER), lookup, now)
    response = ocsp.load_der_ocsp_response(answer)
    status = response.certificate_status.name.lower()
    if response.revocation_reason is not None:
        status += f" ({response.revocation_reason.value})"
    return _utc_text(response.produced_at_utc.timestamp()), status


def receipt_text(institution: str, holder: dict, number: int, what: str, now: float,
                 facts: list[tuple[str, str]]) -> str:
    """The signed text: the institution, the receipt number, who, what, when, then what the CA published."""
    named = _("%(name)s (T.C. Kimlik No %(identity)s)", name=holder["name"], identity=mask_identity(holder["identity"]))
    rows = [(_("Makbuz no"), str(number)), (_("Kart sahibi"), named), (_("İşlem"), what),
            (_("Zaman (UTC)"), _utc_text(now)), *facts]
    return "\n".join([_("%(institution)s — işlem makbuzu", institution=institution)]
                      + [f"{label}: {value}" for label, value in rows]) + "\n"


def issue(db, signer: Signer, institution: str, holder: dict, kind: str, what: str, now: float,
          facts: list[tuple[str, str]]) -> int:
    """Number, write, sign and store a receipt; return its id. The number is the row's, taken under the
    write lock, so two receipts never share one."""
    with storage.write(db, durable=True):
        number = storage.receipts.next_receipt_id(db)
        signed = sign(signer, receipt_text(institution, holder, number, what, now, facts))
        return storage.receipts.add_receipt(db, number, holder["id"], kind, now, signed)

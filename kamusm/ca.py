"""The demo certification authority: real X.509 with `cryptography`, no Flask.

What it makes: a self-signed root (EC P-256, named a DEMO CA in its subject),
one end-entity certificate per card, CRLs and OCSP responses (RFC 5280,
RFC 6960), all signed by the root itself.

Security assumptions:
- This CA exists for teaching. Its private key is a plain PEM file in the
  instance folder, created with mode 0600 and never logged; anyone who can read
  the instance folder can sign as this CA, which is acceptable only because no
  relying party trusts it (the subject says so).
- An end-entity certificate gets a fresh key pair whose private half is thrown
  away at once: the real signing key lives on the holder's card, the portal
  never holds it. The certificate is a stand-in that CRL/OCSP answers refer to.
- Serial numbers are 159 random bits (x509.random_serial_number), so they are
  not guessable and never collide in practice.
- Parsing an OCSP request never raises to the caller: anything that does not
  parse becomes a "malformedRequest" response.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc6960

from kamusm.keys import KEY_FILE_MODE

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.pem"
CA_CERT_FILE_MODE = 0o644
CA_SUBJECT = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "TR"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kamusm DEMO (not a real certification authority)"),
    x509.NameAttribute(NameOID.COMMON_NAME, "kamusm DEMO CA - NOT FOR REAL SIGNATURES"),
])
# The demo cards date back to 2009; the root's validity covers every certificate it signs.
CA_NOT_BEFORE = datetime(2000, 1, 1, tzinfo=timezone.utc)
CA_VALIDITY_DAYS = 30 * 365
CERT_VALIDITY_DAYS = 3 * 365
CRL_VALIDITY_SECONDS = 24 * 3600
OCSP_VALIDITY_SECONDS = 600
MAX_NONCE_BYTES = 32
MAX_CERTS_PER_REQUEST = 20
SIGNATURE_HASH = hashes.SHA256()
# An end entity that signs documents (a card) or receipts: digitalSignature and nonRepudiation, nothing else.
SIGNER_KEY_USAGE = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                 data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                 encipher_only=False, decipher_only=False)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"

# RFC 5280 CRLReason names as stored in the database (x509.ReasonFlags values).
REASON_UNSPECIFIED = "unspecified"
REASON_HOLD = "certificateHold"


class CAError(Exception):
    """The CA files are unusable (the key and the certificate do not belong together, or not EC):
    an operator's problem, so not a KamusmError shown to holders."""


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class RevokedEntry:
    """A certificate on the CRL: revoked for `reason`, or on hold (REASON_HOLD) while suspended."""

    serial: int
    revoked_at: float
    reason: str


@dataclass(frozen=True)
class CertStatus:
    """What OCSP says about one serial: revoked_at/reason only when revoked (hold counts as revoked)."""

    revoked: bool
    revoked_at: float | None = None
    reason: str = ""


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


def serial_hex(serial: int) -> str:
    """Upper-case hex with an even number of digits, as `openssl x509 -serial` prints it."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def ocsp_url(public_url: str) -> str:
    return (public_url or DEFAULT_PUBLIC_URL).rstrip("/") + "/ocsp"


def crl_url(public_url: str) -> str:
    return (public_url or DEFAULT_PUBLIC_URL).rstrip("/") + "/crl.der"


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def ca_cert_url(public_url: str) -> str:
    return (public_url or DEFAULT_PUBLIC_URL).rstrip("/") + "/ca.crt"


def _make_root(key: ec.EllipticCurvePrivateKey, now: float) -> x509.Certificate:
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    return (x509.CertificateBuilder()
            .subject_name(CA_SUBJECT).issuer_name(CA_SUBJECT)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(CA_NOT_BEFORE)
            .not_valid_after(_utc(now) + timedelta(days=CA_VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            # digitalSignature too: the root signs the OCSP responses itself (RFC 6960 2.6).
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, SIGNATURE_HASH))


def write_new_file(path: Path, data: bytes, mode: int) -> bool:
    """Create path with `mode` holding data, whole; False if it already existed (another process won).

    Written to a private temporary name first and then hard-linked into place, so a process that finds
    the file never reads it half-written."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True


def load_ca(instance_path: Path) -> Authority | None:
    """The CA from instance/ca.key and instance/ca.pem, or None when either is missing.

    Raises CAError when the certificate's public key is not the key's.
    """
    try:
        key_pem = (instance_path / CA_KEY_FILE).read_bytes()
        cert_pem = (instance_path / CA_CERT_FILE).read_bytes()
    except FileNotFoundError:
        return None
    key = serialization.load_pem_private_key(key_pem, password=None)
    cert = x509.load_pem_x509_certificate(cert_pem)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.public_key() != key.public_key():
        raise CAError(f"{CA_KEY_FILE} and {CA_CERT_FILE} do not belong together")
    return Authority(key, cert)


def create_ca(instance_path: Path, now: float) -> tuple[Authority, bool]:
    """Load the CA, or make it (key 0600, then certificate); return (authority, created).

    Safe against a second process doing the same (O_EXCL on the key) and
    against a crash between the two files (the certificate is remade from the key).
    """
    instance_path.mkdir(parents=True, exist_ok=True)
    key_path = instance_path / CA_KEY_FILE
    created = False
    if not key_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        created = write_new_file(key_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            KEY_FILE_MODE)
    cert_path = instance_path / CA_CERT_FILE
    if not cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        temporary = cert_path.with_suffix(".pem.tmp")
        temporary.write_bytes(_make_root(key, now).public_bytes(serialization.Encoding.PEM))
        os.chmod(temporary, CA_CERT_FILE_MODE)
        os.replace(temporary, cert_path)
    return load_ca(instance_path), created


def certificate_validity(now: float, ca_not_after: datetime) -> tuple[datetime, datetime]:
    """From the start of today (UTC, so a relying party's clock a little behind still sees it valid) for
    CERT_VALIDITY_DAYS, never past the CA's own end. The card's own issue date stays the card's: a
    certificate issued today does not claim to have existed since then."""
    today = _utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return today, min(today + timedelta(days=CERT_VALIDITY_DAYS), ca_not_after)


def issue_certificate(authority: Authority, name: str, card_serial: str, public_url: str,
                      now: float) -> x509.Certificate:
    """A signing certificate for one card: CN = holder name, serialNumber = card serial.

    The card serial, not the T.C. identity number, names the holder in the
    subject: the certificate travels with every signed document, and the
    identity number is a personal datum that need not.
    """
    subject_key = ec.generate_private_key(ec.SECP256R1()).public_key()  # private half dropped here
    not_before, not_after = certificate_validity(now, authority.cert.not_valid_after_utc)
    issuer_ski = authority.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "TR"),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, card_serial),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]))
            .issuer_name(authority.cert.subject)
            .public_key(subject_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(SIGNER_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
            .add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(ocsp_url(public_url))),
                x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                       x509.UniformResourceIdentifier(ca_cert_url(public_url)))]), critical=False)
            .add_extension(x509.CRLDistributionPoints([
                x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url(public_url))], None, None, None)]),
                critical=False)
            .sign(authority.key, SIGNATURE_HASH))


def _reason_flag(reason: str) -> x509.ReasonFlags | None:
    """RFC 5280 5.3.1: the reason code "unspecified" SHOULD be absent rather than written."""
    if not reason or reason == REASON_UNSPECIFIED:
        return None
    return x509.ReasonFlags(reason)


def build_crl(authority: Authority, entries: list[RevokedEntry], number: int, now: float) -> bytes:
    """A DER CRL valid from now for CRL_VALIDITY_SECONDS, numbered `number` (callers keep it increasing)."""
    issuer_ski = authority.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(authority.cert.subject)
               .last_update(_utc(now))
               .next_update(_utc(now + CRL_VALIDITY_SECONDS))
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
                              critical=False))
    for entry in sorted(entries, key=lambda item: item.serial):
        revoked = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(_utc(entry.revoked_at))
        flag = _reason_flag(entry.reason)
        if flag is not None:
            revoked = revoked.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(authority.key, SIGNATURE_HASH).public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def malformed_response() -> bytes:
    return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)


def unauthorized_response() -> bytes:
    """For a portal without its own CA: it is not authoritative for any certificate (RFC 6960 2.3)."""
    return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)


def _issuer_hashes(authority: Authority, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """RFC 6960 CertID: hashes of the issuer's DER name and of its public key's BIT STRING contents."""
    name_hash = hashes.Hash(algorithm)
    name_hash.update(authority.cert.subject.public_bytes())
    key_hash = hashes.Hash(algorithm)
    key_hash.update(authority.key.public_key().public_bytes(serialization.Encoding.X962,
                                                           serialization.PublicFormat.UncompressedPoint))
    return name_hash.finalize(), key_hash.finalize()


def answer_ocsp(authority: Authority, request_der: bytes, lookup: Callable[[int], CertStatus | None],
                now: float) -> tuple[bytes, bool]:
    """Answer one DER OCSP request; return (DER response, request was well formed).

    One SingleResponse per certificate asked about (RFC 6960 4.2.2.3), at most MAX_CERTS_PER_REQUEST:
    good / revoked (with time and reason; a suspended certificate is revoked with certificateHold) /
    unknown for a serial `lookup` does not know or a CertID naming another issuer. The nonce is
    echoed when the request has one. A request that does not parse, names a hash this library lacks,
    repeats an extension, carries a nonce outside 1..32 octets (RFC 8954) or asks about too many
    certificates gets "malformedRequest".
    """
    try:
        answers = [_answer_one(authority, ocsp.load_der_ocsp_request(part), lookup, now)
                   for part in _single_requests(request_der)]
    except (ValueError, NotImplementedError, UnsupportedAlgorithm, x509.DuplicateExtension, PyAsn1Error):
        return malformed_response(), False
    return answers[0] if len(answers) == 1 else _merged(authority, answers), True


def _single_requests(request_der: bytes) -> list[bytes]:
    """The request as requests for one certificate each (cryptography reads only those), same extensions."""
    request, rest = der_decoder.decode(request_der, asn1Spec=rfc6960.OCSPRequest())
    if rest:
        raise ValueError("bytes after the OCSP request")
    asked = list(request["tbsRequest"]["requestList"])
    if len(asked) == 1:
        return [request_der]
    if not 1 <= len(asked) <= MAX_CERTS_PER_REQUEST:
        raise ValueError("an OCSP request for no certificate, or for too many")
    tbs = request["tbsRequest"]
    # Re-encoded around each single Request as it stood: the optional parts keep their own tags.
    head = b"".join(der_encoder.encode(tbs[name]) for name in ("version", "requestorName")
                    if tbs[name].isValue and not (name == "version" and int(tbs[name]) == 0))
    tail = der_encoder.encode(tbs["requestExtensions"]) if tbs["requestExtensions"].isValue else b""
    return [_der(0x30, _der(0x30, head + _der(0x30, der_encoder.encode(single)) + tail)) for single in asked]


def _der(tag: int, content: bytes) -> bytes:
    """One DER tag-length-value."""
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    length = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _merged(authority: Authority, answers: list[bytes]) -> bytes:
    """The first answer carrying every answer's SingleResponse, signed anew over the whole ResponseData."""
    def basic_of(answer: bytes):
        outer, _ = der_decoder.decode(answer, asn1Spec=rfc6960.OCSPResponse())
        basic, _ = der_decoder.decode(outer["responseBytes"]["response"], asn1Spec=rfc6960.BasicOCSPResponse())
        return outer, basic

    outer, basic = basic_of(answers[0])
    for answer in answers[1:]:
        basic["tbsResponseData"]["responses"].append(basic_of(answer)[1]["tbsResponseData"]["responses"][0])
    signature = authority.key.sign(der_encoder.encode(basic["tbsResponseData"]), ec.ECDSA(SIGNATURE_HASH))
    basic["signature"] = univ.BitString.fromOctetString(signature)
    outer["responseBytes"]["response"] = univ.OctetString(der_encoder.encode(basic))
    return der_encoder.encode(outer)


def _answer_one(authority: Authority, request: ocsp.OCSPRequest, lookup: Callable[[int], CertStatus | None],
                now: float) -> bytes:
    algorithm = request.hash_algorithm
    serial = request.serial_number
    asked_name_hash, asked_key_hash = request.issuer_name_hash, request.issuer_key_hash
    nonce = next((extension.value.nonce for extension in request.extensions
                  if isinstance(extension.value, x509.OCSPNonce)), None)
    if {len(asked_name_hash), len(asked_key_hash)} != {algorithm.digest_size}:
        raise ValueError("the CertID hashes do not have the length of their algorithm")
    if serial < 0:
        raise ValueError("a certificate serial number is positive (RFC 5280 4.1.2.2)")
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE_BYTES:
        raise ValueError("an OCSP nonce is 1 to 32 octets (RFC 8954 2.1)")
    ours = _issuer_hashes(authority, algorithm) == (asked_name_hash, asked_key_hash)
    status = lookup(serial) if ours else None
    if status is None:
        cert_status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
    elif status.revoked:
        cert_status, revoked_at, reason = (ocsp.OCSPCertStatus.REVOKED, _utc(status.revoked_at),
                                           _reason_flag(status.reason))
    else:
        cert_status, revoked_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
    builder = (ocsp.OCSPResponseBuilder()
               .add_response_by_hash(asked_name_hash, asked_key_hash, serial, algorithm, cert_status,
                                     _utc(now), _utc(now + OCSP_VALIDITY_SECONDS), revoked_at, reason)
               .responder_id(ocsp.OCSPResponderEncoding.HASH, authority.cert)
               .certificates([authority.cert]))
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(authority.key, SIGNATURE_HASH).public_bytes(serialization.Encoding.DER)


def issue_receipt_signer(issuer: Authority | None, key: ec.EllipticCurvePrivateKey, institution: str,
                         now: float) -> x509.Certificate:
    """The certificate receipts are signed under: issued by `issuer` (the demo CA), or self-signed when the
    institution's CA lives elsewhere (docs/receipts.md says how to replace it with one that CA issues).
    digitalSignature and nonRepudiation, no EKU, so `openssl cms -verify` accepts it for its default purpose."""
    public = key.public_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "TR"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, institution),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{institution} receipts")])
    today = _utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    not_after = today + timedelta(days=CERT_VALIDITY_DAYS)
    issuer_name, signing_key, issuer_public = subject, key, public
    if issuer is not None:
        issuer_name, signing_key, issuer_public = issuer.cert.subject, issuer.key, issuer.key.public_key()
        not_after = min(not_after, issuer.cert.not_valid_after_utc)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(today).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(SIGNER_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False)
            .sign(signing_key, SIGNATURE_HASH))

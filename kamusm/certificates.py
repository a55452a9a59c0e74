"""Sertifika Durumu: the holder's certificates; suspend, resume, revoke; the CRL,
the OCSP responder and the export of status changes.

Rules only (plain functions taking db, now and their inputs); the screens are kamusm/web/views/certificates.py.
Security assumptions:
- A status change needs an SMS code confirmed in the last 5 minutes
  (kamusm.web.stepup); without one a fresh code is sent first. The request is
  validated before that, so no code is spent on an impossible change.
- A holder reaches only their own certificates: another holder's id answers
  exactly like an unknown one (404).
- Revocation is final: no transition leaves "revoked". The status is re-read
  inside the write transaction, so two concurrent changes cannot both apply.
- With the demo CA (demo mode and instance/ca.key present) every change
  re-signs the CRL in the same transaction; /crl.der and /ocsp are public,
  read-only, need no login or CSRF token, and answer bad input with a 4xx or an
  OCSP error, never a 500. Without a CA of its own the portal signs nothing:
  changes are kept in the status-change log for `kamusm certificates export`.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Iterator, Mapping

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from flask_babel import lazy_gettext as _l

from kamusm import audit, ca, storage
from kamusm.errors import KamusmError, ValidationError

CONFIRM_VALUE = "yes"
CRL_REFRESH_SECONDS = ca.CRL_VALIDITY_SECONDS // 2
CRL_MIMETYPE = "application/pkix-crl"
CA_CERT_MIMETYPE = "application/pkix-cert"
OCSP_RESPONSE_MIMETYPE = "application/ocsp-response"
_CERTIFICATE_ID = re.compile(r"[0-9]{1,18}", re.ASCII)


# action -> (statuses it may start from, the status it leads to)
TRANSITIONS = {
    "suspend": (("valid",), "suspended"),
    "resume": (("suspended",), "valid"),
    "revoke": (("valid", "suspended"), "revoked"),
}


# The RFC 5280 reason a holder may give for revoking their own certificate.
REVOKE_REASONS = (
    ("unspecified", _l("Belirtilmemiş")),
    ("keyCompromise", _l("Kartım ya da PIN'im başkasının eline geçti")),
    ("affiliationChanged", _l("Kurumumdaki görevim ya da bilgilerim değişti")),
    ("superseded", _l("Yerine yeni bir sertifika aldım")),
    ("cessationOfOperation", _l("Sertifikaya artık ihtiyacım yok")),
)


REASON_LABELS = dict(REVOKE_REASONS)
STATUS_LABELS = {"valid": _l("Geçerli"), "suspended": _l("Askıda"), "revoked": _l("İptal Edildi")}
ACTION_LABELS = {"suspend": _l("Askıya Al"), "resume": _l("Askıyı Kaldır"), "revoke": _l("İptal Et")}
DONE_MESSAGES = {
    "suspend": _l("Sertifikanız askıya alındı. Askı kaldırılana kadar sertifikanızla atılan imzalar geçerli "
                  "sayılmaz."),
    "resume": _l("Sertifikanızın askısı kaldırıldı; sertifikanız yeniden geçerli."),
    "revoke": _l("Sertifikanız iptal edildi. Bu işlem geri alınamaz; yeni bir sertifika için kurumunuza "
                 "başvurunuz."),
}


UNKNOWN_ACTION = _l("Bilinmeyen bir işlem istendi. Lütfen sayfadaki butonları kullanınız.")
NOT_FOUND = _l("Sertifika bulunamadı.")
REVOKED_IS_FINAL = _l("İptal edilmiş bir sertifikanın durumu değiştirilemez.")
ALREADY_SUSPENDED = _l("Bu sertifika zaten askıda.")
NOT_SUSPENDED = _l("Bu sertifika askıda değil.")
REASON_MISSING = _l("Lütfen listeden bir iptal nedeni seçiniz.")
CONFIRM_MISSING = _l("İptal etmek için kutuyu işaretleyerek işlemin geri alınamayacağını onaylayınız.")


class CertificateNotFound(KamusmError):
    """No certificate with that id belongs to the holder."""

    status = 404


class TransitionRefused(KamusmError):
    """The certificate's status does not allow the action (a revoked one allows none)."""

    status = 409


@dataclass(frozen=True)
class Change:
    """A validated status change: the certificate row, the action, the RFC 5280 reason to store."""

    certificate: dict
    action: str
    reason: str


def next_status(status: str, action: str) -> str:
    """The status `action` leads to from `status`. Raises TransitionRefused."""
    allowed_from, to = TRANSITIONS[action]
    if status in allowed_from:
        return to
    if status == "revoked":
        raise TransitionRefused(REVOKED_IS_FINAL)
    raise TransitionRefused(ALREADY_SUSPENDED if action == "suspend" else NOT_SUSPENDED)


def allowed_actions(status: str) -> list[str]:
    return [action for action, (allowed_from, _to) in TRANSITIONS.items() if status in allowed_from]


def read_change(db, holder_id: int, form: Mapping[str, str]) -> Change:
    """Validate the posted fields: action, certificate, and for revoke reason and confirm.

    Raises ValidationError (422), CertificateNotFound (404) or TransitionRefused (409).
    """
    action = form.get("action", "")
    if action not in TRANSITIONS:
        raise ValidationError(UNKNOWN_ACTION, "action")
    raw_id = form.get("certificate", "")
    certificate = (storage.certificates.get_holder_certificate(db, holder_id, int(raw_id))
                   if _CERTIFICATE_ID.fullmatch(raw_id) else None)
    if certificate is None:
        raise CertificateNotFound(NOT_FOUND)
    next_status(certificate["status"], action)
    if action == "suspend":
        return Change(certificate, action, ca.REASON_HOLD)
    if action == "resume":
        return Change(certificate, action, "")
    reason = form.get("reason", "")
    if reason not in REASON_LABELS:
        raise ValidationError(REASON_MISSING, "reason")
    if form.get("confirm") != CONFIRM_VALUE:
        raise ValidationError(CONFIRM_MISSING, "confirm")
    return Change(certificate, action, reason)


def apply_change(db, authority: ca.Authority | None, change: Change, holder_id: int, ip: str, now: float,
                 **detail: str) -> None:
    """Apply, log for the export, audit and (with the demo CA) re-sign the CRL, all in one transaction.
    `detail` joins the audit entry (the console's operator and the holder's reason on the phone).

    Raises TransitionRefused when a concurrent change got there first. Durable: the holder is told
    a revocation is final.
    """
    with storage.write(db, durable=True):
        row = storage.certificates.get_holder_certificate(db, holder_id, change.certificate["id"])
        status = next_status(row["status"], change.action)
        # A revocation after a hold dates from the hold (RFC 5280 5.3.2's intent): the holder was told that
        # signatures made while suspended do not count, so validation at any time since must say revoked.
        since = row["status_changed_at"] if change.action == "revoke" and row["status"] == "suspended" else now
        storage.certificates.set_certificate_status(db, row["id"], change.action, status, change.reason, now, since)
        audit.record(db, now, f"certificate.{change.action}", "ok", holder_id, ip, certificate_id=row["id"],
                     serial=row["serial_hex"], reason=change.reason, **detail)
        if authority is not None and row["serial_hex"]:
            publish_crl(db, authority, now)


def _timestamp(day: str) -> float:
    issued = date.fromisoformat(day)
    return datetime(issued.year, issued.month, issued.day, tzinfo=timezone.utc).timestamp()


def portal_authority(instance_path: Path, demo: bool) -> ca.Authority | None:
    """The demo CA, only in demo mode: a real deployment never signs with it, even if its files linger."""
    return ca.load_ca(instance_path) if demo else None


def issue_for_new_cards(db, instance_path: Path, demo: bool, public_url: str, now: float) -> int:
    """Certificates (or status records) for every card that has none: run where cards are made (the
    roster import, the demo, `kamusm init` for an older database), never by a page that shows them."""
    return add_missing_certificates(db, portal_authority(instance_path, demo), public_url or ca.DEFAULT_PUBLIC_URL, now)


def add_missing_certificates(db, authority: ca.Authority | None, public_url: str, now: float,
                             holder_id: int | None = None, count_revoked: bool = True) -> int:
    """Give every card without a certificate one; return how many were made.

    With a CA, a real certificate; without one, a status record (no serial, no
    X.509) whose changes the institution's own CA applies from the export.
    count_revoked=False also renews cards whose every certificate is revoked
    (the demo reset); the revoked ones stay revoked and on the CRL.
    """
    if not storage.certificates.cards_without_certificate(db, holder_id, count_revoked):
        return 0
    made = 0
    with storage.write(db):  # asked again under the write lock, so two requests do not both issue
        for card in storage.certificates.cards_without_certificate(db, holder_id, count_revoked):
            if authority is None:
                certificate_id = storage.certificates.insert_certificate(
                    db, card["holder_id"], card["serial"], None, None, _timestamp(card["cert_issued"]), None, now)
                serial = None
            else:
                cert = ca.issue_certificate(authority, card["name"], card["serial"], public_url, now)
                serial = ca.serial_hex(cert.serial_number)
                certificate_id = storage.certificates.insert_certificate(
                    db, card["holder_id"], card["serial"], serial, cert.public_bytes(Encoding.DER),
                    cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp(), now)
            audit.record(db, now, "certificate.issue", "ok", card["holder_id"], certificate_id=certificate_id,
                         serial=serial)
            made += 1
    return made


def publish_crl(db, authority: ca.Authority, now: float) -> bytes:
    """Sign a new CRL with the next number from the current statuses; store and return it."""
    with storage.write(db):
        state = storage.certificates.get_crl_state(db)
        number = (state["number"] if state else 0) + 1
        entries = [ca.RevokedEntry(int(row["serial_hex"], 16), row["status_changed_at"], row["reason"])
                   for row in storage.certificates.certificates_on_crl(db)]
        der = ca.build_crl(authority, entries, number, now)
        storage.certificates.save_crl_state(db, number, now, der)
    return der


def current_crl(db, authority: ca.Authority, now: float) -> bytes:
    """The stored CRL, re-signed once half of its validity has passed, so nextUpdate stays ahead."""
    state = storage.certificates.get_crl_state(db)
    if state is None or not 0 <= now - state["this_update"] < CRL_REFRESH_SECONDS:
        return publish_crl(db, authority, now)
    return state["der"]


def cache_headers(body: bytes, this_update: datetime, next_update: datetime | None, now: float) -> dict[str, str]:
    """RFC 5019 6.2: a CRL or a successful OCSP answer may be cached by anyone until its nextUpdate,
    and then must be fetched again; without a nextUpdate it is not stored."""
    if next_update is None or next_update.timestamp() <= now:
        return {"Cache-Control": "no-store"}
    return {"Cache-Control": f"max-age={int(next_update.timestamp() - now)}, public, no-transform, must-revalidate",
            "Last-Modified": format_datetime(this_update, usegmt=True),
            "Expires": format_datetime(next_update, usegmt=True),
            "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"'}


def crl_cache_headers(der: bytes, now: float) -> dict[str, str]:
    crl = x509.load_der_x509_crl(der)
    return cache_headers(der, crl.last_update_utc, crl.next_update_utc, now)


def ocsp_cache_headers(der: bytes, now: float) -> dict[str, str]:
    answer = ocsp.load_der_ocsp_response(der)
    if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return {"Cache-Control": "no-store"}
    return cache_headers(der, answer.this_update_utc, answer.next_update_utc, now)


def ocsp_status(db, serial: int) -> ca.CertStatus | None:
    """What OCSP says about one serial: None for a serial this portal never issued."""
    row = storage.certificates.find_certificate_by_serial(db, ca.serial_hex(serial))
    if row is None:
        return None
    if row["status"] == "valid":
        return ca.CertStatus(revoked=False)
    return ca.CertStatus(revoked=True, revoked_at=row["status_changed_at"], reason=row["reason"])


def ensure_demo_ca(db, instance_path: Path, now: float) -> ca.Authority:
    """Make the demo CA in the instance folder if absent (for `kamusm init` in demo mode) and
    publish a first CRL; return the CA."""
    authority, created = ca.create_ca(instance_path, now)
    if created or storage.certificates.get_crl_state(db) is None:
        publish_crl(db, authority, now)
    if created:
        audit.record(db, now, "admin.demo_ca", "created")
    return authority


def issue_demo_certificates(db, instance_path: Path, public_url: str, now: float) -> int:
    """Demo mode (`kamusm demo`): make sure the demo CA exists, then give every card without a
    live certificate a new one; return how many were issued."""
    authority = ensure_demo_ca(db, instance_path, now)
    return add_missing_certificates(db, authority, public_url, now, count_revoked=False)


def parse_since(text: str) -> float:
    """UNIX seconds, or ISO 8601 (a time without a zone is UTC). Raises ValueError."""
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def export_lines(db, since: float) -> Iterator[str]:
    """Status changes at or after `since`, oldest first, as JSON lines for an institution's own CA.

    A line names the card and (when this portal issued it) the certificate serial,
    never the holder's identity number.
    """
    for change in storage.certificates.certificate_changes_since(db, since):
        yield json.dumps({
            "id": change["id"],
            "at": datetime.fromtimestamp(change["at"], timezone.utc).isoformat(timespec="seconds"),
            "card_serial": change["card_serial"],
            "certificate_serial": change["serial_hex"],
            "action": change["action"],
            "status": change["status"],
            "reason": change["reason"] or None,
        }, ensure_ascii=False)

"""Yenileme Talebi: a holder asks the institution, from /certificate, to renew a certificate; an operator
closes the request in the console once it is dealt with.

Security assumptions: filing asks the institution for something and changes no certificate, so it needs
the login and the CSRF token but no step-up (a fresh code would only add an SMS). A holder reaches only
their own certificates (another holder's id is answered like an unknown one). One request stays open per
certificate (a unique index), so a second press, or two at once, file one. Filing and closing are audited;
both reach the institution's export (`kamusm certificates export`) and the console's list and CSV.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterator

from flask_babel import lazy_gettext as _l

from kamusm import audit, storage
from kamusm.certificates import NOT_FOUND, CertificateNotFound
from kamusm.errors import KamusmError
from kamusm.reminders import DAY_SECONDS, THRESHOLDS_DAYS

# Offered from the first reminder on: earlier, the institution could not yet act on it.
RENEWAL_WINDOW_SECONDS = max(THRESHOLDS_DAYS) * DAY_SECONDS
_ID_MAX_DIGITS = 18

NOT_OFFERED = _l("Bu sertifika için yenileme talebi şu anda gönderilemez: iptal edilmiş ya da bitişine 90 günden "
                 "fazla var.")
ALREADY_FILED = _l("Bu sertifika için yenileme talebiniz zaten kurumunuza iletilmiş; yeniden göndermeniz "
                   "gerekmez.")
ALREADY_DONE = _l("Bu yenileme talebi zaten tamamlanmış.")
REQUEST_NOT_FOUND = _l("Yenileme talebi bulunamadı.")


class RenewalRefused(KamusmError):
    """The certificate cannot be renewed from here (revoked, or its end is far off)."""

    status = 409


class AlreadyRequested(RenewalRefused):
    """The certificate has an open request already; `request` is that request's row."""

    def __init__(self, message: str, request: dict):
        super().__init__(message)
        self.request = request


class RenewalNotFound(KamusmError):
    status = 404


def may_request(certificate: dict, now: float) -> bool:
    """Not revoked, and ending within the window (or already ended). A certificate whose end the portal does
    not know (a status record of the institution's own CA) may always be asked for."""
    if certificate["status"] == "revoked":
        return False
    return certificate["not_after"] is None or certificate["not_after"] - now <= RENEWAL_WINDOW_SECONDS


def open_requests(db, holder_id: int) -> dict[int, dict]:
    """The holder's open requests by certificate id."""
    return {row["certificate_id"]: row for row in storage.reminders.holder_renewal_requests(db, holder_id)
            if row["state"] == "open"}


def file_request(db, holder_id: int, raw_certificate_id: str, ip: str, now: float) -> dict:
    """File a request for one of the holder's certificates; return its row.

    Raises CertificateNotFound (404), RenewalRefused (409), or AlreadyRequested (409, with the open request).
    """
    raw = raw_certificate_id or ""
    certificate = (storage.certificates.get_holder_certificate(db, holder_id, int(raw))
                   if raw.isascii() and raw.isdigit() and len(raw) <= _ID_MAX_DIGITS else None)
    if certificate is None:
        audit.record(db, now, "certificate.renewal_request", "rejected", holder_id, ip, problem="not_found")
        raise CertificateNotFound(NOT_FOUND)
    if not may_request(certificate, now):
        audit.record(db, now, "certificate.renewal_request", "rejected", holder_id, ip,
                     certificate_id=certificate["id"], problem="not_offered")
        raise RenewalRefused(NOT_OFFERED)
    with storage.write(db):
        request_id = storage.reminders.add_renewal_request(db, holder_id, certificate["id"], now)
        if request_id is not None:
            audit.record(db, now, "certificate.renewal_request", "ok", holder_id, ip,
                         certificate_id=certificate["id"], serial=certificate["serial_hex"], request_id=request_id)
            return storage.reminders.get_renewal_request(db, request_id)
    existing = storage.reminders.open_renewal_request(db, certificate["id"])
    audit.record(db, now, "certificate.renewal_request", "duplicate", holder_id, ip,
                 certificate_id=certificate["id"], request_id=existing["id"])
    raise AlreadyRequested(ALREADY_FILED, existing)


def mark_done(db, request_id: int, operator: str, ip: str, now: float) -> dict:
    """Close an open request (the operator dealt with it); return its row.

    Raises RenewalNotFound (404) or RenewalRefused (409, closed already)."""
    row = storage.reminders.get_renewal_request(db, request_id)
    if row is None:
        raise RenewalNotFound(REQUEST_NOT_FOUND)
    with storage.write(db):
        if not storage.reminders.mark_renewal_done(db, request_id, now):
            raise RenewalRefused(ALREADY_DONE)
        audit.record(db, now, "certificate.renewal_done", "ok", row["holder_id"], ip, operator=operator,
                     certificate_id=row["certificate_id"], request_id=request_id)
    return storage.reminders.get_renewal_request(db, request_id)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def export_lines(db, since: float) -> Iterator[str]:
    """Requests filed and closed at or after `since`, oldest first, as JSON lines beside the status changes
    (kind "renewal"; like them, naming the card and the certificate, never the holder's identity number)."""
    events = []
    for row in storage.reminders.renewal_events_since(db, since):
        moments = [("renewal_request", "open", row["requested_at"])]
        if row["done_at"] is not None:
            moments.append(("renewal_done", "done", row["done_at"]))
        events += [(at, row, action, state) for action, state, at in moments if at >= since]
    for at, row, action, state in sorted(events, key=lambda event: (event[0], event[1]["id"])):
        yield json.dumps({"kind": "renewal", "id": row["id"], "at": _iso(at), "card_serial": row["card_serial"],
                          "certificate_serial": row["serial_hex"], "action": action, "status": state},
                         ensure_ascii=False)

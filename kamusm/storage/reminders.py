"""Expiry reminders (one row per certificate, threshold and channel) and the holders' renewal requests."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, write

_REMINDER_CONTEXT = """
    SELECT reminders.*, certificates.holder_id, certificates.status, certificates.not_after,
           certificates.serial_hex, certificates.card_serial, holders.name, holders.phone, holders.email,
           EXISTS (SELECT 1 FROM renewal_requests WHERE renewal_requests.certificate_id = certificates.id)
             AS renewal_requested
    FROM reminders JOIN certificates ON certificates.id = reminders.certificate_id
    JOIN holders ON holders.id = certificates.holder_id"""


def expiring_certificates(db: sqlite_utils.Database, now: float, until: float) -> list[dict]:
    """Certificates not revoked whose end falls in (now, until], with their holder's contacts, leaving out
    those the holder has already asked to renew."""
    return fetch_all(
        db,
        """SELECT certificates.id, certificates.not_after, holders.phone, holders.email
           FROM certificates JOIN holders ON holders.id = certificates.holder_id
           WHERE certificates.status IN ('valid', 'suspended') AND certificates.not_after > ?
             AND certificates.not_after <= ?
             AND NOT EXISTS (SELECT 1 FROM renewal_requests WHERE renewal_requests.certificate_id = certificates.id)
           ORDER BY certificates.id""", [now, until])


def queue_reminder(db: sqlite_utils.Database, certificate_id: int, days: int, channel: str, now: float) -> bool:
    """Queue one reminder; False when that certificate, threshold and channel already has one (the unique key
    makes a second run, or a parallel one, queue nothing)."""
    with write(db):
        return db.execute(
            """INSERT INTO reminders (certificate_id, days, channel, next_try_at, created_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            [certificate_id, days, channel, now, now]).rowcount == 1


def due_reminders(db: sqlite_utils.Database, now: float) -> list[dict]:
    """Pending reminders whose next try has come, with their certificate and holder."""
    return fetch_all(db, _REMINDER_CONTEXT + """
        WHERE reminders.state = 'pending' AND reminders.next_try_at <= ? ORDER BY reminders.id""", [now])


def claim_reminder(db: sqlite_utils.Database, reminder_id: int, now: float, retry_at: float) -> dict | None:
    """Take one try of a due reminder for this run: count the try and move its next try to `retry_at` at once,
    so a run in parallel finds it not due. None when another run took it first."""
    with write(db):
        claimed = db.execute(
            """UPDATE reminders SET tries = tries + 1, next_try_at = ?
               WHERE id = ? AND state = 'pending' AND next_try_at <= ?""", [retry_at, reminder_id, now]).rowcount
        if not claimed:
            return None
        return fetch_one(db, _REMINDER_CONTEXT + " WHERE reminders.id = ?", [reminder_id])


def set_reminder_mail(db: sqlite_utils.Database, reminder_id: int, mail_id: int) -> None:
    with write(db):
        db.execute("UPDATE reminders SET mail_id = ? WHERE id = ?", [mail_id, reminder_id])


def mark_reminder_sent(db: sqlite_utils.Database, reminder_id: int, now: float) -> None:
    with write(db):
        db.execute("UPDATE reminders SET state = 'sent', sent_at = ?, reason = '' WHERE id = ?", [now, reminder_id])


def mark_reminder_failed(db: sqlite_utils.Database, reminder_id: int, reason: str, final: bool) -> None:
    """Note why a try failed; final=True ends the reminder (state failed), else the claimed retry stands."""
    with write(db):
        db.execute("UPDATE reminders SET reason = ?, state = CASE WHEN ? = 1 THEN 'failed' ELSE state END WHERE id = ?",
                   [reason, int(final), reminder_id])


def holder_reminders(db: sqlite_utils.Database, holder_id: int) -> list[dict]:
    return fetch_all(
        db,
        """SELECT reminders.*, certificates.serial_hex, certificates.card_serial FROM reminders
           JOIN certificates ON certificates.id = reminders.certificate_id
           WHERE certificates.holder_id = ? ORDER BY reminders.id DESC""", [holder_id])


def add_renewal_request(db: sqlite_utils.Database, holder_id: int, certificate_id: int, now: float) -> int | None:
    """A new open request; None when the certificate has one open already (the partial unique index)."""
    with write(db):
        row = db.execute(
            """INSERT INTO renewal_requests (holder_id, certificate_id, requested_at) VALUES (?, ?, ?)
               ON CONFLICT DO NOTHING RETURNING id""", [holder_id, certificate_id, now]).fetchone()
        return row[0] if row else None


def open_renewal_request(db: sqlite_utils.Database, certificate_id: int) -> dict | None:
    return fetch_one(db, "SELECT * FROM renewal_requests WHERE certificate_id = ? AND state = 'open'",
                     [certificate_id])


def holder_renewal_requests(db: sqlite_utils.Database, holder_id: int) -> list[dict]:
    return fetch_all(
        db,
        """SELECT renewal_requests.*, certificates.serial_hex, certificates.card_serial FROM renewal_requests
           JOIN certificates ON certificates.id = renewal_requests.certificate_id
           WHERE renewal_requests.holder_id = ? ORDER BY renewal_requests.id DESC""", [holder_id])


def open_renewal_requests(db: sqlite_utils.Database) -> list[dict]:
    """Every open request, oldest first, with the holder's name and the certificate."""
    return fetch_all(
        db,
        """SELECT renewal_requests.*, holders.name, certificates.serial_hex, certificates.card_serial,
                  certificates.not_after, certificates.status
           FROM renewal_requests JOIN holders ON holders.id = renewal_requests.holder_id
           JOIN certificates ON certificates.id = renewal_requests.certificate_id
           WHERE renewal_requests.state = 'open' ORDER BY renewal_requests.requested_at, renewal_requests.id""")


def get_renewal_request(db: sqlite_utils.Database, request_id: int) -> dict | None:
    return fetch_one(db, "SELECT * FROM renewal_requests WHERE id = ?", [request_id])


def mark_renewal_done(db: sqlite_utils.Database, request_id: int, now: float) -> bool:
    """Close an open request; False when it was not open (closed by someone else first)."""
    with write(db):
        return db.execute("UPDATE renewal_requests SET state = 'done', done_at = ? WHERE id = ? AND state = 'open'",
                          [now, request_id]).rowcount == 1


def renewal_events_since(db: sqlite_utils.Database, since: float) -> list[dict]:
    """Requests filed or closed at or after `since`, with their certificate, for the institution's export."""
    return fetch_all(
        db,
        """SELECT renewal_requests.*, certificates.card_serial, certificates.serial_hex FROM renewal_requests
           JOIN certificates ON certificates.id = renewal_requests.certificate_id
           WHERE renewal_requests.requested_at >= ? OR renewal_requests.done_at >= ?
           ORDER BY renewal_requests.id""", [since, since])

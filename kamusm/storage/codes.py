"""SMS codes: their MACs, tries and the send counters."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_one, write


def count_codes_sent_since(db: sqlite_utils.Database, holder_id: int, since: float) -> int:
    return fetch_one(db, "SELECT count(*) AS n FROM sms_codes WHERE holder_id = ? AND sent_at >= ?",
                     [holder_id, since])["n"]


def latest_code(db: sqlite_utils.Database, attempt: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM sms_codes WHERE attempt = ? ORDER BY id DESC LIMIT 1", [attempt])


def insert_code(db: sqlite_utils.Database, holder_id: int, attempt: str, code_mac: str,
                sent_at: float, expires_at: float) -> int:
    """Store a new code for the attempt; older codes of the attempt stop working."""
    with write(db):
        db.execute("UPDATE sms_codes SET used_at = ? WHERE attempt = ? AND used_at IS NULL",
                   [sent_at, attempt])
        return db.execute(
            """INSERT INTO sms_codes (holder_id, attempt, code_mac, sent_at, expires_at)
               VALUES (?, ?, ?, ?, ?) RETURNING id""",
            [holder_id, attempt, code_mac, sent_at, expires_at]).fetchone()[0]


def void_codes(db: sqlite_utils.Database, attempt: str, now: float) -> None:
    """End the attempt's unused codes (a newer request replaced the attempt); they still count as sent."""
    with write(db):
        db.execute("UPDATE sms_codes SET used_at = ? WHERE attempt = ? AND used_at IS NULL", [now, attempt])


def delete_code(db: sqlite_utils.Database, code_id: int) -> None:
    with write(db):
        db.execute("DELETE FROM sms_codes WHERE id = ?", [code_id])


def reserve_code_try(db: sqlite_utils.Database, code_id: int, now: float, max_wrong_tries: int) -> int | None:
    """Count one try as wrong before the code is compared; return the tries counted so far, or None
    when the code is used, expired or out of tries. Conditional, so parallel guesses in any worker
    are never compared more than max_wrong_tries times."""
    with write(db):
        row = fetch_one(db, """UPDATE sms_codes SET wrong_tries = wrong_tries + 1
                          WHERE id = ? AND used_at IS NULL AND expires_at >= ? AND wrong_tries < ?
RETURNING wrong_tries""", [code_id, now, max_wrong_tries])
    return row["wrong_tries"] if row else None


def claim_code(db: sqlite_utils.Database, code_id: int, now: float) -> bool:
    """Mark the code used and give back the try reserved for it; True for exactly one caller."""
    with write(db):
        return db.execute("UPDATE sms_codes SET used_at = ?, wrong_tries = wrong_tries - 1 WHERE id = ? "
                          "AND used_at IS NULL", [now, code_id]).rowcount == 1

"""The mail queue: what the portal sends over SMTP and what failed."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, write


def enqueue_mail(db: sqlite_utils.Database, holder_id: int | None, recipient: str, subject: str, body: str,
                 now: float) -> int:
    with write(db):
        return db.execute(
            """INSERT INTO mail_queue (holder_id, recipient, subject, body, queued_at) VALUES (?, ?, ?, ?, ?)
               RETURNING id""",
            [holder_id, recipient, subject, body, now]).fetchone()[0]


def get_queued_mail(db: sqlite_utils.Database, mail_id: int) -> dict | None:
    return fetch_one(db, "SELECT * FROM mail_queue WHERE id = ?", [mail_id])


def mark_mail_sent(db: sqlite_utils.Database, mail_id: int, now: float) -> None:
    """Mark sent and drop the body: it may hold a one-time link, which must not outlive delivery here."""
    with write(db):
        db.execute("UPDATE mail_queue SET sent_at = ?, body = '', tries = tries + 1 WHERE id = ?", [now, mail_id])


def mark_mail_failed(db: sqlite_utils.Database, mail_id: int, reason: str, now: float) -> None:
    with write(db):
        db.execute("UPDATE mail_queue SET failed_at = ?, reason = ?, tries = tries + 1 WHERE id = ?",
                   [now, reason, mail_id])


def pending_mail(db: sqlite_utils.Database) -> list[dict]:
    return fetch_all(db, "SELECT id FROM mail_queue WHERE sent_at IS NULL ORDER BY id")


def recent_mail(db: sqlite_utils.Database, limit: int) -> list[dict]:
    """The newest queued messages without their bodies (which may carry links)."""
    return fetch_all(db, """SELECT id, holder_id, recipient, subject, queued_at, sent_at, failed_at, reason, tries
                            FROM mail_queue ORDER BY id DESC LIMIT ?""", [limit])


def mail_counts(db: sqlite_utils.Database) -> dict:
    """{"pending": not yet sent, "failed": not yet sent after a failed try}."""
    return fetch_one(db, """SELECT count(*) AS pending, count(failed_at) AS failed
                            FROM mail_queue WHERE sent_at IS NULL""")

"""The demo outbox: SMS and mail a demo shows on its phone and mail pages instead of sending."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, write


def add_to_outbox(db: sqlite_utils.Database, kind: str, recipient: str, body: str, now: float,
                  subject: str = "") -> None:
    with write(db):
        db.execute("INSERT INTO outbox (kind, recipient, subject, body, sent_at) VALUES (?, ?, ?, ?, ?)",
                   [kind, recipient, subject, body, now])


def latest_outbox(db: sqlite_utils.Database, kind: str | None = None, limit: int = 20) -> list[dict]:
    if kind is None:
        return fetch_all(db, "SELECT * FROM outbox ORDER BY id DESC LIMIT ?", [limit])
    return fetch_all(db, "SELECT * FROM outbox WHERE kind = ? ORDER BY id DESC LIMIT ?", [kind, limit])


def recent_outbox_meta(db: sqlite_utils.Database, limit: int) -> list[dict]:
    """The newest outbox messages: kind, recipient and time, never the body (codes and links)."""
    return fetch_all(db, "SELECT id, kind, recipient, sent_at FROM outbox ORDER BY id DESC LIMIT ?", [limit])

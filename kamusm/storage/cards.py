"""Cards: which card a holder has and what happened to its PIN/PUK."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, write


def holder_cards(db: sqlite_utils.Database, holder_id: int) -> list[dict]:
    return fetch_all(db, "SELECT * FROM cards WHERE holder_id = ? ORDER BY id", [holder_id])


def find_card(db: sqlite_utils.Database, serial: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM cards WHERE serial = ?", [serial])


def upsert_card(db: sqlite_utils.Database, holder_id: int, serial: str, cert_issued: str) -> None:
    """Insert or update a card by serial; a re-imported card gets its secrets back, so un-delete it."""
    with write(db):
        db.execute(
            """INSERT INTO cards (holder_id, serial, cert_issued) VALUES (?, ?, ?)
               ON CONFLICT(serial) DO UPDATE SET holder_id = excluded.holder_id,
                 cert_issued = excluded.cert_issued, secrets_deleted_at = NULL, pin_replaced_at = NULL""",
            [holder_id, serial, cert_issued])


def mark_secrets_deleted(db: sqlite_utils.Database, holder_id: int, now: float) -> None:
    with write(db):
        db.execute("UPDATE cards SET secrets_deleted_at = ? WHERE holder_id = ?", [now, holder_id])


def mark_pin_replaced(db: sqlite_utils.Database, serial: str, now: float) -> None:
    with write(db):
        db.execute("UPDATE cards SET pin_replaced_at = ? WHERE serial = ?", [now, serial])

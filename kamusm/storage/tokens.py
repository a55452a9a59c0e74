"""One-time link tokens (activation, reset, e-mail change), keyed by the hash of the token."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_one, write


def save_token(db: sqlite_utils.Database, id_hash: str, holder_id: int, purpose: str, now: float,
               expires_at: float, payload: str = "") -> None:
    """Store a new token; the holder's older unused tokens of the same purpose stop working."""
    with write(db):
        void_tokens(db, holder_id, purpose, now)
        db.execute("""INSERT INTO tokens (id_hash, holder_id, purpose, created_at, expires_at, payload)
                      VALUES (?, ?, ?, ?, ?, ?)""", [id_hash, holder_id, purpose, now, expires_at, payload])


def void_tokens(db: sqlite_utils.Database, holder_id: int, purpose: str, now: float) -> int:
    """End the holder's live tokens of the purpose, marked as voided (not used); return how many."""
    with write(db):
        return db.execute("""UPDATE tokens SET used_at = ?, voided_at = ?
                             WHERE holder_id = ? AND purpose = ? AND used_at IS NULL AND expires_at >= ?""",
                          [now, now, holder_id, purpose, now]).rowcount


def find_token(db: sqlite_utils.Database, id_hash: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM tokens WHERE id_hash = ?", [id_hash])


def claim_token(db: sqlite_utils.Database, id_hash: str, now: float) -> bool:
    with write(db):
        return db.execute("UPDATE tokens SET used_at = ? WHERE id_hash = ? AND used_at IS NULL AND expires_at >= ?",
                          [now, id_hash, now]).rowcount == 1


def count_tokens_since(db: sqlite_utils.Database, holder_id: int, purpose: str, since: float) -> int:
    return fetch_one(db, "SELECT count(*) AS n FROM tokens WHERE holder_id = ? AND purpose = ? AND created_at >= ?",
                     [holder_id, purpose, since])["n"]

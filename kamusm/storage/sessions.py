"""Server-side sessions, keyed by the SHA-256 of the cookie value (the cookie itself is never stored)."""
from __future__ import annotations

import json

import sqlite_utils

from kamusm.storage.connection import fetch_one, write


def load_session(db: sqlite_utils.Database, id_hash: str) -> dict | None:
    row = fetch_one(db, "SELECT * FROM sessions WHERE id_hash = ?", [id_hash])
    if row is not None:
        row["data"] = json.loads(row["data"])
    return row


def save_session(db: sqlite_utils.Database, id_hash: str, data: dict, holder_id: int | None,
                 created_at: float, now: float) -> None:
    with write(db):
        db.execute(
            """INSERT INTO sessions (id_hash, data, holder_id, created_at, seen_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(id_hash) DO UPDATE SET
                 data = excluded.data, holder_id = excluded.holder_id, seen_at = excluded.seen_at""",
            [id_hash, json.dumps(data, separators=(",", ":")), holder_id, created_at, now])


def touch_session(db: sqlite_utils.Database, id_hash: str, now: float) -> None:
    with write(db):
        db.execute("UPDATE sessions SET seen_at = ? WHERE id_hash = ?", [now, id_hash])


def delete_session(db: sqlite_utils.Database, id_hash: str) -> None:
    with write(db):
        db.execute("DELETE FROM sessions WHERE id_hash = ?", [id_hash])


def delete_expired_sessions(db: sqlite_utils.Database, idle_before: float, created_before: float,
                            admin_idle_before: float | None = None) -> int:
    """Delete sessions last seen before idle_before (a console session: admin_idle_before) or made before
    created_before."""
    admin_idle_before = idle_before if admin_idle_before is None else admin_idle_before
    with write(db):
        return db.execute("""DELETE FROM sessions
                             WHERE seen_at < CASE json_extract(data, '$._area') WHEN 'admin' THEN ? ELSE ? END
                                OR created_at < ?""", [admin_idle_before, idle_before, created_before]).rowcount


def delete_holder_sessions(db: sqlite_utils.Database, holder_id: int) -> int:
    with write(db):
        return db.execute("DELETE FROM sessions WHERE holder_id = ?", [holder_id]).rowcount

"""Paired helper keys and the pairings in progress."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, write


def holder_helper_keys(db: sqlite_utils.Database, holder_id: int) -> list[dict]:
    return fetch_all(db, "SELECT * FROM helper_keys WHERE holder_id = ? ORDER BY paired_at, id", [holder_id])


def find_helper_key(db: sqlite_utils.Database, holder_id: int, public_key: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM helper_keys WHERE holder_id = ? AND public_key = ?", [holder_id, public_key])


def pin_helper_key(db: sqlite_utils.Database, holder_id: int, public_key: str, fingerprint: str, name: str,
                   now: float) -> int:
    """Pin a helper key to the holder (a key paired again keeps its first pairing time); return its id."""
    with write(db):
        db.execute("""INSERT INTO helper_keys (holder_id, public_key, fingerprint, name, paired_at)
                      VALUES (?, ?, ?, ?, ?)
                      ON CONFLICT(holder_id, public_key) DO UPDATE SET name = excluded.name""",
                   [holder_id, public_key, fingerprint, name, now])
        return find_helper_key(db, holder_id, public_key)["id"]


def touch_helper_key(db: sqlite_utils.Database, key_id: int, now: float) -> None:
    with write(db):
        db.execute("UPDATE helper_keys SET last_used_at = ? WHERE id = ?", [now, key_id])


def delete_helper_key(db: sqlite_utils.Database, holder_id: int, key_id: int) -> dict | None:
    """Unpin one of the holder's helper keys; return the row removed, None when it is not theirs."""
    with write(db):
        row = fetch_one(db, "SELECT * FROM helper_keys WHERE id = ? AND holder_id = ?", [key_id, holder_id])
        if row is not None:
            db.execute("DELETE FROM helper_keys WHERE id = ?", [key_id])
        return row


def start_pairing(db: sqlite_utils.Database, holder_id: int, attempt: str, public_key: str, name: str,
                  code_mac: str, now: float, expires_at: float) -> int:
    """Record a pairing on its way; the holder's older unfinished pairings are voided in the same transaction."""
    with write(db):
        db.execute("DELETE FROM helper_pairings WHERE holder_id = ? AND used_at IS NULL", [holder_id])
        db.execute("DELETE FROM helper_pairings WHERE expires_at < ?", [now])
        cursor = db.execute(
            """INSERT INTO helper_pairings (holder_id, attempt, public_key, name, code_mac, created_at, expires_at)
               VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id""", [holder_id, attempt, public_key, name, code_mac, now,
                                                             expires_at])
        return cursor.fetchone()[0]


def find_pairing(db: sqlite_utils.Database, holder_id: int, attempt: str) -> dict | None:
    """The holder's unfinished pairing made under this session's attempt id, if any."""
    return fetch_one(db, """SELECT * FROM helper_pairings WHERE holder_id = ? AND attempt = ? AND used_at IS NULL
                       ORDER BY id DESC LIMIT 1""", [holder_id, attempt])


def reserve_pairing_try(db: sqlite_utils.Database, pairing_id: int, now: float, max_tries: int) -> int | None:
    """Spend one try before the code is compared, so parallel guesses never exceed max_tries.

    Returns the tries spent with this one, None when none was left (or the pairing is over).
    """
    with write(db):
        row = fetch_one(db, """UPDATE helper_pairings SET tries = tries + 1
                          WHERE id = ? AND used_at IS NULL AND expires_at >= ? AND tries < ?
      RETURNING tries""", [pairing_id, now, max_tries])
    return row["tries"] if row else None


def claim_pairing(db: sqlite_utils.Database, pairing_id: int, now: float) -> bool:
    """Mark the pairing used; False when another request used it first."""
    with write(db):
        cursor = db.execute("UPDATE helper_pairings SET used_at = ? WHERE id = ? AND used_at IS NULL",
                            [now, pairing_id])
        return cursor.rowcount == 1

"""The vault's rows: wrapped data keys and sealed PIN/PUK."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, write


def get_data_key(db: sqlite_utils.Database, holder_id: int) -> dict | None:
    return fetch_one(db, "SELECT * FROM data_keys WHERE holder_id = ?", [holder_id])


def save_data_key(db: sqlite_utils.Database, holder_id: int, wrapped_key: bytes, kek_id: str) -> None:
    with write(db):
        db.execute(
            """INSERT INTO data_keys (holder_id, wrapped_key, kek_id) VALUES (?, ?, ?)
               ON CONFLICT(holder_id) DO UPDATE SET wrapped_key = excluded.wrapped_key, kek_id = excluded.kek_id""",
            [holder_id, wrapped_key, kek_id])


def delete_data_key(db: sqlite_utils.Database, holder_id: int) -> None:
    with write(db):
        db.execute("DELETE FROM data_keys WHERE holder_id = ?", [holder_id])


def data_keys_not_under(db: sqlite_utils.Database, kek_id: str) -> list[dict]:
    return fetch_all(db, "SELECT * FROM data_keys WHERE kek_id != ? ORDER BY holder_id", [kek_id])


def save_secret(db: sqlite_utils.Database, holder_id: int, serial: str, field: str, sealed: bytes) -> None:
    with write(db):
        db.execute(
            """INSERT INTO secrets (holder_id, serial, field, sealed) VALUES (?, ?, ?, ?)
               ON CONFLICT(holder_id, serial, field) DO UPDATE SET sealed = excluded.sealed""",
            [holder_id, serial, field, sealed])


def card_secrets(db: sqlite_utils.Database, holder_id: int, serial: str) -> list[dict]:
    return fetch_all(db, "SELECT field, sealed FROM secrets WHERE holder_id = ? AND serial = ? ORDER BY field",
                     [holder_id, serial])


def delete_secrets(db: sqlite_utils.Database, holder_id: int) -> int:
    with write(db):
        return db.execute("DELETE FROM secrets WHERE holder_id = ?", [holder_id]).rowcount


def count_data_keys(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM data_keys").fetchone()[0]

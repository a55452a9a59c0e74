"""Signed receipts the holder downloads: kept as signed, never rewritten."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one


def next_receipt_id(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM receipts").fetchone()[0]


def add_receipt(db: sqlite_utils.Database, receipt_id: int, holder_id: int, kind: str, now: float,
                signed: bytes) -> int:
    db.execute("INSERT INTO receipts (id, holder_id, kind, created_at, signed) VALUES (?, ?, ?, ?, ?)",
               [receipt_id, holder_id, kind, now, signed])
    return receipt_id


def get_holder_receipt(db: sqlite_utils.Database, holder_id: int, receipt_id: int) -> dict | None:
    return fetch_one(db, "SELECT * FROM receipts WHERE id = ? AND holder_id = ?", [receipt_id, holder_id])


def holder_receipts(db: sqlite_utils.Database, holder_id: int, limit: int = 50) -> list[dict]:
    return fetch_all(db, "SELECT id, kind, created_at FROM receipts WHERE holder_id = ? ORDER BY id DESC LIMIT ?",
                     [holder_id, limit])


def latest_holder_receipt(db: sqlite_utils.Database, holder_id: int, kind: str) -> dict | None:
    return fetch_one(db, "SELECT id, kind, created_at FROM receipts WHERE holder_id = ? AND kind = ? "
                         "ORDER BY id DESC LIMIT 1", [holder_id, kind])

"""The audit log: an append-only hash chain."""
from __future__ import annotations

from typing import Any, Iterator

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, iter_dicts


def last_audit_hash(db: sqlite_utils.Database) -> str | None:
    row = fetch_one(db, "SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
    return row["hash"] if row else None


def append_audit(db: sqlite_utils.Database, entry: dict) -> None:
    db.execute(
        """INSERT INTO audit (at, event, outcome, holder_id, ip, detail, prev_hash, hash)
           VALUES (:at, :event, :outcome, :holder_id, :ip, :detail, :prev_hash, :hash)""", entry)


def count_audit_events(db: sqlite_utils.Database, holder_id: int, event: str, outcome: str, since: float) -> int:
    return fetch_one(db, "SELECT count(*) AS n FROM audit"
                     " WHERE holder_id = ? AND event = ? AND outcome = ? AND at >= ?",
                     [holder_id, event, outcome, since])["n"]


def audit_entries(db: sqlite_utils.Database, holder_id: int | None = None, limit: int | None = None) -> Iterator[dict]:
    sql = "SELECT * FROM audit"
    params: list[Any] = []
    if holder_id is not None:
        sql += " WHERE holder_id = ?"
        params.append(holder_id)
    sql += " ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    cursor = db.conn.execute(sql, params)
    try:
        yield from iter_dicts(cursor)  # streamed: the log can be long
    finally:
        cursor.close()


NO_LIMIT = 2**62  # more rows than any table holds: PostgreSQL refuses SQLite's LIMIT -1


def search_audit(db: sqlite_utils.Database, *, holder_id: int | None = None, event: str = "", operator: str = "",
                 since: float | None = None, until: float | None = None, limit: int | None = None,
                 offset: int = 0) -> list[dict]:
    """Audit entries, newest first, filtered: a holder, an event name prefix, the operator named in the detail,
    a time range (None or "" leaves a filter out)."""
    return fetch_all(db, """SELECT * FROM audit
                            WHERE (CAST(? AS BIGINT) IS NULL OR holder_id = ?)
                              AND (? = '' OR substr(event, 1, length(?)) = ?)
                              AND (? = '' OR json_extract(detail, '$.operator') = ?)
                              AND (CAST(? AS DOUBLE PRECISION) IS NULL OR at >= ?)
                              AND (CAST(? AS DOUBLE PRECISION) IS NULL OR at < ?)
                            ORDER BY id DESC LIMIT ? OFFSET ?""",
                     [holder_id, holder_id, event, event, event, operator, operator, since, since, until, until,
                      NO_LIMIT if limit is None else limit, offset])

"""The connection and the write transaction every storage module uses.

BEGIN IMMEDIATE: the writer takes the lock up front, so two workers never both read a counter
and then both write it. Reads fetch all rows at once so no snapshot outlives a call.
"""
from __future__ import annotations

import os
import random
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import psycopg
import sqlite_utils

from kamusm.storage import postgres

BUSY_TIMEOUT_SECONDS = 5
LOCK_POLL_MIN_SECONDS = 0.0002
LOCK_POLL_MAX_SECONDS = 0.001
SYNCHRONOUS_FULL = 2
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# What a storage fault is, whichever database: the web layer turns these into a 503 and a fresh connection.
StorageError = (sqlite3.Error, psycopg.Error)
StorageUnavailable = (sqlite3.OperationalError, psycopg.OperationalError)


def connect(location: str | Path) -> sqlite_utils.Database | postgres.Database:
    """A SQLite file path (or sqlite:///path) or a postgresql:// URL (KAMUSM_DATABASE_URL)."""
    path = sqlite_path(location)
    return postgres.Database(str(location)) if path is None else connect_sqlite(path)


def sqlite_path(location: str | Path) -> str | None:
    """The SQLite file a location names, None for a PostgreSQL URL."""
    text = str(location)
    if text.startswith(POSTGRES_SCHEMES):
        return None
    return text.removeprefix("sqlite:///")


def describe(location: str | Path) -> str:
    """The location to print: a PostgreSQL URL without its password."""
    text = str(location)
    if text.startswith(POSTGRES_SCHEMES) and "@" in text:
        scheme, rest = text.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return text


def connect_sqlite(path: str | Path) -> sqlite_utils.Database:
    """Open the database with the pragmas every connection needs.

    isolation_level=None hands transaction control to `write()`. synchronous=NORMAL: in WAL mode a
    commit then survives a crash of the process but may be lost, never half-written, in a power cut;
    `write(db, durable=True)` commits with FULL where that is not enough (vault secrets, actions the
    holder is told are final). FULL everywhere would hold the write lock through an fsync on every
    commit (bench/README.md).
    """
    if str(path) != ":memory:" and not os.path.exists(path):
        # Created owner-only: it holds sealed secrets and password hashes (SQLite gives -wal/-shm the same mode).
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA secure_delete = ON")
    return sqlite_utils.Database(conn)


@contextmanager
def write(db: sqlite_utils.Database, durable: bool = False) -> Iterator[sqlite_utils.Database]:
    """One write transaction, BEGIN IMMEDIATE; nested calls join the outer one.

    durable=True commits with synchronous=FULL (fsync before COMMIT returns). SQLite fixes the
    level when the transaction begins, so a durable write nested in an ordinary one is refused.
    """
    conn = db.conn
    if postgres.is_postgres(db):  # every PostgreSQL commit is durable (synchronous_commit stays on)
        yield from _write_postgres(db)
        return
    if conn.in_transaction:
        if durable and conn.execute("PRAGMA synchronous").fetchone()[0] != SYNCHRONOUS_FULL:
            raise RuntimeError("a durable write cannot join an ordinary transaction; make the outer one durable")
        yield db
        return
    if durable:
        conn.execute("PRAGMA synchronous = FULL")
    try:
        _begin_immediate(conn)
        try:
            yield db
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # also after a COMMIT that failed (disk full): it leaves the transaction open
                conn.execute("ROLLBACK")
            raise
    finally:
        if durable and not conn.in_transaction:  # else the connection is past saving and gets discarded
            conn.execute("PRAGMA synchronous = NORMAL")


def _write_postgres(db: postgres.Database) -> Iterator[postgres.Database]:
    if db.conn.in_transaction:
        yield db
        return
    db.begin_write()
    try:
        yield db
        db.conn.raw.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.raw.execute("ROLLBACK")
        raise


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting up to the busy timeout for the write lock.

    Polled here in steps of at most a millisecond rather than by SQLite's busy handler, whose
    sleeps grow to 100 ms: under many writers a waiter then sleeps long after the lock is free and
    others keep overtaking it, which made the slowest 1 % of requests 20 times the median.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(random.uniform(LOCK_POLL_MIN_SECONDS, LOCK_POLL_MAX_SECONDS))  # noqa: S311 - jitter, not a secret
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")


def fetch_all(db: sqlite_utils.Database, sql: str, params: Any = ()) -> list[dict]:
    """Run a SELECT and fetch every row as a dict.

    Straight on the connection: sqlite-utils' query() wraps each read in a savepoint (two more
    statements). Fetching all rows ends the statement, so no read snapshot outlives the call on
    a connection that the next request reuses.
    """
    return list(iter_dicts(db.conn.execute(sql, params)))


def iter_dicts(cursor: sqlite3.Cursor) -> Iterator[dict]:
    names = [column[0] for column in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def fetch_one(db: sqlite_utils.Database, sql: str, params: Any = ()) -> dict | None:
    rows = fetch_all(db, sql, params)
    return rows[0] if rows else None


def rollback_if_open(db: sqlite_utils.Database) -> None:
    """End a transaction a request left open (an exception inside write() already rolled its own back)."""
    if db.conn.in_transaction:
        db.conn.execute("ROLLBACK")

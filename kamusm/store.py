"""SQLite storage: the only module that holds SQL.

Every function takes the sqlite-utils Database first and, where time matters,
`now` as a timezone-free UNIX timestamp (float seconds), so rules can be tested
with a fixed clock. Writes run inside `write(db)`, which is BEGIN IMMEDIATE:
the writer takes the lock up front, so two workers never both read a counter
and then both write it. The schema is a list of numbered migrations recorded
in PRAGMA user_version; a migration never drops data.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

BUSY_TIMEOUT_SECONDS = 5
LOCK_POLL_MIN_SECONDS = 0.0002
LOCK_POLL_MAX_SECONDS = 0.001
SYNCHRONOUS_FULL = 2


def connect(path: str | Path) -> sqlite_utils.Database:
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


def _rows(db: sqlite_utils.Database, sql: str, params: Any = ()) -> list[dict]:
    """Run a SELECT and fetch every row as a dict.

    Straight on the connection: sqlite-utils' query() wraps each read in a savepoint (two more
    statements). Fetching all rows ends the statement, so no read snapshot outlives the call on
    a connection that the next request reuses.
    """
    return list(_dicts(db.conn.execute(sql, params)))


def _dicts(cursor: sqlite3.Cursor) -> Iterator[dict]:
    names = [column[0] for column in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def _one(db: sqlite_utils.Database, sql: str, params: Any = ()) -> dict | None:
    rows = _rows(db, sql, params)
    return rows[0] if rows else None


# Migrations ----------------------------------------------------------------

def _migration_1(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE holders (
            id INTEGER PRIMARY KEY,
            identity TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            phone TEXT NOT NULL,
            email TEXT NOT NULL,
            word_hash TEXT,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )""")
    db.execute("""
        CREATE TABLE sessions (
            id_hash TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            holder_id INTEGER,
            created_at REAL NOT NULL,
            seen_at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX sessions_holder ON sessions(holder_id)")
    db.execute("""
        CREATE TABLE captchas (
            id TEXT PRIMARY KEY,
            answer_mac TEXT NOT NULL,
            expires_at REAL NOT NULL
        )""")
    db.execute("""
        CREATE TABLE sms_codes (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            attempt TEXT NOT NULL,
            code_mac TEXT NOT NULL,
            sent_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            wrong_tries INTEGER NOT NULL DEFAULT 0,
            used_at REAL
        )""")
    db.execute("CREATE INDEX sms_codes_attempt ON sms_codes(attempt)")
    db.execute("CREATE INDEX sms_codes_holder_sent ON sms_codes(holder_id, sent_at)")
    db.execute("""
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            recipient TEXT NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL,
            sent_at REAL NOT NULL
        )""")
    db.execute("""
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            event TEXT NOT NULL,
            outcome TEXT NOT NULL,
            holder_id INTEGER,
            ip TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '{}',
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")
    db.execute("""
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")


def _migration_2(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE cards (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            serial TEXT NOT NULL UNIQUE,
            cert_issued TEXT NOT NULL,
            pin_replaced_at REAL,
            secrets_deleted_at REAL
        )""")
    db.execute("CREATE INDEX cards_holder ON cards(holder_id)")
    db.execute("""
        CREATE TABLE data_keys (
            holder_id INTEGER PRIMARY KEY REFERENCES holders(id),
            wrapped_key BLOB NOT NULL,
            kek_id TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX data_keys_kek ON data_keys(kek_id)")
    db.execute("""
        CREATE TABLE secrets (
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            serial TEXT NOT NULL,
            field TEXT NOT NULL CHECK (field IN ('pin', 'puk')),
            sealed BLOB NOT NULL,
            PRIMARY KEY (holder_id, serial, field)
        )""")
    db.execute("""
        CREATE TABLE tokens (
            id_hash TEXT PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            purpose TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL
        )""")
    db.execute("CREATE INDEX tokens_holder ON tokens(holder_id, purpose)")


def _migration_3(db: sqlite_utils.Database) -> None:
    db.execute("CREATE INDEX audit_holder_event ON audit(holder_id, event, at)")


def _migration_4(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE mail_queue (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER REFERENCES holders(id),
            recipient TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            queued_at REAL NOT NULL,
            sent_at REAL,
            failed_at REAL,
            reason TEXT NOT NULL DEFAULT '',
            tries INTEGER NOT NULL DEFAULT 0
        )""")
    db.execute("CREATE INDEX mail_queue_pending ON mail_queue(sent_at)")
    db.execute("ALTER TABLE tokens ADD COLUMN payload TEXT NOT NULL DEFAULT ''")


def _migration_5(db: sqlite_utils.Database) -> None:
    """Certificates (der and serial_hex are NULL when the CA lives elsewhere), the CRL, status changes."""
    db.execute("""
        CREATE TABLE certificates (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            card_serial TEXT NOT NULL,
            serial_hex TEXT UNIQUE,
            der BLOB,
            not_before REAL NOT NULL,
            not_after REAL,
            status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'suspended', 'revoked')),
            reason TEXT NOT NULL DEFAULT '',
            status_changed_at REAL,
            created_at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX certificates_holder ON certificates(holder_id)")
    db.execute("CREATE INDEX certificates_card ON certificates(card_serial)")
    db.execute("""
        CREATE TABLE crl_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            number INTEGER NOT NULL,
            this_update REAL NOT NULL,
            der BLOB NOT NULL
        )""")
    db.execute("""
        CREATE TABLE certificate_changes (
            id INTEGER PRIMARY KEY,
            certificate_id INTEGER NOT NULL REFERENCES certificates(id),
            at REAL NOT NULL,
            action TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT ''
        )""")
    db.execute("CREATE INDEX certificate_changes_at ON certificate_changes(at)")


def _migration_6(db: sqlite_utils.Database) -> None:
    """When a newer link of the same purpose voided a token: its page then says so, not "used"."""
    db.execute("ALTER TABLE tokens ADD COLUMN voided_at REAL")


def _migration_7(db: sqlite_utils.Database) -> None:
    """Helper keys pinned to holders by pairing, and the pairings on their way (code MAC only)."""
    db.execute("""
        CREATE TABLE helper_keys (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            public_key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            name TEXT NOT NULL,
            paired_at REAL NOT NULL,
            last_used_at REAL,
            UNIQUE (holder_id, public_key)
        )""")
    db.execute("""
        CREATE TABLE helper_pairings (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            attempt TEXT NOT NULL,
            public_key TEXT NOT NULL,
            name TEXT NOT NULL,
            code_mac TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            tries INTEGER NOT NULL DEFAULT 0,
            used_at REAL
        )""")
    db.execute("CREATE INDEX helper_pairings_holder ON helper_pairings(holder_id)")


MIGRATIONS = (_migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6, _migration_7)


def schema_version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite_utils.Database) -> int:
    """Apply every migration not yet applied, each in its own transaction; return the version."""
    for number, migration in enumerate(MIGRATIONS, start=1):
        with write(db):
            if schema_version(db) >= number:
                continue
            migration(db)
            db.execute(f"PRAGMA user_version = {number}")
    return schema_version(db)


# Holders -------------------------------------------------------------------

def find_holder(db: sqlite_utils.Database, identity: str) -> dict | None:
    return _one(db, "SELECT * FROM holders WHERE identity = ?", [identity])


def get_holder(db: sqlite_utils.Database, holder_id: int) -> dict | None:
    return _one(db, "SELECT * FROM holders WHERE id = ?", [holder_id])


def upsert_holder(db: sqlite_utils.Database, holder: dict, now: float) -> int:
    """Insert or update a holder by identity; return its id. A None word_hash keeps the old one."""
    with write(db):
        db.execute(
            """INSERT INTO holders (identity, name, phone, email, word_hash, created_at)
               VALUES (:identity, :name, :phone, :email, :word_hash, :now)
               ON CONFLICT(identity) DO UPDATE SET
                 name = excluded.name, phone = excluded.phone, email = excluded.email,
                 word_hash = COALESCE(excluded.word_hash, holders.word_hash)""",
            {**holder, "now": now})
        return _one(db, "SELECT id FROM holders WHERE identity = ?", [holder["identity"]])["id"]


def set_contact(db: sqlite_utils.Database, holder_id: int, field: str, value: str) -> None:
    """Set the holder's verified e-mail or phone (field "email" or "phone"; KeyError for anything else)."""
    statement = {"email": "UPDATE holders SET email = ? WHERE id = ?",
                 "phone": "UPDATE holders SET phone = ? WHERE id = ?"}[field]
    with write(db):
        db.execute(statement, [value, holder_id])


def set_word_hash(db: sqlite_utils.Database, holder_id: int, word_hash: str) -> None:
    with write(db):
        db.execute("UPDATE holders SET word_hash = ? WHERE id = ?", [word_hash, holder_id])


def count_login_attempt(db: sqlite_utils.Database, holder_id: int, now: float) -> int | None:
    """Count one more attempt as a failure before its word is checked; return the new count, or
    None (nothing counted) while the holder is locked. One conditional UPDATE, so parallel
    requests in any worker cannot all read "not locked" before one of them sets the lock."""
    with write(db):
        row = _one(db, """UPDATE holders SET failed_logins = failed_logins + 1
                          WHERE id = ? AND locked_until <= ? RETURNING failed_logins""", [holder_id, now])
    return row["failed_logins"] if row else None


def lock_holder(db: sqlite_utils.Database, holder_id: int, until: float) -> None:
    with write(db):
        db.execute("UPDATE holders SET locked_until = ? WHERE id = ?", [until, holder_id])


def clear_login_failures(db: sqlite_utils.Database, holder_id: int) -> None:
    with write(db):
        # Conditional, so the common case (nothing to clear) writes no page.
        db.execute("""UPDATE holders SET failed_logins = 0, locked_until = 0
                      WHERE id = ? AND (failed_logins != 0 OR locked_until != 0)""", [holder_id])


# Sessions ------------------------------------------------------------------

def load_session(db: sqlite_utils.Database, id_hash: str) -> dict | None:
    row = _one(db, "SELECT * FROM sessions WHERE id_hash = ?", [id_hash])
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


def delete_expired_sessions(db: sqlite_utils.Database, idle_before: float, created_before: float) -> int:
    with write(db):
        return db.execute("DELETE FROM sessions WHERE seen_at < ? OR created_at < ?",
                          [idle_before, created_before]).rowcount


# Captchas ------------------------------------------------------------------

def save_captcha(db: sqlite_utils.Database, captcha_id: str, answer_mac: str, expires_at: float,
                 now: float) -> None:
    with write(db):
        db.execute("DELETE FROM captchas WHERE expires_at < ?", [now])
        db.execute("INSERT INTO captchas (id, answer_mac, expires_at) VALUES (?, ?, ?)",
                   [captcha_id, answer_mac, expires_at])


def take_captcha(db: sqlite_utils.Database, captcha_id: str, now: float) -> str | None:
    """Remove the captcha and return its answer MAC if it had not expired (single use)."""
    with write(db):
        row = _one(db, "SELECT answer_mac, expires_at FROM captchas WHERE id = ?", [captcha_id])
        db.execute("DELETE FROM captchas WHERE id = ?", [captcha_id])
    if row is None or row["expires_at"] < now:
        return None
    return row["answer_mac"]


def delete_captcha(db: sqlite_utils.Database, captcha_id: str) -> None:
    with write(db):
        db.execute("DELETE FROM captchas WHERE id = ?", [captcha_id])


# SMS codes -----------------------------------------------------------------

def count_codes_sent_since(db: sqlite_utils.Database, holder_id: int, since: float) -> int:
    return _one(db, "SELECT count(*) AS n FROM sms_codes WHERE holder_id = ? AND sent_at >= ?",
                [holder_id, since])["n"]


def latest_code(db: sqlite_utils.Database, attempt: str) -> dict | None:
    return _one(db, "SELECT * FROM sms_codes WHERE attempt = ? ORDER BY id DESC LIMIT 1", [attempt])


def insert_code(db: sqlite_utils.Database, holder_id: int, attempt: str, code_mac: str,
                sent_at: float, expires_at: float) -> int:
    """Store a new code for the attempt; older codes of the attempt stop working."""
    with write(db):
        db.execute("UPDATE sms_codes SET used_at = ? WHERE attempt = ? AND used_at IS NULL",
                   [sent_at, attempt])
        return db.execute(
            """INSERT INTO sms_codes (holder_id, attempt, code_mac, sent_at, expires_at)
               VALUES (?, ?, ?, ?, ?)""",
            [holder_id, attempt, code_mac, sent_at, expires_at]).lastrowid


def void_codes(db: sqlite_utils.Database, attempt: str, now: float) -> None:
    """End the attempt's unused codes (a newer request replaced the attempt); they still count as sent."""
    with write(db):
        db.execute("UPDATE sms_codes SET used_at = ? WHERE attempt = ? AND used_at IS NULL", [now, attempt])


def delete_code(db: sqlite_utils.Database, code_id: int) -> None:
    with write(db):
        db.execute("DELETE FROM sms_codes WHERE id = ?", [code_id])


def reserve_code_try(db: sqlite_utils.Database, code_id: int, now: float, max_wrong_tries: int) -> int | None:
    """Count one try as wrong before the code is compared; return the tries counted so far, or None
    when the code is used, expired or out of tries. Conditional, so parallel guesses in any worker
    are never compared more than max_wrong_tries times."""
    with write(db):
        row = _one(db, """UPDATE sms_codes SET wrong_tries = wrong_tries + 1
                          WHERE id = ? AND used_at IS NULL AND expires_at >= ? AND wrong_tries < ?
                          RETURNING wrong_tries""", [code_id, now, max_wrong_tries])
    return row["wrong_tries"] if row else None


def claim_code(db: sqlite_utils.Database, code_id: int, now: float) -> bool:
    """Mark the code used and give back the try reserved for it; True for exactly one caller."""
    with write(db):
        return db.execute("UPDATE sms_codes SET used_at = ?, wrong_tries = wrong_tries - 1 WHERE id = ? "
                          "AND used_at IS NULL", [now, code_id]).rowcount == 1


# Outbox (demo SMS and mail) ------------------------------------------------

def add_to_outbox(db: sqlite_utils.Database, kind: str, recipient: str, body: str, now: float,
                  subject: str = "") -> None:
    with write(db):
        db.execute("INSERT INTO outbox (kind, recipient, subject, body, sent_at) VALUES (?, ?, ?, ?, ?)",
                   [kind, recipient, subject, body, now])


def latest_outbox(db: sqlite_utils.Database, kind: str | None = None, limit: int = 20) -> list[dict]:
    if kind is None:
        return _rows(db, "SELECT * FROM outbox ORDER BY id DESC LIMIT ?", [limit])
    return _rows(db, "SELECT * FROM outbox WHERE kind = ? ORDER BY id DESC LIMIT ?", [kind, limit])


# Audit ---------------------------------------------------------------------

def last_audit_hash(db: sqlite_utils.Database) -> str | None:
    row = _one(db, "SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
    return row["hash"] if row else None


def append_audit(db: sqlite_utils.Database, entry: dict) -> None:
    db.execute(
        """INSERT INTO audit (at, event, outcome, holder_id, ip, detail, prev_hash, hash)
           VALUES (:at, :event, :outcome, :holder_id, :ip, :detail, :prev_hash, :hash)""", entry)


def count_audit_events(db: sqlite_utils.Database, holder_id: int, event: str, outcome: str, since: float) -> int:
    return _one(db, "SELECT count(*) AS n FROM audit WHERE holder_id = ? AND event = ? AND outcome = ? AND at >= ?",
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
        yield from _dicts(cursor)  # streamed: the log can be long
    finally:
        cursor.close()


# Cards and the vault ---------------------------------------------------------

def holder_cards(db: sqlite_utils.Database, holder_id: int) -> list[dict]:
    return _rows(db, "SELECT * FROM cards WHERE holder_id = ? ORDER BY id", [holder_id])


def find_card(db: sqlite_utils.Database, serial: str) -> dict | None:
    return _one(db, "SELECT * FROM cards WHERE serial = ?", [serial])


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


def get_data_key(db: sqlite_utils.Database, holder_id: int) -> dict | None:
    return _one(db, "SELECT * FROM data_keys WHERE holder_id = ?", [holder_id])


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
    return _rows(db, "SELECT * FROM data_keys WHERE kek_id != ? ORDER BY holder_id", [kek_id])


def save_secret(db: sqlite_utils.Database, holder_id: int, serial: str, field: str, sealed: bytes) -> None:
    with write(db):
        db.execute(
            """INSERT INTO secrets (holder_id, serial, field, sealed) VALUES (?, ?, ?, ?)
               ON CONFLICT(holder_id, serial, field) DO UPDATE SET sealed = excluded.sealed""",
            [holder_id, serial, field, sealed])


def card_secrets(db: sqlite_utils.Database, holder_id: int, serial: str) -> list[dict]:
    return _rows(db, "SELECT field, sealed FROM secrets WHERE holder_id = ? AND serial = ? ORDER BY field",
                 [holder_id, serial])


def delete_secrets(db: sqlite_utils.Database, holder_id: int) -> int:
    with write(db):
        return db.execute("DELETE FROM secrets WHERE holder_id = ?", [holder_id]).rowcount


def count_data_keys(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM data_keys").fetchone()[0]


# One-time tokens (activation, reset and e-mail change links) ---------------------

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
    return _one(db, "SELECT * FROM tokens WHERE id_hash = ?", [id_hash])


def claim_token(db: sqlite_utils.Database, id_hash: str, now: float) -> bool:
    with write(db):
        return db.execute("UPDATE tokens SET used_at = ? WHERE id_hash = ? AND used_at IS NULL AND expires_at >= ?",
                          [now, id_hash, now]).rowcount == 1


def delete_holder_sessions(db: sqlite_utils.Database, holder_id: int) -> int:
    with write(db):
        return db.execute("DELETE FROM sessions WHERE holder_id = ?", [holder_id]).rowcount


# Mail queue ------------------------------------------------------------------

def enqueue_mail(db: sqlite_utils.Database, holder_id: int | None, recipient: str, subject: str, body: str,
                 now: float) -> int:
    with write(db):
        return db.execute(
            "INSERT INTO mail_queue (holder_id, recipient, subject, body, queued_at) VALUES (?, ?, ?, ?, ?)",
            [holder_id, recipient, subject, body, now]).lastrowid


def get_queued_mail(db: sqlite_utils.Database, mail_id: int) -> dict | None:
    return _one(db, "SELECT * FROM mail_queue WHERE id = ?", [mail_id])


def mark_mail_sent(db: sqlite_utils.Database, mail_id: int, now: float) -> None:
    """Mark sent and drop the body: it may hold a one-time link, which must not outlive delivery here."""
    with write(db):
        db.execute("UPDATE mail_queue SET sent_at = ?, body = '', tries = tries + 1 WHERE id = ?", [now, mail_id])


def mark_mail_failed(db: sqlite_utils.Database, mail_id: int, reason: str, now: float) -> None:
    with write(db):
        db.execute("UPDATE mail_queue SET failed_at = ?, reason = ?, tries = tries + 1 WHERE id = ?",
                   [now, reason, mail_id])


def pending_mail(db: sqlite_utils.Database) -> list[dict]:
    return _rows(db, "SELECT id FROM mail_queue WHERE sent_at IS NULL ORDER BY id")


def count_tokens_since(db: sqlite_utils.Database, holder_id: int, purpose: str, since: float) -> int:
    return _one(db, "SELECT count(*) AS n FROM tokens WHERE holder_id = ? AND purpose = ? AND created_at >= ?",
                [holder_id, purpose, since])["n"]


# Certificates ------------------------------------------------------------------

def cards_without_certificate(db: sqlite_utils.Database, holder_id: int | None = None,
                              count_revoked: bool = True) -> list[dict]:
    """Cards (of one holder, or all) with no certificate row; with count_revoked=False,
    also the cards whose every certificate is revoked."""
    return _rows(
        db,
        """SELECT cards.*, holders.name FROM cards JOIN holders ON holders.id = cards.holder_id
           WHERE NOT EXISTS (SELECT 1 FROM certificates WHERE certificates.card_serial = cards.serial
                             AND (:count_revoked OR certificates.status != 'revoked'))
             AND (:holder_id IS NULL OR cards.holder_id = :holder_id)
           ORDER BY cards.id""", {"count_revoked": int(count_revoked), "holder_id": holder_id})


def insert_certificate(db: sqlite_utils.Database, holder_id: int, card_serial: str, serial_hex: str | None,
                       der: bytes | None, not_before: float, not_after: float | None, now: float) -> int:
    with write(db):
        return db.execute(
            """INSERT INTO certificates (holder_id, card_serial, serial_hex, der, not_before, not_after, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [holder_id, card_serial, serial_hex, der, not_before, not_after, now]).lastrowid


def holder_certificates(db: sqlite_utils.Database, holder_id: int) -> list[dict]:
    return _rows(db, "SELECT * FROM certificates WHERE holder_id = ? ORDER BY id", [holder_id])


def get_holder_certificate(db: sqlite_utils.Database, holder_id: int, certificate_id: int) -> dict | None:
    """The certificate only if it is this holder's: another holder's id looks like an unknown one."""
    return _one(db, "SELECT * FROM certificates WHERE id = ? AND holder_id = ?", [certificate_id, holder_id])


def find_certificate_by_serial(db: sqlite_utils.Database, serial_hex: str) -> dict | None:
    return _one(db, "SELECT * FROM certificates WHERE serial_hex = ?", [serial_hex])


def latest_card_certificate(db: sqlite_utils.Database, card_serial: str) -> dict | None:
    return _one(db, "SELECT * FROM certificates WHERE card_serial = ? ORDER BY id DESC LIMIT 1", [card_serial])


def set_certificate_status(db: sqlite_utils.Database, certificate_id: int, action: str, status: str, reason: str,
                           now: float) -> None:
    """Change the status and log the change for the export, in one transaction."""
    with write(db):
        db.execute("UPDATE certificates SET status = ?, reason = ?, status_changed_at = ? WHERE id = ?",
                   [status, reason, now, certificate_id])
        db.execute("""INSERT INTO certificate_changes (certificate_id, at, action, status, reason)
                      VALUES (?, ?, ?, ?, ?)""", [certificate_id, now, action, status, reason])


def certificates_on_crl(db: sqlite_utils.Database) -> list[dict]:
    """Certificates this portal issued that are revoked or on hold."""
    return _rows(db, """SELECT serial_hex, status, reason, status_changed_at FROM certificates
                        WHERE serial_hex IS NOT NULL AND status IN ('suspended', 'revoked')
                        ORDER BY id""")


def certificate_changes_since(db: sqlite_utils.Database, since: float) -> list[dict]:
    return _rows(
        db,
        """SELECT certificate_changes.*, certificates.card_serial, certificates.serial_hex
           FROM certificate_changes JOIN certificates ON certificates.id = certificate_changes.certificate_id
           WHERE certificate_changes.at >= ? ORDER BY certificate_changes.id""", [since])


def get_crl_state(db: sqlite_utils.Database) -> dict | None:
    return _one(db, "SELECT * FROM crl_state WHERE id = 1")


def save_crl_state(db: sqlite_utils.Database, number: int, this_update: float, der: bytes) -> None:
    with write(db):
        db.execute("""INSERT INTO crl_state (id, number, this_update, der) VALUES (1, ?, ?, ?)
                      ON CONFLICT(id) DO UPDATE SET number = excluded.number, this_update = excluded.this_update,
                        der = excluded.der""", [number, this_update, der])


def holder_helper_keys(db: sqlite_utils.Database, holder_id: int) -> list[dict]:
    return _rows(db, "SELECT * FROM helper_keys WHERE holder_id = ? ORDER BY paired_at, id", [holder_id])


def find_helper_key(db: sqlite_utils.Database, holder_id: int, public_key: str) -> dict | None:
    return _one(db, "SELECT * FROM helper_keys WHERE holder_id = ? AND public_key = ?", [holder_id, public_key])


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
        row = _one(db, "SELECT * FROM helper_keys WHERE id = ? AND holder_id = ?", [key_id, holder_id])
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
               VALUES (?, ?, ?, ?, ?, ?, ?)""", [holder_id, attempt, public_key, name, code_mac, now, expires_at])
        return cursor.lastrowid


def find_pairing(db: sqlite_utils.Database, holder_id: int, attempt: str) -> dict | None:
    """The holder's unfinished pairing made under this session's attempt id, if any."""
    return _one(db, """SELECT * FROM helper_pairings WHERE holder_id = ? AND attempt = ? AND used_at IS NULL
                       ORDER BY id DESC LIMIT 1""", [holder_id, attempt])


def reserve_pairing_try(db: sqlite_utils.Database, pairing_id: int, now: float, max_tries: int) -> int | None:
    """Spend one try before the code is compared, so parallel guesses never exceed max_tries.

    Returns the tries spent with this one, None when none was left (or the pairing is over).
    """
    with write(db):
        row = _one(db, """UPDATE helper_pairings SET tries = tries + 1
                          WHERE id = ? AND used_at IS NULL AND expires_at >= ? AND tries < ?
                          RETURNING tries""", [pairing_id, now, max_tries])
    return row["tries"] if row else None


def claim_pairing(db: sqlite_utils.Database, pairing_id: int, now: float) -> bool:
    """Mark the pairing used; False when another request used it first."""
    with write(db):
        cursor = db.execute("UPDATE helper_pairings SET used_at = ? WHERE id = ? AND used_at IS NULL",
                            [now, pairing_id])
        return cursor.rowcount == 1

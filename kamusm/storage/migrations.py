"""The schema: numbered migrations recorded in PRAGMA user_version (on PostgreSQL a schema_version table);
a migration never drops data. Written in SQLite's SQL, which kamusm.storage.postgres carries over."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import write
from kamusm.storage.postgres import is_postgres
from kamusm.storage.search import search_key


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
    if is_postgres(db):
        db.execute("""
            CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""")
        db.execute("CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()")
        return
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


def _migration_8(db: sqlite_utils.Database) -> None:
    """Second factors beside SMS (passkeys, an authenticator app, recovery codes), a failure counter for each,
    and what the 72-hour rule after a phone change and turning SMS off need."""
    db.execute("""
        CREATE TABLE passkeys (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            credential_id TEXT NOT NULL UNIQUE,
            public_key BLOB NOT NULL,
            sign_count INTEGER NOT NULL DEFAULT 0,
            transports TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_used_at REAL
        )""")
    db.execute("CREATE INDEX passkeys_holder ON passkeys(holder_id)")
    db.execute("""
        CREATE TABLE totp_authenticators (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL UNIQUE REFERENCES holders(id),
            sealed_secret BLOB NOT NULL,
            kek_id TEXT NOT NULL,
            name TEXT NOT NULL,
            last_step INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            last_used_at REAL
        )""")
    db.execute("""
        CREATE TABLE recovery_codes (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            code_hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            used_at REAL
        )""")
    db.execute("CREATE INDEX recovery_codes_holder ON recovery_codes(holder_id)")
    db.execute("""
        CREATE TABLE factor_failures (
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            factor TEXT NOT NULL CHECK (factor IN ('sms', 'totp', 'passkey', 'recovery')),
            failures INTEGER NOT NULL DEFAULT 0,
            locked_until REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (holder_id, factor)
        )""")
    db.execute("""
        CREATE TABLE webauthn_challenges (
            challenge_hash TEXT PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            purpose TEXT NOT NULL CHECK (purpose IN ('register', 'authenticate')),
            expires_at REAL NOT NULL
        )""")
    db.execute("ALTER TABLE holders ADD COLUMN sms_disabled INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE holders ADD COLUMN phone_changed_at REAL")



def _migration_9(db: sqlite_utils.Database) -> None:
    """Operators of the institution console: their own accounts, never holders; a name search for holders
    (name_key: the name folded as search_key folds a query)."""
    db.execute("""
        CREATE TABLE operators (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
            password_hash TEXT,
            sealed_totp BLOB,
            kek_id TEXT,
            totp_last_step INTEGER NOT NULL DEFAULT 0,
            enrol_hash TEXT UNIQUE,
            enrol_expires_at REAL,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL NOT NULL DEFAULT 0,
            disabled_at REAL,
            created_at REAL NOT NULL,
            last_login_at REAL
        )""")
    db.execute("CREATE INDEX holders_name ON holders(name COLLATE NOCASE)")
    db.execute("ALTER TABLE holders ADD COLUMN name_key TEXT NOT NULL DEFAULT ''")
    names = db.execute("SELECT id, name FROM holders").fetchall()
    db.conn.executemany("UPDATE holders SET name_key = ? WHERE id = ?",
                        [(search_key(name), holder_id) for holder_id, name in names])

def _migration_10(db: sqlite_utils.Database) -> None:
    """Lost-card codes (hashed on the holder), expiry reminders (one row per certificate, threshold and channel, so
    sending twice sends nothing twice), renewal requests, and the signed receipts holders download."""
    db.execute("ALTER TABLE holders ADD COLUMN lost_code_hash TEXT")
    db.execute("ALTER TABLE holders ADD COLUMN lost_code_issued_at REAL")
    # Set when /lost spends the code: the code then in force is one nobody saw, until the holder makes a new one.
    db.execute("ALTER TABLE holders ADD COLUMN lost_code_used_at REAL")
    # The lost-card code's own failure counter: factor_failures' CHECK names only the login factors, and sharing
    # failed_logins would let wrong codes on /lost lock the holder out of the login.
    db.execute("ALTER TABLE holders ADD COLUMN lost_failures INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE holders ADD COLUMN lost_locked_until REAL NOT NULL DEFAULT 0")
    db.execute("""
        CREATE TABLE reminders (
            id INTEGER PRIMARY KEY,
            certificate_id INTEGER NOT NULL REFERENCES certificates(id),
            days INTEGER NOT NULL,
            channel TEXT NOT NULL CHECK (channel IN ('mail', 'sms')),
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
            tries INTEGER NOT NULL DEFAULT 0,
            next_try_at REAL NOT NULL,
            sent_at REAL,
            reason TEXT NOT NULL DEFAULT '',
            mail_id INTEGER REFERENCES mail_queue(id),
            created_at REAL NOT NULL,
            UNIQUE (certificate_id, days, channel)
        )""")
    db.execute("CREATE INDEX reminders_pending ON reminders(state, next_try_at)")
    db.execute("""
        CREATE TABLE renewal_requests (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            certificate_id INTEGER NOT NULL REFERENCES certificates(id),
            requested_at REAL NOT NULL,
            state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done')),
            done_at REAL
        )""")
    db.execute("CREATE UNIQUE INDEX renewal_requests_open ON renewal_requests(certificate_id) WHERE state = 'open'")
    db.execute("""
        CREATE TABLE receipts (
            id INTEGER PRIMARY KEY,
            holder_id INTEGER NOT NULL REFERENCES holders(id),
            kind TEXT NOT NULL,
            created_at REAL NOT NULL,
            signed BLOB NOT NULL
        )""")
    db.execute("CREATE INDEX receipts_holder ON receipts(holder_id)")


MIGRATIONS = (_migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6, _migration_7,
              _migration_8, _migration_9, _migration_10)


def schema_version(db: sqlite_utils.Database) -> int:
    if is_postgres(db):
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        return row[0] if row else 0
    return db.execute("PRAGMA user_version").fetchone()[0]


def _record_version(db, number: int) -> None:
    if is_postgres(db):
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version (version) VALUES (?)", [number])
    else:
        db.execute(f"PRAGMA user_version = {number}")


def migrate(db: sqlite_utils.Database) -> int:
    """Apply every migration not yet applied, each in its own transaction; return the version."""
    for number, migration in enumerate(MIGRATIONS, start=1):
        with write(db):
            if schema_version(db) >= number:
                continue
            migration(db)
            _record_version(db, number)
    return schema_version(db)

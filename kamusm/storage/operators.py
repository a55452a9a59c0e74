"""Operators of the institution console: accounts, enrolment, login failures."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, write


def add_operator(db: sqlite_utils.Database, name: str, role: str, enrol_hash: str, enrol_expires_at: float,
                 now: float) -> int | None:
    """A new operator waiting for enrolment; None when the name is taken."""
    with write(db):
        row = fetch_one(db, """INSERT INTO operators (name, role, enrol_hash, enrol_expires_at, created_at)
                               VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING RETURNING id""",
                        [name, role, enrol_hash, enrol_expires_at, now])
    return row["id"] if row else None


def reissue_enrolment(db: sqlite_utils.Database, operator_id: int, enrol_hash: str, enrol_expires_at: float) -> None:
    """A new enrolment link; the password and app are cleared, so the account works only once enrolled anew."""
    with write(db):
        db.execute("""UPDATE operators SET enrol_hash = ?, enrol_expires_at = ?, password_hash = NULL,
                      sealed_totp = NULL, kek_id = NULL, totp_last_step = 0 WHERE id = ?""",
                   [enrol_hash, enrol_expires_at, operator_id])


def find_operator(db: sqlite_utils.Database, name: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM operators WHERE name = ?", [name])


def get_operator(db: sqlite_utils.Database, operator_id: int) -> dict | None:
    return fetch_one(db, "SELECT * FROM operators WHERE id = ?", [operator_id])


def find_enrolment(db: sqlite_utils.Database, enrol_hash: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM operators WHERE enrol_hash = ?", [enrol_hash])


def complete_enrolment(db: sqlite_utils.Database, operator_id: int, enrol_hash: str, password_hash: str,
                       sealed_totp: bytes, kek_id: str, step: int, now: float) -> bool:
    """Set the password and app once for the live link: True for exactly one caller."""
    with write(db):
        return db.execute("""UPDATE operators SET password_hash = ?, sealed_totp = ?, kek_id = ?, totp_last_step = ?,
                                 enrol_hash = NULL, enrol_expires_at = NULL
                             WHERE id = ? AND enrol_hash = ? AND enrol_expires_at >= ?""",
                          [password_hash, sealed_totp, kek_id, step, operator_id, enrol_hash, now]).rowcount == 1


def all_operators(db: sqlite_utils.Database) -> list[dict]:
    return fetch_all(db, "SELECT * FROM operators ORDER BY name")


def count_operator_attempt(db: sqlite_utils.Database, operator_id: int, now: float) -> int | None:
    """Count a login attempt as a failure before it is checked; None while the operator is locked."""
    with write(db):
        row = fetch_one(db, """UPDATE operators SET failed_logins = failed_logins + 1
                               WHERE id = ? AND locked_until <= ? RETURNING failed_logins""", [operator_id, now])
    return row["failed_logins"] if row else None


def lock_operator(db: sqlite_utils.Database, operator_id: int, until: float) -> None:
    with write(db):
        db.execute("UPDATE operators SET locked_until = ? WHERE id = ?", [until, operator_id])


def operator_logged_in(db: sqlite_utils.Database, operator_id: int, now: float) -> None:
    with write(db):
        db.execute("UPDATE operators SET failed_logins = 0, locked_until = 0, last_login_at = ? WHERE id = ?",
                   [now, operator_id])


def claim_operator_step(db: sqlite_utils.Database, operator_id: int, step: int) -> bool:
    with write(db):
        return db.execute("UPDATE operators SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
                          [step, operator_id, step]).rowcount == 1


def set_password_hash(db: sqlite_utils.Database, operator_id: int, password_hash: str) -> None:
    with write(db):
        db.execute("UPDATE operators SET password_hash = ? WHERE id = ?", [password_hash, operator_id])


def operators_not_under(db: sqlite_utils.Database, kek_id: str) -> list[dict]:
    return fetch_all(db, "SELECT * FROM operators WHERE sealed_totp IS NOT NULL AND kek_id != ? ORDER BY id", [kek_id])


def reseal_operator_totp(db: sqlite_utils.Database, operator_id: int, sealed_totp: bytes, kek_id: str) -> None:
    with write(db):
        db.execute("UPDATE operators SET sealed_totp = ?, kek_id = ? WHERE id = ?", [sealed_totp, kek_id, operator_id])


def set_operator_disabled(db: sqlite_utils.Database, operator_id: int, disabled_at: float | None) -> None:
    with write(db):
        db.execute("UPDATE operators SET disabled_at = ? WHERE id = ?", [disabled_at, operator_id])

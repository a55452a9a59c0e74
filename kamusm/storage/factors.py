"""Second factors beside SMS: passkeys, the authenticator app, recovery codes, and every factor's failure counter."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, write


def holder_passkeys(db: sqlite_utils.Database, holder_id: int) -> list[dict]:
    return fetch_all(db, "SELECT * FROM passkeys WHERE holder_id = ? ORDER BY created_at, id", [holder_id])


def find_passkey(db: sqlite_utils.Database, holder_id: int, credential_id: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM passkeys WHERE holder_id = ? AND credential_id = ?",
                     [holder_id, credential_id])


def add_passkey(db: sqlite_utils.Database, holder_id: int, credential_id: str, public_key: bytes, sign_count: int,
                transports: str, name: str, now: float) -> int | None:
    """Store a new passkey; None when that credential is already registered (to anyone)."""
    with write(db):
        row = fetch_one(db, """INSERT INTO passkeys (holder_id, credential_id, public_key, sign_count, transports,
                                                     name, created_at)
                               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(credential_id) DO NOTHING RETURNING id""",
                        [holder_id, credential_id, public_key, sign_count, transports, name, now])
    return row["id"] if row else None


def advance_passkey(db: sqlite_utils.Database, passkey_id: int, old_count: int, new_count: int, now: float) -> bool:
    """Record a use: the sign count moves from old_count to new_count only if nobody moved it meanwhile,
    so one assertion sent twice at once is accepted once."""
    with write(db):
        return db.execute("UPDATE passkeys SET sign_count = ?, last_used_at = ? WHERE id = ? AND sign_count = ?",
                          [new_count, now, passkey_id, old_count]).rowcount == 1


def delete_passkey(db: sqlite_utils.Database, holder_id: int, passkey_id: int) -> dict | None:
    """Remove one of the holder's passkeys; return the row removed, None when it is not theirs."""
    with write(db):
        row = fetch_one(db, "SELECT * FROM passkeys WHERE id = ? AND holder_id = ?", [passkey_id, holder_id])
        if row is not None:
            db.execute("DELETE FROM passkeys WHERE id = ?", [passkey_id])
        return row


def get_totp(db: sqlite_utils.Database, holder_id: int) -> dict | None:
    return fetch_one(db, "SELECT * FROM totp_authenticators WHERE holder_id = ?", [holder_id])


def add_totp(db: sqlite_utils.Database, holder_id: int, sealed_secret: bytes, kek_id: str, name: str,
             last_step: int, now: float) -> bool:
    """Store the holder's authenticator app; False when the holder already has one."""
    with write(db):
        return fetch_one(db, """INSERT INTO totp_authenticators (holder_id, sealed_secret, kek_id, name, last_step,
                                                                  created_at, last_used_at)
                                VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(holder_id) DO NOTHING RETURNING id""",
                         [holder_id, sealed_secret, kek_id, name, last_step, now, now]) is not None


def claim_totp_step(db: sqlite_utils.Database, holder_id: int, step: int, now: float) -> bool:
    """Spend a time step: True once, for a step later than every step spent before (a replay, or an older
    code, gets False)."""
    with write(db):
        return db.execute("""UPDATE totp_authenticators SET last_step = ?, last_used_at = ?
                             WHERE holder_id = ? AND last_step < ?""", [step, now, holder_id, step]).rowcount == 1


def delete_totp(db: sqlite_utils.Database, holder_id: int) -> bool:
    with write(db):
        return db.execute("DELETE FROM totp_authenticators WHERE holder_id = ?", [holder_id]).rowcount == 1


def totp_not_under(db: sqlite_utils.Database, kek_id: str) -> list[dict]:
    return fetch_all(db, "SELECT * FROM totp_authenticators WHERE kek_id != ? ORDER BY holder_id", [kek_id])


def reseal_totp(db: sqlite_utils.Database, holder_id: int, sealed_secret: bytes, kek_id: str) -> None:
    with write(db):
        db.execute("UPDATE totp_authenticators SET sealed_secret = ?, kek_id = ? WHERE holder_id = ?",
                   [sealed_secret, kek_id, holder_id])


def replace_recovery_codes(db: sqlite_utils.Database, holder_id: int, code_hashes: list[str], now: float) -> None:
    """The holder's new set of recovery codes; every earlier code, used or not, stops working."""
    with write(db):
        db.execute("DELETE FROM recovery_codes WHERE holder_id = ?", [holder_id])
        db.conn.executemany("INSERT INTO recovery_codes (holder_id, code_hash, created_at) VALUES (?, ?, ?)",
                            [(holder_id, code_hash, now) for code_hash in code_hashes])


def claim_recovery_code(db: sqlite_utils.Database, holder_id: int, code_hash: str, now: float) -> bool:
    """Spend one unused code of the holder's: True for exactly one caller."""
    with write(db):
        return db.execute("""UPDATE recovery_codes SET used_at = ?
                             WHERE holder_id = ? AND code_hash = ? AND used_at IS NULL""",
                          [now, holder_id, code_hash]).rowcount == 1


def recovery_code_counts(db: sqlite_utils.Database, holder_id: int) -> dict:
    """{"total", "unused", "created_at"} of the holder's current set (total 0: none made)."""
    return fetch_one(db, """SELECT count(*) AS total, count(*) - count(used_at) AS unused, max(created_at) AS created_at
                            FROM recovery_codes WHERE holder_id = ?""", [holder_id])


def delete_recovery_codes(db: sqlite_utils.Database, holder_id: int) -> int:
    with write(db):
        return db.execute("DELETE FROM recovery_codes WHERE holder_id = ?", [holder_id]).rowcount


def count_factor_attempt(db: sqlite_utils.Database, holder_id: int, factor: str, now: float) -> int | None:
    """Count one more attempt of the factor as a failure before it is checked; the new count, or None
    (nothing counted) while the factor is locked for the holder. One statement, so parallel attempts
    in any worker cannot all pass a lock that one of them is about to set."""
    with write(db):
        row = fetch_one(db, """INSERT INTO factor_failures (holder_id, factor, failures) VALUES (?, ?, 1)
                               ON CONFLICT(holder_id, factor) DO UPDATE SET failures = factor_failures.failures + 1
                               WHERE factor_failures.locked_until <= ? RETURNING failures""", [holder_id, factor, now])
    return row["failures"] if row else None


def lock_factor(db: sqlite_utils.Database, holder_id: int, factor: str, until: float) -> None:
    with write(db):
        db.execute("UPDATE factor_failures SET locked_until = ? WHERE holder_id = ? AND factor = ?",
                   [until, holder_id, factor])


def clear_factor_failures(db: sqlite_utils.Database, holder_id: int, factor: str) -> None:
    with write(db):
        db.execute("""UPDATE factor_failures SET failures = 0, locked_until = 0
                      WHERE holder_id = ? AND factor = ? AND (failures != 0 OR locked_until != 0)""",
                   [holder_id, factor])


def factor_failures(db: sqlite_utils.Database, holder_id: int, factor: str) -> dict:
    return fetch_one(db, "SELECT failures, locked_until FROM factor_failures WHERE holder_id = ? AND factor = ?",
                     [holder_id, factor]) or {"failures": 0, "locked_until": 0.0}



def save_challenge(db: sqlite_utils.Database, challenge_hash: str, holder_id: int, purpose: str,
                   expires_at: float) -> None:
    with write(db):
        db.execute("""INSERT INTO webauthn_challenges (challenge_hash, holder_id, purpose, expires_at)
                      VALUES (?, ?, ?, ?)""", [challenge_hash, holder_id, purpose, expires_at])


def claim_challenge(db: sqlite_utils.Database, challenge_hash: str, holder_id: int, purpose: str, now: float) -> bool:
    """Spend a live challenge issued to the holder for the purpose: True for exactly one caller."""
    with write(db):
        return db.execute("""DELETE FROM webauthn_challenges WHERE challenge_hash = ? AND holder_id = ?
                             AND purpose = ? AND expires_at >= ?""",
                          [challenge_hash, holder_id, purpose, now]).rowcount == 1


def delete_expired_challenges(db: sqlite_utils.Database, now: float) -> int:
    with write(db):
        return db.execute("DELETE FROM webauthn_challenges WHERE expires_at < ?", [now]).rowcount

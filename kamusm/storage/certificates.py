"""Certificates, their status changes and the CRL state."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, write


def cards_without_certificate(db: sqlite_utils.Database, holder_id: int | None = None,
                              count_revoked: bool = True) -> list[dict]:
    """Cards (of one holder, or all) with no certificate row; with count_revoked=False,
    also the cards whose every certificate is revoked."""
    return fetch_all(
        db,
        """SELECT cards.*, holders.name FROM cards JOIN holders ON holders.id = cards.holder_id
           WHERE NOT EXISTS (SELECT 1 FROM certificates WHERE certificates.card_serial = cards.serial
                             AND (:count_revoked = 1 OR certificates.status != 'revoked'))
             AND (CAST(:holder_id AS BIGINT) IS NULL OR cards.holder_id = :holder_id)
           ORDER BY cards.id""", {"count_revoked": int(count_revoked), "holder_id": holder_id})


def insert_certificate(db: sqlite_utils.Database, holder_id: int, card_serial: str, serial_hex: str | None,
                       der: bytes | None, not_before: float, not_after: float | None, now: float) -> int:
    with write(db):
        return db.execute(
            """INSERT INTO certificates (holder_id, card_serial, serial_hex, der, not_before, not_after, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            [holder_id, card_serial, serial_hex, der, not_before, not_after, now]).fetchone()[0]


def holder_certificates(db: sqlite_utils.Database, holder_id: int) -> list[dict]:
    return fetch_all(db, "SELECT * FROM certificates WHERE holder_id = ? ORDER BY id", [holder_id])


def get_holder_certificate(db: sqlite_utils.Database, holder_id: int, certificate_id: int) -> dict | None:
    """The certificate only if it is this holder's: another holder's id looks like an unknown one."""
    return fetch_one(db, "SELECT * FROM certificates WHERE id = ? AND holder_id = ?", [certificate_id, holder_id])


def find_certificate_by_serial(db: sqlite_utils.Database, serial_hex: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM certificates WHERE serial_hex = ?", [serial_hex])


def latest_card_certificate(db: sqlite_utils.Database, card_serial: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM certificates WHERE card_serial = ? ORDER BY id DESC LIMIT 1", [card_serial])


def set_certificate_status(db: sqlite_utils.Database, certificate_id: int, action: str, status: str, reason: str,
                           now: float, status_since: float | None = None) -> None:
    """Change the status (in force from `status_since`, default now) and log the change for the export
    (at now), in one transaction."""
    with write(db):
        db.execute("UPDATE certificates SET status = ?, reason = ?, status_changed_at = ? WHERE id = ?",
                   [status, reason, now if status_since is None else status_since, certificate_id])
        db.execute("""INSERT INTO certificate_changes (certificate_id, at, action, status, reason)
                      VALUES (?, ?, ?, ?, ?)""", [certificate_id, now, action, status, reason])


def certificates_on_crl(db: sqlite_utils.Database) -> list[dict]:
    """Certificates this portal issued that are revoked or on hold."""
    return fetch_all(db, """SELECT serial_hex, status, reason, status_changed_at FROM certificates
                        WHERE serial_hex IS NOT NULL AND status IN ('suspended', 'revoked')
                        ORDER BY id""")


def certificate_changes_since(db: sqlite_utils.Database, since: float) -> list[dict]:
    return fetch_all(
        db,
        """SELECT certificate_changes.*, certificates.card_serial, certificates.serial_hex
           FROM certificate_changes JOIN certificates ON certificates.id = certificate_changes.certificate_id
           WHERE certificate_changes.at >= ? ORDER BY certificate_changes.id""", [since])


def get_crl_state(db: sqlite_utils.Database) -> dict | None:
    return fetch_one(db, "SELECT * FROM crl_state WHERE id = 1")


def save_crl_state(db: sqlite_utils.Database, number: int, this_update: float, der: bytes) -> None:
    with write(db):
        db.execute("""INSERT INTO crl_state (id, number, this_update, der) VALUES (1, ?, ?, ?)
                      ON CONFLICT(id) DO UPDATE SET number = excluded.number, this_update = excluded.this_update,
                        der = excluded.der""", [number, this_update, der])

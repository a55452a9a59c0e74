"""Captchas: the MAC of the answer, taken (deleted) on the first check."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import fetch_one, write


def save_captcha(db: sqlite_utils.Database, captcha_id: str, answer_mac: str, expires_at: float,
                 now: float) -> None:
    with write(db):
        db.execute("DELETE FROM captchas WHERE expires_at < ?", [now])
        db.execute("INSERT INTO captchas (id, answer_mac, expires_at) VALUES (?, ?, ?)",
                   [captcha_id, answer_mac, expires_at])


def take_captcha(db: sqlite_utils.Database, captcha_id: str, now: float) -> str | None:
    """Remove the captcha and return its answer MAC if it had not expired (single use)."""
    with write(db):
        row = fetch_one(db, "SELECT answer_mac, expires_at FROM captchas WHERE id = ?", [captcha_id])
        db.execute("DELETE FROM captchas WHERE id = ?", [captcha_id])
    if row is None or row["expires_at"] < now:
        return None
    return row["answer_mac"]


def delete_captcha(db: sqlite_utils.Database, captcha_id: str) -> None:
    with write(db):
        db.execute("DELETE FROM captchas WHERE id = ?", [captcha_id])

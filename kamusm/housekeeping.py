"""Housekeeping: rows that outlived their use are deleted on a schedule the server itself runs.

A session row past its idle timeout or its absolute lifetime is refused when its cookie comes back,
but a holder who closes the browser never comes back: without a purge their row (their login state)
would stay in the database for good. Every process purges once per PURGE_INTERVAL_SECONDS, on the
first request after the interval (kamusm.web.factory), so a portal that serves anyone purges and one
that serves no one has nothing new to purge; `flask kamusm purge` does the same from cron.
"""
from __future__ import annotations

import threading

import sqlite_utils

from kamusm import storage

PURGE_INTERVAL_SECONDS = 300


class PurgeSchedule:
    """When this process purges next. Thread-safe: of many requests arriving at once, one purges."""

    def __init__(self, interval_seconds: float = PURGE_INTERVAL_SECONDS) -> None:
        self.interval_seconds = interval_seconds
        self._next_at = float("-inf")
        self._lock = threading.Lock()

    def due(self, now: float) -> bool:
        """True once per interval (and at the first call); the caller then purges."""
        with self._lock:
            if now < self._next_at:
                return False
            self._next_at = now + self.interval_seconds
            return True


def purge_expired_sessions(db: sqlite_utils.Database, now: float, idle_seconds: int, max_seconds: int,
                           admin_idle_seconds: int | None = None) -> int:
    """Delete every session idle longer than idle_seconds (a console session: admin_idle_seconds) or older
    than max_seconds; return how many. Passkey challenges past their life go with them (they belonged to a
    ceremony nobody finished)."""
    storage.factors.delete_expired_challenges(db, now)
    admin_idle = idle_seconds if admin_idle_seconds is None else admin_idle_seconds
    return storage.sessions.delete_expired_sessions(db, now - idle_seconds, now - max_seconds, now - admin_idle)

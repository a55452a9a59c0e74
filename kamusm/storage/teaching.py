"""The teaching mode's own writes (kamusm/scenarios.py): emptying the demo outbox and forgetting that a
holder's phone changed, both only ever run in demo mode."""
from __future__ import annotations

import sqlite_utils

from kamusm.storage.connection import write


def empty_outbox(db: sqlite_utils.Database) -> int:
    """Delete every SMS and mail of the demo outbox; return how many there were."""
    with write(db):
        return db.execute("DELETE FROM outbox").rowcount


def forget_phone_change(db: sqlite_utils.Database, holder_id: int) -> None:
    """As if the holder's number had never changed: the 72-hour rule of kamusm.factors no longer applies."""
    with write(db):
        db.execute("UPDATE holders SET phone_changed_at = NULL WHERE id = ?", [holder_id])

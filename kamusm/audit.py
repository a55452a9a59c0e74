"""The audit log: append-only, hash-chained, never holding a secret.

Each entry's hash covers the previous entry's hash and the entry's own fields,
so an edited, deleted or reordered row breaks the chain from that point on;
`kamusm audit verify` finds the first broken link. Triggers in the schema refuse
UPDATE and DELETE; the chain catches what is done around them. Details are
passed through `censor()` so a careless caller cannot store a secret.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from kamusm import storage

GENESIS_HASH = "0" * 64
SECRET_FIELDS = frozenset({"security_word", "word", "code", "otp", "pin", "puk", "new_pin",
                           "old_pin", "key", "token", "captcha", "password", "credential", "totp_code",
                           "recovery_code", "lost_code", "secret"})


def censor(detail: dict[str, Any]) -> dict[str, Any]:
    """Return detail with every secret-named field replaced by a placeholder."""
    return {name: ("[censored]" if name.lower() in SECRET_FIELDS else value)
            for name, value in detail.items()}


def entry_hash(prev_hash: str, at: float, event: str, outcome: str, holder_id: int | None,
               ip: str, detail: str) -> str:
    payload = json.dumps([prev_hash, repr(at), event, outcome, holder_id, ip, detail],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def record(db, now: float, event: str, outcome: str, holder_id: int | None = None, ip: str = "",
           **detail: Any) -> None:
    """Append one event. Runs in the caller's transaction, or its own."""
    detail_text = json.dumps(censor(detail), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    with storage.write(db):
        prev_hash = storage.audit_log.last_audit_hash(db) or GENESIS_HASH
        storage.audit_log.append_audit(db, {
            "at": now, "event": event, "outcome": outcome, "holder_id": holder_id, "ip": ip,
            "detail": detail_text, "prev_hash": prev_hash,
            "hash": entry_hash(prev_hash, now, event, outcome, holder_id, ip, detail_text),
        })


def verify(db) -> tuple[int, int | None]:
    """Walk the chain; return (entries checked, id of the first broken entry or None)."""
    prev_hash = GENESIS_HASH
    checked = 0
    for row in storage.audit_log.audit_entries(db):
        expected = entry_hash(prev_hash, row["at"], row["event"], row["outcome"], row["holder_id"],
                              row["ip"], row["detail"])
        if row["prev_hash"] != prev_hash or row["hash"] != expected:
            return checked, row["id"]
        prev_hash = row["hash"]
        checked += 1
    return checked, None

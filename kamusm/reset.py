"""One-time links that set a security word: first-login activation and reset.

A link carries a 256-bit random token; the database keeps only its SHA-256,
so a database copy yields no working link. A new link for the same holder and
purpose voids the older ones; a used or expired link does nothing. Setting the
word ends every session the holder had. What the new word may be is
kamusm.policy.check_security_word: the roster import applies the same rules.

The screens over these rules are in kamusm/web/views/reset.py.
"""
from __future__ import annotations

import hashlib
import secrets

from kamusm import audit, storage
from kamusm.contact import email_domain_allowed

TOKEN_BYTES = 32
ACTIVATION_TTL_SECONDS = 7 * 24 * 3600
RESET_TTL_SECONDS = 30 * 60
PURPOSE_ACTIVATION = "activation"
PURPOSE_RESET = "reset"
RESETS_PER_HOLDER_PER_HOUR = 3


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link_token(db, holder_id: int, purpose: str, now: float, payload: str = "") -> str:
    """A new one-time link token; `payload` is what the link confirms (e.g. a new e-mail address)."""
    ttl = ACTIVATION_TTL_SECONDS if purpose == PURPOSE_ACTIVATION else RESET_TTL_SECONDS
    token = secrets.token_urlsafe(TOKEN_BYTES)
    storage.tokens.save_token(db, _hash(token), holder_id, purpose, now, now + ttl, payload)
    return token


def find_link_token(db, token: str) -> dict | None:
    """The token's row in whatever state (used, voided, expired); None for a token never issued."""
    if not token or len(token) > 100:
        return None
    return storage.tokens.find_token(db, _hash(token))


def live_token(db, token: str, now: float) -> dict | None:
    """The token's row while it is unused and unexpired, else None."""
    row = find_link_token(db, token)
    if row is None or row["used_at"] is not None or row["expires_at"] < now:
        return None
    return row


def set_security_word(db, holder: dict, token_row: dict, word_hash: str, now: float, ip: str) -> bool:
    """Spend the token and store the new word; end the holder's sessions. False if the token was taken."""
    with storage.write(db):
        if not storage.tokens.claim_token(db, token_row["id_hash"], now):
            return False
        storage.holders.set_word_hash(db, holder["id"], word_hash)
        storage.holders.clear_failures(db, holder["id"], storage.holders.LOGIN)
        ended = storage.sessions.delete_holder_sessions(db, holder["id"])
        audit.record(db, now, f"word.{token_row['purpose']}", "ok", holder["id"], ip, sessions_ended=ended)
    return True


def request_reset(db, identity: str, email_domains: list[str], now: float, ip: str) -> tuple[dict, str] | None:
    """Issue a reset token for the holder if one exists, may get mail, and is under the hourly cap.

    Returns (holder, token) or None; the caller answers the same either way.
    """
    holder = storage.holders.find_holder(db, identity)
    if holder is None:
        audit.record(db, now, "word.forgot", "unknown_identity", None, ip)
        return None
    if not email_domain_allowed(holder["email"], email_domains):
        audit.record(db, now, "word.forgot", "foreign_domain", holder["id"], ip)
        return None
    with storage.write(db):  # counted and issued under one lock, or a burst of requests passes the cap together
        if storage.tokens.count_tokens_since(db, holder["id"], PURPOSE_RESET, now - 3600) >= RESETS_PER_HOLDER_PER_HOUR:
            audit.record(db, now, "word.forgot", "capped", holder["id"], ip)
            return None
        token = issue_link_token(db, holder["id"], PURPOSE_RESET, now)
        audit.record(db, now, "word.forgot", "link_issued", holder["id"], ip)
    return holder, token

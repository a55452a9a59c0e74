"""Kişisel Bilgiler: change the e-mail address or the phone number, each verified.

Security assumptions:
- Asking for a change needs an SMS code confirmed in the last 5 minutes
  (kamusm.web.stepup), so a stolen session alone cannot redirect the holder's codes.
- A new e-mail address counts only once the holder confirms the one-time link
  mailed to it; a new phone number only once the code sent to it comes back.
  Until then the old value stays in force.
- A code or link confirms exactly the value it was sent to: the new number is
  part of the attempt id that the code's MAC covers and is read back from it,
  never from what the session asks for now; the new address is the link
  token's payload. A newer request voids the older one (its codes, its link),
  so the older code or link fails, with a message of its own.
- Opening the e-mail link changes nothing: GET shows the address and a button,
  and only the POST (CSRF-checked) confirms, so a mail scanner that follows
  links confirms nothing. The link needs no login (it may be opened on another
  device than the request was made on): the 256-bit token is the proof. The
  address is shown in full only to the holder's own logged-in session.
- A phone change is announced by SMS to the old number, so a holder whose
  number was changed behind their back hears of it.

The screens over these rules are in kamusm/web/views/profile.py.
"""
from __future__ import annotations

import secrets

from kamusm import audit, reset, storage

PURPOSE_EMAIL = "email"


def new_phone_attempt(phone: str) -> str:
    """An attempt id that carries the number its code is sent to ('<random>:+905…')."""
    return f"{secrets.token_urlsafe(16)}:{phone}"


def attempt_phone(attempt: str) -> str:
    return attempt.partition(":")[2]


def link_state(row: dict | None, now: float) -> str:
    """'unknown', 'voided', 'used', 'expired' or 'live' for an e-mail change token's row."""
    if row is None or row["purpose"] != PURPOSE_EMAIL:
        return "unknown"
    if row["voided_at"] is not None:
        return "voided"
    if row["used_at"] is not None:
        return "used"
    if row["expires_at"] < now:
        return "expired"
    return "live"


def issue_email_link(db, holder_id: int, email: str, now: float, ip: str) -> str:
    """A link token confirming `email` for the holder; the holder's older live link is voided."""
    with storage.write(db):
        if storage.tokens.void_tokens(db, holder_id, PURPOSE_EMAIL, now):
            audit.record(db, now, "profile.email", "voided", holder_id, ip, stage="link")
        token = reset.issue_link_token(db, holder_id, PURPOSE_EMAIL, now, payload=email)
    return token


def confirm_email_link(db, token: str, now: float, ip: str) -> str:
    """Spend a live e-mail change link and store its address; return 'confirmed' or the state that refused it."""
    with storage.write(db):  # the state read and the claim in one transaction: two clicks confirm once
        row = reset.find_link_token(db, token)
        state = link_state(row, now)
        if state == "live":
            storage.tokens.claim_token(db, row["id_hash"], now)
            storage.holders.set_contact(db, row["holder_id"], "email", row["payload"])
            audit.record(db, now, "profile.email", "confirmed", row["holder_id"], ip)
            return "confirmed"
        if state != "unknown":
            audit.record(db, now, "profile.email", "refused", row["holder_id"], ip, reason=state)
    return state

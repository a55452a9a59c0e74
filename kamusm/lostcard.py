"""The lost-card code: a printed code that suspends the holder's certificates without a login (/lost).

Security assumptions:
- A code is 16 characters of Crockford's base32 from `secrets` (80 bits, above the 64 asked for), grouped
  by four for typing from paper. Input is read as Crockford reads it: case, spaces and dashes aside, O as
  0 and I or L as 1, so a misread character is no wrong code.
- Only a SHA-256 of the code bound to the holder id is stored (as recovery codes are): with 80 random bits
  no fast hash can be reversed by guessing, and a hash copied to another holder's row opens nothing.
  Hashes are compared in constant time.
- The code can do one thing only: suspend every valid certificate of its holder (the rule of
  kamusm.certificates, so the CRL and OCSP say so at once). It never revokes or resumes, and it gives
  no login. Using it ends the holder's sessions (whoever holds the card may be logged in) and replaces
  it by a code nobody saw: a printed code works once, and the holder makes a new one on /security.
- The caller answers alike whatever happened (unknown ID, no code, wrong code, locked, no valid
  certificate): every path does one hash, and the holder is told of a use by SMS and mail (done by the
  caller, which knows the senders), so the answer page need tell nothing.
- Wrong codes count per holder in the database, before the hash, in one statement (storage.holders.count_attempt):
  FAILURE_THRESHOLD wrong codes close /lost for the holder, 30 s doubling to 1 h, and a burst of parallel
  guesses gets no more checks than that. The counter is apart from the login's, so guessing here locks
  no one out of the login; a holder shut out of /lost by someone's guessing can still log in and suspend
  on /certificate, or call the institution.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from kamusm import audit, ca, certificates, storage
from kamusm.auth import lock_seconds
from kamusm.errors import ValidationError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
CODE_LENGTH = 16  # 80 bits
GROUP = 4
FAILURE_THRESHOLD = 10
INPUT_MAX_LENGTH = 64
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "İ": "1"})
_CODE_PATTERN = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}", re.ASCII)
_HASH_PREFIX = "kamusm-lostcard-v1"
CODE_MISSING = _l("Kayıp kart kodunuzu giriniz.")
CODE_MALFORMED = _l("Kayıp kart kodu 16 harf ve rakamdan oluşur (ör. ABCD-EFGH-JKMN-PQRS).")

# /security's view of the holder's code
STATE_NONE = "none"
STATE_READY = "ready"
STATE_USED = "used"


@dataclass(frozen=True)
class Suspension:
    """A code accepted on /lost: whose it was and the certificates it suspended (maybe none)."""

    holder: dict
    suspended: list[dict]


def new_code() -> str:
    """A fresh code, grouped for printing (ABCD-EFGH-JKMN-PQRS)."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return grouped(code)


def grouped(code: str) -> str:
    return "-".join(code[index:index + GROUP] for index in range(0, len(code), GROUP))


def normalize(raw: str) -> str:
    """The code as stored before hashing: no spaces or dashes, capitals, Crockford's readings of O, I, L.
    Raises ValidationError when it cannot be a code (empty, too long, wrong characters or length)."""
    text = raw or ""
    if not text.strip():
        raise ValidationError(CODE_MISSING, "lost_code")
    if len(text) > INPUT_MAX_LENGTH:
        raise ValidationError(CODE_MALFORMED, "lost_code")
    code = re.sub(r"[\s-]", "", text).upper().translate(_READ_AS)
    if not _CODE_PATTERN.fullmatch(code):
        raise ValidationError(CODE_MALFORMED, "lost_code")
    return code


def code_hash(holder_id: int, code: str) -> str:
    """SHA-256 of the normalized code bound to the holder. Raises ValidationError for a malformed code."""
    return hashlib.sha256(f"{_HASH_PREFIX}:{holder_id}:{normalize(code)}".encode()).hexdigest()


_DUMMY_HASH = code_hash(0, "0" * CODE_LENGTH)


def issue(db, holder_id: int, now: float, ip: str = "", via: str = "security") -> str:
    """A new code for the holder, to be shown once; the earlier one stops working."""
    code = new_code()
    storage.holders.set_lost_code(db, holder_id, code_hash(holder_id, code), now)
    audit.record(db, now, "lostcard.issue", "ok", holder_id, ip, via=via)
    return code


def issue_if_none(db, holder_id: int, now: float, ip: str = "", via: str = "activation") -> str | None:
    """A code for a holder who has none (at activation), to be shown once; None when they have one already,
    which stays in force: setting a new security word must not void the code on their paper."""
    code = new_code()
    if not storage.holders.set_lost_code_if_none(db, holder_id, code_hash(holder_id, code), now):
        return None
    audit.record(db, now, "lostcard.issue", "ok", holder_id, ip, via=via)
    return code


def store_known_code(db, holder_id: int, code: str, now: float) -> None:
    """Put a code already known (a demo holder's documented one) in force, with a clean failure counter."""
    with storage.write(db):
        storage.holders.set_lost_code(db, holder_id, code_hash(holder_id, code), now)
        storage.holders.clear_failures(db, holder_id, storage.holders.LOST_CODE)


def state(holder: dict) -> str:
    """STATE_NONE (never made), STATE_USED (spent on /lost, replaced by one nobody saw) or STATE_READY."""
    if holder["lost_code_hash"] is None:
        return STATE_NONE
    return STATE_USED if holder["lost_code_used_at"] is not None else STATE_READY


def suspend_with_code(db, authority: ca.Authority | None, identity: str, code: str, now: float,
                      ip: str = "") -> Suspension | None:
    """Suspend the holder's valid certificates if `code` (as typed or normalized) is their lost-card code; None
    in every other case (audited apart, for the caller to answer alike). Raises ValidationError for a malformed
    code only, before anything is counted."""
    normal = normalize(code)
    holder = storage.holders.find_holder(db, identity)
    if holder is None:
        hmac.compare_digest(_DUMMY_HASH, code_hash(0, normal))  # the hash a known ID costs
        audit.record(db, now, "lost.suspend", "unknown_identity", None, ip)
        return None
    with storage.write(db):
        failures = storage.holders.count_attempt(db, holder["id"], storage.holders.LOST_CODE, now)
        wait = lock_seconds(failures, FAILURE_THRESHOLD) if failures is not None else 0
        if wait:
            storage.holders.lock_out(db, holder["id"], storage.holders.LOST_CODE, now + wait)
    offered = code_hash(holder["id"], normal)
    stored = holder["lost_code_hash"]
    if failures is None:
        hmac.compare_digest(_DUMMY_HASH, offered)
        audit.record(db, now, "lost.suspend", "locked", holder["id"], ip)
        return None
    if stored is None or not hmac.compare_digest(stored, offered):
        _refuse(db, holder["id"], "wrong_code" if stored else "no_code", failures, wait, now, ip)
        return None
    suspension = _suspend(db, authority, holder, stored, now, ip)
    if suspension is None:  # a parallel request spent the same code first
        _refuse(db, holder["id"], "code_taken", failures, wait, now, ip)
    return suspension


def _refuse(db, holder_id: int, outcome: str, failures: int, wait: int, now: float, ip: str) -> None:
    with storage.write(db):
        audit.record(db, now, "lost.suspend", outcome, holder_id, ip, failures=failures)
        if wait:
            audit.record(db, now, "lost.lockout", "locked", holder_id, ip, seconds=wait, failures=failures)


def _suspend(db, authority: ca.Authority | None, holder: dict, used_hash: str, now: float,
             ip: str) -> Suspension | None:
    """Spend the code, suspend, end the sessions, audit: one durable transaction (the holder is told it is done)."""
    holder_id = holder["id"]
    with storage.write(db, durable=True):
        if not storage.holders.replace_used_lost_code(db, holder_id, used_hash, code_hash(holder_id, new_code()),
                                                      now):
            return None
        storage.holders.clear_failures(db, holder_id, storage.holders.LOST_CODE)
        suspended = []
        for row in storage.certificates.holder_certificates(db, holder_id):
            if "suspend" in certificates.allowed_actions(row["status"]):
                certificates.apply_change(db, authority, certificates.Change(row, "suspend", ca.REASON_HOLD),
                                          holder_id, ip, now, via="lost_card")
                suspended.append(row)
        ended = storage.sessions.delete_holder_sessions(db, holder_id)
        audit.record(db, now, "lost.suspend", "ok", holder_id, ip, certificates=len(suspended),
                     sessions_ended=ended)
    return Suspension(holder, suspended)

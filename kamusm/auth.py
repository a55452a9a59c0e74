"""Login: identity + captcha + security word, then an SMS code, as a state machine.

Rules only (plain functions taking db, now and their inputs); the screens are kamusm/web/views/login.py.
Security assumptions:
- One message for an unknown ID, a wrong word and a locked holder, with the
  same status and about the same time: an unknown ID pays the dummy hash, a
  locked holder waits as long as a check takes (WordHasher.pause_like_check).
- The captcha and the per-IP limits are checked before the hash, so a flood
  spends no hash CPU; the per-holder lockout lives in the database, shared by
  every worker.
- An attempt on a known holder is counted in the database before its hash
  (reserve_attempt), and the one that reaches the threshold sets the lock then:
  a burst of parallel guesses gets at most `threshold` hashes, one lock and one
  lockout entry, and a right word behind them is refused like any other.
- The session id changes when the security word is accepted and again when
  the code is; the login steps can only be taken in order.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from kamusm import audit, storage
from kamusm.errors import LoginFailed
from kamusm.words import WordHasher

LOCK_BASE_SECONDS = 30
LOCK_MAX_SECONDS = 3600
LOGIN_FAILED_MESSAGE = _l("Kimlik numarası ya da güvenlik sözcüğü hatalı. Art arda hatalı girişlerden sonra "
                          "giriş bir süre kapatılır.")


STAGE_WORD_OK = "word_ok"
STAGE_SMS_SENT = "sms_sent"
STAGE_DONE = "done"


def lock_seconds(failures: int, threshold: int) -> int:
    """Wait after `failures` consecutive failures: 30 s at the threshold, doubling, at most 1 h."""
    if failures < threshold:
        return 0
    return min(LOCK_BASE_SECONDS * 2 ** (failures - threshold), LOCK_MAX_SECONDS)


@dataclass(frozen=True)
class Reservation:
    """An attempt counted before its hash: `failures` counts it; a lock it set is `locked_until`, else 0."""
    failures: int
    lock_seconds: int
    locked_until: float


def reserve_attempt(db, holder_id: int, now: float, threshold: int) -> Reservation | None:
    """Count the attempt as a failure before its word is hashed; None while the holder is locked.

    The attempt that reaches the threshold (or comes after a lock ran out) locks the holder at once,
    in the same transaction, so the attempts behind it are refused without a hash. Its own hash
    still runs: a right word clears the count and the lock like any success.
    """
    with storage.write(db):
        failures = storage.holders.count_attempt(db, holder_id, storage.holders.LOGIN, now)
        if failures is None:
            return None
        wait = lock_seconds(failures, threshold)
        if wait:
            storage.holders.lock_out(db, holder_id, storage.holders.LOGIN, now + wait)
    return Reservation(failures, wait, now + wait if wait else 0.0)


def check_security_word(db, hasher: WordHasher, identity: str, word: str, now: float, threshold: int,
                        ip: str = "") -> dict:
    """Return the holder whose word this is, or raise LoginFailed (one message for every cause)."""
    holder = storage.holders.find_holder(db, identity)
    if holder is None:
        hasher.check(None, word)
        audit.record(db, now, "login.word", "unknown_identity", None, ip)
        raise LoginFailed(LOGIN_FAILED_MESSAGE)
    reservation = reserve_attempt(db, holder["id"], now, threshold)
    if reservation is None:
        hasher.pause_like_check()
        audit.record(db, now, "login.word", "locked", holder["id"], ip)
        raise LoginFailed(LOGIN_FAILED_MESSAGE)
    result = hasher.check(holder["word_hash"], word)
    if not result.ok:
        with storage.write(db):
            audit.record(db, now, "login.word", "wrong_word", holder["id"], ip, failures=reservation.failures)
            # Unless a right word that was counted before this one cleared the lock in the meantime.
            if reservation.lock_seconds and \
                    storage.holders.get_holder(db, holder["id"])["locked_until"] == reservation.locked_until:
                audit.record(db, now, "login.lockout", "locked", holder["id"], ip,
                             seconds=reservation.lock_seconds, failures=reservation.failures)
        raise LoginFailed(LOGIN_FAILED_MESSAGE)
    with storage.write(db):
        storage.holders.clear_failures(db, holder["id"], storage.holders.LOGIN)
        if result.new_hash:
            storage.holders.set_word_hash(db, holder["id"], result.new_hash)
            audit.record(db, now, "login.rehash", "ok", holder["id"], ip)
        audit.record(db, now, "login.word", "ok", holder["id"], ip)
    return holder


def mask_phone(phone: str) -> str:
    """+905430000001 -> '54* *** ** **': enough for the holder to recognise, no more."""
    national = phone[3:] if phone.startswith("+90") else phone.lstrip("+")
    return f"{national[:2]}* *** ** **"


def mask_name(name: str) -> str:
    """'Selin Yılmaz' -> 'S***** Y*****': initials only, a fixed number of stars."""
    return " ".join(f"{part[0]}*****" for part in name.split() if part)


@dataclass(frozen=True)
class LoginState:
    stage: str | None
    holder_id: int | None
    attempt: str | None


def login_state(data: dict) -> LoginState:
    login = data.get("login") or {}
    return LoginState(login.get("stage"), login.get("holder_id"), login.get("attempt"))

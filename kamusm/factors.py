"""Second factors: one failure counter per factor and holder.

Each factor (today SMS; the schema also names totp, passkey and recovery) has its own counter of
consecutive failures in the database (factor_failures), shared by every worker: FAILURE_THRESHOLD wrong
entries lock that factor for the holder, 30 s doubling to 1 h (auth.lock_seconds), and only a right entry
of that factor clears it; sending a new SMS code does not (NIST SP 800-63B-4 §3.1.3.2). As with the
security word, an attempt is counted before it is checked and the one reaching the threshold sets the
lock in the same transaction, so a burst of parallel guesses gets no more checks than a patient guesser.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from kamusm import audit, storage
from kamusm.auth import lock_seconds
from kamusm.errors import KamusmError

SMS = "sms"
FAILURE_THRESHOLD = 10
PHONE_BINDING_SECONDS = 72 * 3600
# What SMS alone may not authorise while a new phone number is being bound (the 72 hours after a change):
# whoever changed the number may hold only that number, so these need a factor enrolled before the change.
BOUND_ACTIONS = frozenset({"pinpuk.reveal", "pinpuk.save", "unlock", "profile.phone", "security"})


class FactorLocked(KamusmError):
    """Too many wrong entries of one factor in a row: it is closed for a while; other factors still work."""

    status = 429


def locked_message(seconds: float):
    return _l("Art arda çok sayıda hatalı kod girildi. Lütfen %(n)d dakika sonra yeniden deneyiniz.",
              n=max(1, math.ceil(seconds / 60)))


@dataclass(frozen=True)
class Methods:
    """The second factors a holder can use now."""

    passkeys: int
    totp: bool
    recovery_left: int
    sms: bool

    @property
    def strong(self) -> bool:
        """A factor beside SMS that stays with the holder (recovery codes are a last resort, not a method)."""
        return bool(self.passkeys or self.totp)


def methods(db, holder: dict) -> Methods:
    return Methods(passkeys=len(storage.factors.holder_passkeys(db, holder["id"])),
                   totp=storage.factors.get_totp(db, holder["id"]) is not None,
                   recovery_left=storage.factors.recovery_code_counts(db, holder["id"])["unused"],
                   sms=not holder["sms_disabled"])


def phone_binding(holder: dict, now: float) -> bool:
    """True in the 72 hours after the holder's phone number changed."""
    changed_at = holder.get("phone_changed_at")
    return changed_at is not None and 0 <= now - changed_at < PHONE_BINDING_SECONDS


def sms_may_authorise(holder: dict, action: str, now: float) -> bool:
    return not (action in BOUND_ACTIONS and phone_binding(holder, now))


@contextmanager
def counted(db, holder_id: int, factor: str, now: float, ip: str = "") -> Iterator[None]:
    """Check one entry of `factor` under its failure counter: raises FactorLocked before the body while
    the factor is locked; a KamusmError from the body leaves the entry counted as a failure (and audits
    a lock it set), a clean exit clears the counter."""
    with storage.write(db):
        failures = storage.factors.count_factor_attempt(db, holder_id, factor, now)
        if failures is None:
            locked_until = storage.factors.factor_failures(db, holder_id, factor)["locked_until"]
        else:
            wait = lock_seconds(failures, FAILURE_THRESHOLD)
            if wait:
                storage.factors.lock_factor(db, holder_id, factor, now + wait)
    if failures is None:
        audit.record(db, now, "factor.locked", "refused", holder_id, ip, factor=factor)
        raise FactorLocked(locked_message(locked_until - now))
    try:
        yield
    except KamusmError:
        if wait:
            audit.record(db, now, "factor.lockout", "locked", holder_id, ip, factor=factor, seconds=wait,
                         failures=failures)
        raise
    storage.factors.clear_factor_failures(db, holder_id, factor)

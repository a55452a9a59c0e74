"""SMS one-time codes: issue, check, spend.

A code is 6 digits from `secrets` (a CSPRNG), kept only as an HMAC keyed by the
portal's secret and bound to one login attempt, so a code read from another
session's SMS or from a database copy is useless. Single use is enforced by a
conditional UPDATE in the database (pyotp's verify() alone would accept a
replay), which also makes concurrent submissions of one code yield exactly one
success. A code dies after MAX_WRONG_TRIES wrong entries; each entry takes its try
in the database before it is compared, so a burst of guesses gets no more tries
than a patient guesser. The resend cool-down and the hourly cap are read and the
new code stored in one write transaction, so a burst of sends gets one SMS.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kamusm import factors, sms, storage
from kamusm.errors import CodeExpired, CodeRejected, SmsFailed, TooSoon, ValidationError

CODE_DIGITS = 6
MAX_WRONG_TRIES = 3
SEND_WINDOW_SECONDS = 3600
_CODE_PATTERN = re.compile(r"[0-9]{6}", re.ASCII)


@dataclass(frozen=True)
class CodePolicy:
    ttl_seconds: int
    resend_seconds: int
    sends_per_hour: int

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CodePolicy:
        return cls(settings["KAMUSM_OTP_TTL"], settings["KAMUSM_OTP_RESEND_SECONDS"],
                   settings["KAMUSM_OTP_SENDS_PER_HOUR"])


def _code_mac(key: bytes, attempt: str, code: str) -> str:
    return hmac.new(key, f"{attempt}:{code}".encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def seconds_until_resend(db, attempt: str, policy: CodePolicy, now: float) -> int:
    latest = storage.codes.latest_code(db, attempt)
    if latest is None:
        return 0
    return max(0, int(latest["sent_at"] + policy.resend_seconds - now + 0.999))


def issue_code(db, key: bytes, holder_id: int, attempt: str, policy: CodePolicy, now: float) -> tuple[str, int]:
    """Make and store a code for the attempt; return (code, code_id) for sending only.

    Raises TooSoon inside the resend cool-down or past the hourly cap per holder.
    Earlier codes of the attempt stop working.
    """
    with storage.write(db):
        wait = seconds_until_resend(db, attempt, policy, now)
        if wait:
            raise TooSoon(_l("Yeni kod istemek için %(n)d saniye bekleyiniz.", n=wait), wait)
        if storage.codes.count_codes_sent_since(db, holder_id, now - SEND_WINDOW_SECONDS) >= policy.sends_per_hour:
            raise TooSoon(_l("Bir saat içinde gönderilebilecek SMS sayısına ulaştınız. Lütfen daha sonra deneyiniz."),
                          SEND_WINDOW_SECONDS)
        code = new_code()
        code_id = storage.codes.insert_code(db, holder_id, attempt, _code_mac(key, attempt, code), now,
                                            now + policy.ttl_seconds)
    return code, code_id


def withdraw_code(db, code_id: int) -> None:
    """Forget a code that could not be delivered, so it does not count against the holder."""
    storage.codes.delete_code(db, code_id)


def check_code_input(raw: str) -> str:
    code = (raw or "").strip().replace(" ", "")
    if not code:
        raise ValidationError(_l("SMS onay kodunu giriniz."))
    if not _CODE_PATTERN.fullmatch(code):
        raise ValidationError(_l("SMS onay kodu 6 rakamdan oluşur."))
    return code


def spend_code(db, key: bytes, attempt: str, code: str, now: float) -> int:
    """Accept the code once for this attempt and return the holder id.

    Raises CodeExpired when the attempt's code is dead (expired, used, out of
    tries), CodeRejected for a wrong code that still has tries left, and
    factors.FactorLocked when the holder's wrong codes in a row (over every code
    sent, a new code resets nothing) reached factors.FAILURE_THRESHOLD.
    """
    latest = storage.codes.latest_code(db, attempt)
    tries = storage.codes.reserve_code_try(db, latest["id"], now, MAX_WRONG_TRIES) if latest else None
    if tries is None:
        raise CodeExpired(_l("SMS onay kodunun süresi doldu. Lütfen yeni kod isteyiniz."))
    with factors.counted(db, latest["holder_id"], factors.SMS, now):
        if not hmac.compare_digest(latest["code_mac"], _code_mac(key, attempt, code)):
            if tries >= MAX_WRONG_TRIES:
                raise CodeExpired(_l("SMS onay kodu üç kez hatalı girildi. Lütfen yeni kod isteyiniz."))
            raise CodeRejected(_l("SMS onay kodu hatalı. Kalan deneme hakkı: %(n)d", n=MAX_WRONG_TRIES - tries))
        if not storage.codes.claim_code(db, latest["id"], now):
            raise CodeExpired(_l("SMS onay kodunun süresi doldu. Lütfen yeni kod isteyiniz."))
    return latest["holder_id"]


def was_sent(db, key: bytes, attempt: str, code: str) -> bool:
    """Whether `code` is the attempt's latest code, dead or alive; spends nothing, counts no try.

    Only to tell a holder why a code that was right once is refused now (its request was voided).
    """
    latest = storage.codes.latest_code(db, attempt)
    return latest is not None and hmac.compare_digest(latest["code_mac"], _code_mac(key, attempt, code))


def seconds_left(db, attempt: str, now: float) -> int:
    """Seconds the attempt's current code still lives; 0 when there is none alive."""
    latest = storage.codes.latest_code(db, attempt)
    if latest is None or latest["used_at"] is not None or latest["wrong_tries"] >= MAX_WRONG_TRIES:
        return 0
    return max(0, int(latest["expires_at"] - now))


def sms_text(code: str) -> str:
    return _("Kamu SM bireysel işlemler SMS onay kodunuz: %(code)s. Bu kodu kimseyle paylaşmayınız.", code=code)


def send_code(db, key: bytes, sender: sms.SmsBackend, holder_id: int, phone: str, attempt: str,
              policy: CodePolicy, now: float) -> None:
    """Issue the attempt's code and text it to `phone`: the one way a code leaves the portal.

    Raises TooSoon (cool-down or hourly cap; nothing sent) and SmsFailed (the gateway refused: the code
    is withdrawn, so it counts against no cap and the holder may ask again at once).
    """
    code, code_id = issue_code(db, key, holder_id, attempt, policy, now)
    try:
        sender.send(phone, sms_text(code))
    except SmsFailed:
        withdraw_code(db, code_id)
        raise

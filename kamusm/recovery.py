"""Recovery codes: ten single-use codes for the day no other factor is at hand.

Security assumptions:
- Each code carries 120 bits from a CSPRNG (base32, grouped for reading), far above the 64 bits
  asked for, so a fast hash suffices: a stored SHA-256 of the holder id and the code cannot be
  reversed by guessing, and binds the code to its holder.
- The codes are shown once, when made; a new set replaces every earlier code, used or not.
- A code is spent in the database (one caller wins a race), and wrong codes count on the recovery
  factor's own failure counter. The holder is told of every use by SMS and mail (done by the caller,
  which knows the senders).
"""
from __future__ import annotations

import base64
import hashlib
import re
import secrets

from flask_babel import lazy_gettext as _l

from kamusm import factors, storage
from kamusm.errors import CodeRejected, ValidationError

FACTOR = "recovery"
CODE_COUNT = 10
CODE_BYTES = 15  # 120 bits: 24 base32 characters, no padding
GROUP = 4
_CODE_PATTERN = re.compile(r"[A-Z2-7]{24}", re.ASCII)


def new_code() -> str:
    text = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")
    return "-".join(text[index:index + GROUP] for index in range(0, len(text), GROUP))


def normalize(raw: str) -> str:
    """The code without spaces or dashes, in capitals; ValidationError when it cannot be one."""
    code = re.sub(r"[\s-]", "", raw or "").upper()
    if not _CODE_PATTERN.fullmatch(code):
        raise ValidationError(_l("Kurtarma kodu 24 harf ve rakamdan oluşur (ör. ABCD-EFGH-…)."))
    return code


def code_hash(holder_id: int, code: str) -> str:
    return hashlib.sha256(f"kamusm-recovery-v1:{holder_id}:{normalize(code)}".encode()).hexdigest()


def issue(db, holder_id: int, now: float) -> list[str]:
    """A new set of codes for the holder (to be shown once); the earlier set stops working."""
    codes = [new_code() for _ in range(CODE_COUNT)]
    storage.factors.replace_recovery_codes(db, holder_id, [code_hash(holder_id, code) for code in codes], now)
    return codes


def spend(db, holder_id: int, raw: str, now: float, ip: str = "") -> int:
    """Spend one of the holder's codes; return how many are left. Raises ValidationError, CodeRejected,
    FactorLocked."""
    wanted = code_hash(holder_id, raw)
    with factors.counted(db, holder_id, FACTOR, now, ip):
        if not storage.factors.claim_recovery_code(db, holder_id, wanted, now):
            raise CodeRejected(_l("Kurtarma kodu hatalı ya da daha önce kullanılmış."))
    return storage.factors.recovery_code_counts(db, holder_id)["unused"]

"""Identity numbers: T.C. Kimlik No (with its checksum) or a passport number.

Only ASCII is accepted: Python's str.isdigit() also accepts Arabic-Indic and
other Unicode digits, which would let two spellings name one holder. Every
way an identity comes in (login, /forgot, the roster import, the command line)
goes through normalize_identity, so one holder has one spelling; kamusm.policy
holds the other input rules.
"""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

from kamusm.errors import ValidationError

IDENTITY_MAX_LENGTH = 20
_TCKN = re.compile(r"[1-9][0-9]{10}", re.ASCII)
_ALL_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_PASSPORT = re.compile(r"[A-Z0-9]{6,12}", re.ASCII)


def tckn_checksum_ok(number: str) -> bool:
    """True when an 11-digit T.C. Kimlik No satisfies both of its check digits."""
    if not _TCKN.fullmatch(number):
        return False
    digits = [int(char) for char in number]
    tenth = (sum(digits[0:9:2]) * 7 - sum(digits[1:8:2])) % 10
    eleventh = sum(digits[:10]) % 10
    return digits[9] == tenth and digits[10] == eleventh


def normalize_identity(raw: str) -> str:
    """Return the canonical identity or raise ValidationError (field identity) with the reason.

    All-digit input must be a valid T.C. Kimlik No; anything else must look like
    a passport number (6 to 12 ASCII letters and digits, case-folded to upper).
    """
    text = (raw or "").strip().replace(" ", "")
    if not text:
        raise ValidationError(_l("Kimlik numaranızı giriniz."), "identity")
    if len(text) > IDENTITY_MAX_LENGTH:
        raise ValidationError(_l("Kimlik numarası en fazla %(n)d karakter olabilir.", n=IDENTITY_MAX_LENGTH),
                              "identity")
    if not text.isascii():
        raise ValidationError(_l("Kimlik numarasında yalnızca 0-9 rakamları ve A-Z harfleri kullanılabilir."),
                              "identity")
    if _ALL_DIGITS.fullmatch(text):
        if len(text) != 11 or not tckn_checksum_ok(text):
            raise ValidationError(_l("Bu geçerli bir T.C. Kimlik Numarası değil."), "identity")
        return text
    text = text.upper()
    if not _PASSPORT.fullmatch(text):
        raise ValidationError(_l("Pasaport numarası 6-12 harf ve rakamdan oluşmalıdır."), "identity")
    return text


def mask_identity(identity: str) -> str:
    """'10000000146' -> '100******46': enough to match a caller's number, not enough to learn it."""
    return identity[:3] + "*" * max(0, len(identity) - 5) + identity[-2:]

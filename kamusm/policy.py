"""The rules for what holders and operators type: security word, PIN, PUK, card serial.

One definition of each, used by every way in: the roster import (`kamusm import`), the /reset
form (where the link `kamusm holder reset-link` prints also lands), login, the command line and
the /unlock forms. The identity number's rules are kamusm.identity.normalize_identity, which
every caller uses the same way; this module does not repeat them.

Every check raises kamusm.errors.ValidationError naming the form field (the roster's column of the
same name), with a message that never repeats the value it refused.

Security assumptions:
- A new security word is a memorised secret (NIST SP 800-63B): long enough, not on the list of
  common words, not built on the holder's own ID number or name, not one character repeated. The
  rules apply when a word is set; login only bounds the input (`check_word_input`), so a word set
  under older rules still logs in.
- A PIN or PUK is what the card takes (its profile, kamusm.card.profile); ASCII digits only, as
  str.isdigit() also takes other scripts' digits the card would not. A PIN the holder chooses must
  also not be one digit repeated or a run. An issued PIN (the roster's) is what the card holds:
  refusing a weak one would leave its holder without it.
- A card serial is kept as the card reports it (case too): it is compared with what the helper
  reads from the card.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from kamusm.card.profile import DEFAULT_PROFILE
from kamusm.errors import ValidationError

SECURITY_WORD_MIN_LENGTH = 10  # characters
SECURITY_WORD_MAX_LENGTH = 128  # characters: bounds what one login makes Argon2 hash
SECURITY_WORD_MIN_DISTINCT = 4  # different characters
NAME_PART_MIN_LENGTH = 3  # characters: shorter parts of a name ("Su", "Ay") are too common to refuse
COMMON_WORDS_FILE = Path(__file__).parent / "data" / "common_words.txt"
PIN_MIN_DIGITS = DEFAULT_PROFILE.pin_min_digits
PIN_MAX_DIGITS = DEFAULT_PROFILE.pin_max_digits
PUK_DIGITS = DEFAULT_PROFILE.puk_digits
SERIAL_MIN_CHARS = 4
SERIAL_MAX_CHARS = 32
SERIAL_PATTERN = re.compile(r"[A-Za-z0-9]{%d,%d}" % (SERIAL_MIN_CHARS, SERIAL_MAX_CHARS), re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """The refused words of kamusm/data/common_words.txt, case-folded (read once per process)."""
    return frozenset(line.strip().casefold() for line in COMMON_WORDS_FILE.read_text(encoding="utf-8").splitlines()
                     if line.strip())


def check_word_input(word: str) -> str:
    """Raise ValidationError (field security_word) for an empty or over-long word typed at login; return it."""
    if not word:
        raise ValidationError(_l("Güvenlik sözcüğünüzü giriniz."), "security_word")
    if len(word) > SECURITY_WORD_MAX_LENGTH:
        raise ValidationError(_l("Güvenlik sözcüğü en fazla %(n)d karakter olabilir.", n=SECURITY_WORD_MAX_LENGTH),
                              "security_word")
    return word


SECURITY_WORD_MESSAGES = {
    "short": _l("Güvenlik sözcüğü en az %(n)d karakter olmalıdır."),
    "long": _l("Güvenlik sözcüğü en fazla %(n)d karakter olabilir."),
    "own": _l("Güvenlik sözcüğü kimlik numaranızı ya da adınızı içeremez."),
    "common": _l("Bu sözcük çok yaygın ya da tahmin edilmesi kolay. Lütfen başka bir sözcük seçiniz."),
    "confirm": _l("İki güvenlik sözcüğü birbirinin aynı değil."),
}
PASSWORD_MESSAGES = {  # an operator's password keeps the security word's rules, in its own words
    "short": _l("Parola en az %(n)d karakter olmalıdır."),
    "long": _l("Parola en fazla %(n)d karakter olabilir."),
    "own": _l("Parola kullanıcı adınızı içeremez."),
    "common": _l("Bu parola çok yaygın ya da tahmin edilmesi kolay. Lütfen başka bir parola seçiniz."),
    "confirm": _l("İki parola birbirinin aynı değil."),
}


def _formatted(message, **values) -> LazyString:
    """The lazy message with its values, still translated only when shown (in the language of the screen)."""
    return LazyString(lambda: str(message) % values)


def check_security_word(word: str, confirm: str | None = None, identity: str | None = None,
                        name: str | None = None, field: str = "security_word",
                        messages: dict = SECURITY_WORD_MESSAGES) -> str:
    """Return a new security word that keeps every rule; raise ValidationError naming the field otherwise.

    `confirm` is the form's second copy (None where there is none, as in the roster); `identity` and
    `name` are the holder's, which the word must not contain. `field` and `messages` name an operator's
    password instead (check_password).
    """
    if len(word) < SECURITY_WORD_MIN_LENGTH:
        raise ValidationError(_formatted(messages["short"], n=SECURITY_WORD_MIN_LENGTH), field)
    if len(word) > SECURITY_WORD_MAX_LENGTH:
        raise ValidationError(_formatted(messages["long"], n=SECURITY_WORD_MAX_LENGTH), field)
    folded = word.casefold()
    own = [identity.casefold()] if identity else []
    own += [part.casefold() for part in (name or "").split() if len(part) >= NAME_PART_MIN_LENGTH]
    if any(part in folded for part in own):
        raise ValidationError(messages["own"], field)
    if folded in common_words() or len(set(folded)) < SECURITY_WORD_MIN_DISTINCT:
        raise ValidationError(messages["common"], field)
    if confirm is not None and word != confirm:
        raise ValidationError(messages["confirm"], f"{field}_confirm")
    return word


def check_password(password: str, confirm: str, user_name: str) -> str:
    """An operator's new password: the security word's rules, fields `password` and `password_confirm`."""
    return check_security_word(password, confirm, identity=user_name, field="password", messages=PASSWORD_MESSAGES)


def check_pin(pin: str, field: str = "pin") -> str:
    """Return the PIN when the card takes it (PIN_MIN_DIGITS to PIN_MAX_DIGITS digits); else ValidationError."""
    if not _DIGITS.fullmatch(pin or "") or not PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS:
        raise ValidationError(_l("PIN %(low)d-%(high)d rakamdan oluşmalıdır.", low=PIN_MIN_DIGITS, high=PIN_MAX_DIGITS),
                              field)
    return pin


def check_new_pin(new_pin: str, confirm: str) -> str:
    """Return a PIN the holder chose when the card takes it and it is hard to guess; else ValidationError."""
    if not new_pin:
        raise ValidationError(_l("Yeni PIN'i giriniz."), "new_pin")
    check_pin(new_pin, "new_pin")
    digits = [int(char) for char in new_pin]
    steps = {later - earlier for earlier, later in zip(digits, digits[1:], strict=False)}
    if len(set(digits)) == 1 or steps in ({1}, {-1}):
        raise ValidationError(_l("Tek rakamın tekrarı ya da ardışık rakamlar PIN olamaz."), "new_pin")
    if new_pin != confirm:
        raise ValidationError(_l("İki PIN birbirinin aynı değil."), "new_pin_confirm")
    return new_pin


def check_puk(puk: str, field: str = "puk") -> str:
    """Return the PUK when it has the card's PUK_DIGITS digits; else ValidationError."""
    if not _DIGITS.fullmatch(puk or "") or len(puk) != PUK_DIGITS:
        raise ValidationError(_l("PUK %(n)d rakamdan oluşmalıdır.", n=PUK_DIGITS), field)
    return puk


def normalize_serial(raw: str, field: str = "card_serial") -> str:
    """The card serial without surrounding blanks; ValidationError unless it matches SERIAL_PATTERN."""
    serial = (raw or "").strip()
    if not SERIAL_PATTERN.fullmatch(serial):
        raise ValidationError(_l("Kart seri numarası %(low)d-%(high)d harf ve rakamdan oluşmalıdır.",
                                 low=SERIAL_MIN_CHARS, high=SERIAL_MAX_CHARS), field)
    return serial

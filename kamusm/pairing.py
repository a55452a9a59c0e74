"""Pairing a holder's local helper: which helper keys the portal seals a PUK to.

A seal goes only to a key pinned to the holder. A key is pinned when the holder
types on /unlock the code the helper showed on its own console: the portal
makes the code, seals it for the key the page reported (kamusm.sealing: only the
helper holding that key's private half can open it), and keeps its MAC. So a
pinned key is one whose helper the holder can see.

Security assumptions:
- Starting a pairing needs a fresh SMS code (the view checks kamusm.web.stepup), so
  a stolen session cookie alone cannot pin a key of its own.
- The code is single use, lives PAIRING_TTL_SECONDS, allows PAIRING_MAX_TRIES
  tries (each reserved in the database before the compare, so parallel guesses
  cannot exceed them), and is bound to the helper key and to the session's
  attempt id: its MAC covers both. A newer pairing voids the older one.
- What pairing cannot tell apart: a helper the holder runs on purpose, even a
  modified one, and malware running as the holder (docs/security.md).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from flask_babel import lazy_gettext as _l

from kamusm import sealing, storage
from kamusm.errors import KamusmError, ValidationError

PAIRING_TTL_SECONDS = 120
PAIRING_MAX_TRIES = 3
PAIRING_CODE_DIGITS = 6
HELPER_NAME_MAX_CHARS = 64
_CODE_INPUT = re.compile(r"[0-9]{%d}" % PAIRING_CODE_DIGITS, re.ASCII)
_NOT_PRINTABLE = re.compile(r"[^\w .,()@+'-]", re.UNICODE)


class PairingFailed(KamusmError):
    """The pairing code was wrong, expired, used up, or made for another helper or session."""

    status = 422

    def __init__(self, message: str, tries_left: int = 0):
        super().__init__(message)
        self.tries_left = tries_left


class PairingGone(PairingFailed):
    """No live pairing is left to try: it expired, ran out of tries, or a newer one replaced it."""


def clean_helper_name(text: str) -> str:
    """The helper's self-reported name as plain, short text: it is shown back to the holder, nothing more."""
    return " ".join(_NOT_PRINTABLE.sub("", text or "").split())[:HELPER_NAME_MAX_CHARS]


def key_fingerprint(public_key_b64: str) -> str:
    """The fingerprint the helper shows of the same key; raises SealError for a malformed key."""
    return sealing.fingerprint(sealing.decode_public_key(public_key_b64))


def format_code(code: str) -> str:
    """123 456: how the helper shows a code (the holder may type it with or without the space)."""
    half = len(code) // 2
    return f"{code[:half]} {code[half:]}"


def _code_mac(secret_key: bytes, attempt: str, public_key_b64: str, code: str) -> str:
    message = "\0".join(("kamusm-pairing", attempt, public_key_b64, code)).encode()
    return hmac.new(secret_key, message, hashlib.sha256).hexdigest()


def begin(db, secret_key: bytes, holder_id: int, attempt: str, public_key_b64: str, name: str, origin: str,
          now: float) -> str:
    """Make a pairing code for this key and session; return it sealed for the helper (never in clear).

    Raises sealing.SealError for a key that is not an X25519 public key.
    """
    sealing.decode_public_key(public_key_b64)
    code = "".join(secrets.choice("0123456789") for _ in range(PAIRING_CODE_DIGITS))
    storage.helper_keys.start_pairing(db, holder_id, attempt, public_key_b64, clean_helper_name(name),
                        _code_mac(secret_key, attempt, public_key_b64, code), now, now + PAIRING_TTL_SECONDS)
    sealed, _ = sealing.seal_pairing_code(public_key_b64, origin, code, now)
    return sealed


def pending(db, holder_id: int, attempt: str, public_key_b64: str, now: float) -> dict | None:
    """The live pairing of this session for this key, if one is waiting for its code."""
    row = storage.helper_keys.find_pairing(db, holder_id, attempt) if attempt else None
    if row is None or row["public_key"] != public_key_b64:
        return None
    if row["expires_at"] < now or row["tries"] >= PAIRING_MAX_TRIES:
        return None
    return row


def check_code_input(text: str) -> str:
    """The typed code without spaces or dashes; ValidationError (field pairing_code) unless six digits."""
    code = re.sub(r"[\s-]", "", text or "")
    if not _CODE_INPUT.fullmatch(code):
        raise ValidationError(_l("Eşleştirme kodu, kart yardımcısının ekranında görünen 6 rakamdır."), "pairing_code")
    return code


def finish(db, secret_key: bytes, holder_id: int, attempt: str, public_key_b64: str, code: str,
           now: float) -> dict:
    """Check the code and pin the key; return the pinned key's row.

    Raises PairingGone when no live pairing of this session waits for this key, PairingFailed
    (with tries_left) for a wrong code.
    """
    row = pending(db, holder_id, attempt, public_key_b64, now)
    gone = _l("Eşleştirme kodunun süresi doldu ya da deneme hakkı bitti. Lütfen eşleştirmeyi yeniden başlatınız.")
    tries = storage.helper_keys.reserve_pairing_try(db, row["id"], now, PAIRING_MAX_TRIES) if row is not None else None
    if tries is None:
        raise PairingGone(gone)
    if not hmac.compare_digest(row["code_mac"], _code_mac(secret_key, attempt, public_key_b64, code)):
        tries_left = PAIRING_MAX_TRIES - tries
        if tries_left <= 0:
            raise PairingGone(gone)
        raise PairingFailed(_l("Eşleştirme kodu hatalı."), tries_left)
    with storage.write(db):
        if not storage.helper_keys.claim_pairing(db, row["id"], now):
            raise PairingGone(gone)
        key_id = storage.helper_keys.pin_helper_key(db, holder_id, public_key_b64, key_fingerprint(public_key_b64),
                                      row["name"], now)
    return {"id": key_id, "fingerprint": key_fingerprint(public_key_b64), "name": row["name"]}


def pinned_key(db, holder_id: int, public_key_b64: str) -> dict | None:
    """The holder's pinned key row for this public key, None for a key never paired (or removed)."""
    if not public_key_b64:
        return None
    return storage.helper_keys.find_helper_key(db, holder_id, public_key_b64)

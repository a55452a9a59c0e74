"""The authenticator app: an RFC 6238 TOTP seed per holder (pyotp), sealed under the vault's KEK.

Security assumptions:
- The seed is 160 bits (RFC 4226's recommended length), shown once, as a QR code and as text, while
  the holder enrols; until the first code from the app comes back it lives only sealed in the session,
  so an enrolment that is never confirmed leaves nothing behind.
- A code is accepted for the current 30-second step or one step either side (clock drift), and each
  step is spent in the database: pyotp's verify() alone accepts a code again within its window, so
  the stored last step must be older than the matched one (a replay, or an older code, fails).
- Wrong codes count on the app's own failure counter (kamusm.factors), not the SMS one.
"""
from __future__ import annotations

import hmac
import re

import pyotp
import segno
from flask_babel import lazy_gettext as _l

from kamusm import factors, storage, vault
from kamusm.errors import CodeRejected, ValidationError

FACTOR = "totp"
STEP_SECONDS = 30
DRIFT_STEPS = 1
SEED_BASE32_CHARS = 32  # 160 bits
ISSUER = "KamuSM"
_CODE_PATTERN = re.compile(r"[0-9]{6}", re.ASCII)


def new_seed() -> str:
    return pyotp.random_base32(SEED_BASE32_CHARS)


def provisioning_uri(seed: str, account: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(seed, interval=STEP_SECONDS).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str, title: str) -> str:
    """The otpauth:// URI as an inline SVG QR code (no script, no external image: the CSP allows it)."""
    return segno.make(uri, error="m").svg_inline(scale=5, title=title, border=4)


def grouped_seed(seed: str) -> str:
    """The seed in groups of four, for typing into an app by hand."""
    return " ".join(seed[index:index + 4] for index in range(0, len(seed), 4))


def check_code_input(raw: str) -> str:
    code = re.sub(r"\s", "", raw or "")
    if not _CODE_PATTERN.fullmatch(code):
        raise ValidationError(_l("Doğrulama kodu 6 rakamdan oluşur."))
    return code


def matching_step(seed: str, code: str, now: float) -> int | None:
    """The time step the code belongs to, within the allowed drift; None when it fits none."""
    generator = pyotp.TOTP(seed, interval=STEP_SECONDS)
    current_step = int(now // STEP_SECONDS)
    found = None
    for step in range(current_step - DRIFT_STEPS, current_step + DRIFT_STEPS + 1):
        if hmac.compare_digest(generator.at(step * STEP_SECONDS), code):
            found = step  # every step is compared, so the time taken says nothing about which matched
    return found


def seal_seed(keyring: vault.Keyring, holder_id: int, seed: str) -> bytes:
    return vault.seal_under_kek(keyring.current, holder_id, vault.TOTP_PURPOSE, seed)


def open_seed(keyring: vault.Keyring, holder_id: int, sealed: bytes, kek_id: str) -> str:
    return vault.open_under_kek(keyring.find(kek_id), holder_id, vault.TOTP_PURPOSE, sealed)


def enrol(db, keyring: vault.Keyring, holder_id: int, seed: str, code_raw: str, name: str, now: float) -> None:
    """Keep the app once its first code proves it holds the seed. Raises ValidationError, CodeRejected."""
    step = matching_step(seed, check_code_input(code_raw), now)
    if step is None:
        raise CodeRejected(_l("Doğrulama kodu hatalı. Uygulamadaki güncel kodu giriniz."))
    if not storage.factors.add_totp(db, holder_id, seal_seed(keyring, holder_id, seed), keyring.current_id, name,
                                    step, now):
        raise ValidationError(_l("Kayıtlı bir doğrulama uygulamanız zaten var; önce onu kaldırınız."))


def verify(db, keyring: vault.Keyring, holder_id: int, code_raw: str, now: float, ip: str = "") -> None:
    """Accept a code from the holder's app once. Raises ValidationError, CodeRejected or FactorLocked."""
    code = check_code_input(code_raw)
    row = storage.factors.get_totp(db, holder_id)
    if row is None:
        raise CodeRejected(_l("Kayıtlı bir doğrulama uygulamanız yok."))
    with factors.counted(db, holder_id, FACTOR, now, ip):
        step = matching_step(open_seed(keyring, holder_id, row["sealed_secret"], row["kek_id"]), code, now)
        if step is None:
            raise CodeRejected(_l("Doğrulama kodu hatalı. Uygulamadaki güncel kodu giriniz."))
        if not storage.factors.claim_totp_step(db, holder_id, step, now):
            raise CodeRejected(_l("Bu kod az önce kullanıldı. Uygulamada yeni kod çıkınca onu giriniz."))

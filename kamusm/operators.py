"""Operators of the institution console (/admin): accounts of their own, never holders.

Security assumptions:
- An operator is made by `kamusm operator add NAME --role ROLE`, which prints a one-time enrolment
  link (256-bit token, stored as SHA-256, 24 hours). Enrolment sets a password under the security
  word's rules (kamusm.policy, Argon2id by the same hasher) and a mandatory authenticator app
  (RFC 6238 through kamusm.totp, the seed sealed under the vault key); the account works only then.
- Login is name + password + app code in one form, answered with one message for every cause. Each
  attempt is counted before its hash (as for holders: a parallel burst gets no more hashes than the
  threshold), an unknown name still costs one hash, and the app's time steps are spent once.
- Roles: an auditor reads; an operator also manages holders; an admin also manages operators and the
  vault key. The console refuses what a role may not do (403) and audits every action with the
  operator's name.
"""
from __future__ import annotations

import hashlib
import re
import secrets

from flask_babel import lazy_gettext as _l

from kamusm import audit, policy, storage, totp, vault
from kamusm.auth import lock_seconds
from kamusm.errors import LoginFailed, ValidationError
from kamusm.words import WordHasher

ROLES = ("admin", "operator", "auditor")
READ = "read"
MANAGE_HOLDERS = "manage_holders"
MANAGE_OPERATORS = "manage_operators"
PERMISSIONS = {
    "auditor": frozenset({READ}),
    "operator": frozenset({READ, MANAGE_HOLDERS}),
    "admin": frozenset({READ, MANAGE_HOLDERS, MANAGE_OPERATORS}),
}
ENROL_SECONDS = 24 * 3600
_NAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{1,31}", re.ASCII)
LOGIN_FAILED_MESSAGE = _l("Kullanıcı adı, parola ya da doğrulama kodu hatalı; ya da hesap bir süre kilitli.")


def may(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def check_name(raw: str) -> str:
    name = (raw or "").strip().lower()
    if not _NAME_PATTERN.fullmatch(name):
        raise ValidationError(_l("Kullanıcı adı 2-32 karakterdir: küçük harf, rakam, nokta, tire; harfle başlar."),
                              "name")
    return name


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add(db, name: str, role: str, now: float, by: str = "") -> str:
    """Make an operator waiting for enrolment; return the enrolment token. Raises ValidationError."""
    name = check_name(name)
    if role not in ROLES:
        raise ValidationError(_l("Bilinmeyen rol."), "role")
    token = secrets.token_urlsafe(32)
    with storage.write(db):
        if storage.operators.add_operator(db, name, role, _hash(token), now + ENROL_SECONDS, now) is None:
            raise ValidationError(_l("Bu kullanıcı adı kullanılıyor."), "name")
        audit.record(db, now, "operator.add", "ok", None, operator=by or "cli", subject=name, role=role)
    return token


def reissue(db, name: str, now: float, by: str = "") -> str:
    """A new enrolment link for an existing operator (a lost app or password): the old ones stop working."""
    row = storage.operators.find_operator(db, check_name(name))
    if row is None:
        raise ValidationError(_l("Böyle bir operatör yok."), "name")
    token = secrets.token_urlsafe(32)
    with storage.write(db):
        storage.operators.reissue_enrolment(db, row["id"], _hash(token), now + ENROL_SECONDS)
        audit.record(db, now, "operator.reenrol", "ok", None, operator=by or "cli", subject=row["name"])
    return token


def enrolment(db, token: str, now: float) -> dict | None:
    """The operator a live enrolment link belongs to; None for an unknown, used or expired one."""
    if not token or len(token) > 100:
        return None
    row = storage.operators.find_enrolment(db, _hash(token))
    if row is None or row["enrol_expires_at"] < now:
        return None
    return row


def seal_seed(keyring: vault.Keyring, operator_id: int, seed: str) -> bytes:
    return vault.seal_under_kek(keyring.current, operator_id, vault.OPERATOR_TOTP_PURPOSE, seed)


def open_seed(keyring: vault.Keyring, row: dict) -> str:
    return vault.open_under_kek(keyring.find(row["kek_id"]), row["id"], vault.OPERATOR_TOTP_PURPOSE, row["sealed_totp"])


def enrol(db, hasher: WordHasher, keyring: vault.Keyring, token: str, password: str, confirm: str, seed: str,
          code: str, now: float, ip: str = "") -> dict:
    """Set the password and the app of the link's operator. Raises ValidationError (naming the field)."""
    row = enrolment(db, token, now)
    if row is None:
        raise ValidationError(_l("Bu kayıt bağlantısı geçerli değil ya da süresi doldu."), "token")
    policy.check_password(password, confirm, row["name"])
    try:
        step = totp.matching_step(seed, totp.check_code_input(code), now)
    except ValidationError as exc:
        raise ValidationError(str(exc), "totp_code") from None
    if step is None:
        raise ValidationError(_l("Doğrulama kodu hatalı. Uygulamadaki güncel kodu giriniz."), "totp_code")
    with storage.write(db):
        if not storage.operators.complete_enrolment(db, row["id"], _hash(token), hasher.hash(password),
                                                    seal_seed(keyring, row["id"], seed), keyring.current_id, step,
                                                    now):
            raise ValidationError(_l("Bu kayıt bağlantısı geçerli değil ya da süresi doldu."), "token")
        audit.record(db, now, "operator.enrol", "ok", None, ip, operator=row["name"])
    return storage.operators.get_operator(db, row["id"])


def log_in(db, hasher: WordHasher, keyring: vault.Keyring, name: str, password: str, code: str, now: float,
           threshold: int, ip: str = "") -> dict:
    """The operator whose name, password and current app code these are; LoginFailed (one message) otherwise."""
    row = storage.operators.find_operator(db, (name or "").strip().lower()[:64])
    if row is None or row["password_hash"] is None or row["disabled_at"] is not None:
        hasher.check(None, password)
        audit.record(db, now, "operator.login", "refused", None, ip, name_known=row is not None)
        raise LoginFailed(LOGIN_FAILED_MESSAGE)
    with storage.write(db):
        failures = storage.operators.count_operator_attempt(db, row["id"], now)
        wait = lock_seconds(failures, threshold) if failures is not None else 0
        if wait:
            storage.operators.lock_operator(db, row["id"], now + wait)
    if failures is None:
        hasher.pause_like_check()
        audit.record(db, now, "operator.login", "locked", None, ip, operator=row["name"])
        raise LoginFailed(LOGIN_FAILED_MESSAGE)
    right_password = hasher.check(row["password_hash"], password).ok
    step = _code_step(keyring, row, code, now) if right_password else None
    if step is None or not storage.operators.claim_operator_step(db, row["id"], step):
        audit.record(db, now, "operator.login", "wrong", None, ip, operator=row["name"], failures=failures,
                     part="code" if right_password else "password")
        if wait:
            audit.record(db, now, "operator.lockout", "locked", None, ip, operator=row["name"], seconds=wait)
        raise LoginFailed(LOGIN_FAILED_MESSAGE)
    with storage.write(db):
        storage.operators.operator_logged_in(db, row["id"], now)
        audit.record(db, now, "operator.login", "ok", None, ip, operator=row["name"])
    return row


def _code_step(keyring: vault.Keyring, row: dict, code: str, now: float) -> int | None:
    try:
        return totp.matching_step(open_seed(keyring, row), totp.check_code_input(code), now)
    except ValidationError:
        return None

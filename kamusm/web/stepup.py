"""Step-up: a fresh confirmation by a second factor before a sensitive action.

Revealing PIN/PUK, changing phone or e-mail, changing a certificate's status, the online unlock and the
security methods need a factor confirmed in the last RECENT_CODE_SECONDS (DESIGN.md): a passkey, the
authenticator app, a recovery code or an SMS code. An SMS code is bound to an attempt id kept in the
server-side session, so a code sent for one holder's session is useless in another; a code sent to a
new phone number under its own attempt proves that number, not the holder. The session remembers
which factor confirmed it: in the 72 hours after a phone change, SMS alone does not authorise the
actions of factors.BOUND_ACTIONS. A holder with a passkey or an app is not sent an SMS unasked.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import current_app, session
from flask_babel import gettext as _

from kamusm import audit, factors, otp, passkeys, recovery, totp, vault
from kamusm.errors import CodeRejected, KamusmError, SmsFailed, TooSoon
from kamusm.web import current, notify
from kamusm.web.db import get_db

RECENT_CODE_SECONDS = 300
STEPUP_ATTEMPT = "stepup_attempt"
CONFIRMED_AT = "code_confirmed_at"
CONFIRMED_BY = "confirmed_by"


@dataclass(frozen=True)
class StepUp:
    """What the step-up screen says: a code was sent or a method is to be chosen (200; 403, 429 or 503
    with why not), or the factor was refused (422, 429); `choices` are the methods it offers."""
    status: int
    message: str | None
    choices: dict = field(default_factory=dict)


def code_is_recent(confirmed_at: float | None, now: float) -> bool:
    return confirmed_at is not None and 0 <= now - confirmed_at <= RECENT_CODE_SECONDS


def is_recent(action: str | None = None) -> bool:
    """A factor was confirmed in the last RECENT_CODE_SECONDS, and it may authorise `action`."""
    now = current.now()
    if not code_is_recent(session.get(CONFIRMED_AT), now):
        return False
    if action is None or session.get(CONFIRMED_BY, factors.SMS) != factors.SMS:
        return True
    return factors.sms_may_authorise(current.holder(), action, now)


def mark_confirmed(factor: str) -> None:
    session[CONFIRMED_AT] = current.now()
    session[CONFIRMED_BY] = factor


def bound_message() -> str:
    return _("Cep telefonu numaranız son 72 saat içinde değiştiği için bu işlem yalnız SMS ile onaylanamaz. "
             "Geçiş anahtarınızla ya da doğrulama uygulamanızla onaylayınız.")


def choices(holder: dict, action: str, attempt: str | None = None) -> dict:
    """The methods a step-up (or the login's second step, action "login") offers the holder now."""
    db, now = get_db(), current.now()
    available = factors.methods(db, holder)
    rp = current.relying_party()
    sms_allowed = available.sms and factors.sms_may_authorise(holder, action, now)
    offer_passkey = bool(available.passkeys) and rp.usable
    return {
        "passkey_options": passkeys.authentication_options(db, rp, holder["id"], now) if offer_passkey else None,
        "passkey_origin": rp.origin,
        "totp": available.totp,
        "recovery": available.recovery_left > 0,
        "sms_allowed": sms_allowed,
        "sms_sent": sms_allowed and otp.seconds_left(db, attempt or session.get(STEPUP_ATTEMPT) or "", now) > 0,
        "bound": available.sms and not sms_allowed,
        "strong": available.strong,
    }


def spend_factor(form: Mapping[str, str], holder: dict, action: str) -> str | None:
    """Verify the passkey, app or recovery code the form carries; return its factor name, None when it
    carries none of them. Raises ValidationError, PasskeyRejected, CodeRejected or FactorLocked (audited)."""
    db, now, ip = get_db(), current.now(), current.client_ip()
    try:
        if "credential" in form:
            passkey = passkeys.authenticate(db, current.relying_party(), holder["id"], form["credential"], now, ip)
            audit.record(db, now, "factor.passkey", "ok", holder["id"], ip, action=action, passkey=passkey["id"])
            return passkeys.FACTOR
        if "totp_code" in form:
            totp.verify(db, vault.app_keyring(), holder["id"], form["totp_code"], now, ip)
            audit.record(db, now, "factor.totp", "ok", holder["id"], ip, action=action)
            return totp.FACTOR
        if "recovery_code" in form:
            left = recovery.spend(db, holder["id"], form["recovery_code"], now, ip)
            audit.record(db, now, "factor.recovery", "ok", holder["id"], ip, action=action, left=left)
            _tell_recovery_code_used(holder, left)
            return recovery.FACTOR
    except KamusmError as exc:
        field_name = next(name for name in _FACTOR_OF_FIELD if name in form)
        audit.record(db, now, f"factor.{_FACTOR_OF_FIELD[field_name]}", "rejected", holder["id"], ip, action=action,
                     problem=type(exc).__name__)
        raise
    return None


_FACTOR_OF_FIELD = {"credential": passkeys.FACTOR, "totp_code": totp.FACTOR, "recovery_code": recovery.FACTOR}


def carries_factor(form: Mapping[str, str]) -> bool:
    """The form brings a factor to check (an SMS code or another), not a request to be offered one."""
    return "code" in form or any(name in form for name in _FACTOR_OF_FIELD)


def _tell_recovery_code_used(holder: dict, left: int) -> None:
    text = _("Kamu SM bireysel işlemler: hesabınızda bir kurtarma kodu kullanıldı (%(n)d kod kaldı). Bunu siz "
             "yapmadıysanız hemen kurumunuzla görüşünüz.", n=left)
    notify.tell_holder(holder, "factor.recovery_notice", text, _("Kurtarma kodu kullanıldı"), text)


def send_code(attempt_key: str = STEPUP_ATTEMPT, phone: str | None = None,
              event: str = "stepup.sms") -> tuple[int, str | None]:
    """Send a code for the attempt unless one is still alive; return (HTTP status, problem or None).

    `phone` sends to another number than the holder's (a new number being verified).
    """
    db, now = get_db(), current.now()
    holder = current.holder()
    attempt = session.get(attempt_key) or secrets.token_urlsafe(16)
    session[attempt_key] = attempt
    if otp.seconds_left(db, attempt, now) > 0:
        return 200, None
    try:
        otp.send_code(db, current_app.secret_key, current.sms_sender(), holder["id"], phone or holder["phone"], attempt,
                      current.code_policy(), now)
    except TooSoon as exc:
        return 429, str(exc)
    except SmsFailed as exc:
        audit.record(db, now, event, "gateway_failed", holder["id"], current.client_ip(), reason=str(exc))
        return 503, _("SMS şu anda gönderilemedi. Lütfen biraz sonra tekrar deneyiniz.")
    audit.record(db, now, event, "sent", holder["id"], current.client_ip())
    return 200, None


def spend_code(code_raw: str, attempt_key: str = STEPUP_ATTEMPT) -> None:
    """Accept the attempt's code once. Raises ValidationError, CodeRejected (with CodeExpired) or FactorLocked."""
    db, now = get_db(), current.now()
    holder_id = otp.spend_code(db, current_app.secret_key, session.get(attempt_key) or "",
                               otp.check_code_input(code_raw), now)
    if holder_id != session["holder_id"]:
        raise CodeRejected(_("SMS onay kodu hatalı."))
    session.pop(attempt_key, None)


def demand_fresh_code(action: str, form: Mapping[str, str]) -> StepUp | None:
    """The step-up of every sensitive action. None: go ahead (a factor that may authorise `action` was
    confirmed in the last RECENT_CODE_SECONDS, or the form's factor is right now). Otherwise what the
    step-up screen shows: the methods to choose from (an SMS code is sent at once only to a holder with
    no passkey or app, or on `send_sms`), or why the form's factor was refused (audited)."""
    if is_recent(action):
        return None
    return confirm_factor(action, form)


def confirm_factor(action: str, form: Mapping[str, str]) -> StepUp | None:
    """Check the factor the form carries even when the session was confirmed lately; None when it is right
    (the session is then confirmed anew), else the step-up screen as demand_fresh_code gives it."""
    db, now, holder = get_db(), current.now(), current.holder()
    try:
        factor = spend_factor(form, holder, action)
        if factor is None and form.get("code") is not None:
            if holder["sms_disabled"]:
                return StepUp(403, _("SMS ile onayı kapattınız. Başka bir yöntem seçiniz."), choices(holder, action))
            if not factors.sms_may_authorise(holder, action, now):
                return StepUp(403, bound_message(), choices(holder, action))
            spend_code(form["code"])
            factor = factors.SMS
    except KamusmError as exc:
        audit.record(db, now, "stepup.code", "rejected", holder["id"], current.client_ip(), action=action)
        return StepUp(exc.status, str(exc), choices(holder, action))
    if factor is not None:
        mark_confirmed(factor)
        audit.record(db, now, "stepup.code", "ok", holder["id"], current.client_ip(), action=action, factor=factor)
        return None
    return offer(holder, action, "send_sms" in form)


def offer(holder: dict, action: str, send_sms: bool = False) -> StepUp:
    """The step-up screen before any factor was entered: an SMS code is sent when SMS is the holder's only
    method (or `send_sms` asks for it), else the methods are shown to choose from."""
    offered = choices(holder, action)
    status, problem = 200, None
    if offered["sms_allowed"] and (send_sms or not offered["strong"]):
        status, problem = send_code()
        offered = choices(holder, action)
    elif not offered["sms_allowed"] and not offered["strong"]:
        status, problem = 403, bound_message()
    return StepUp(status, problem, offered)


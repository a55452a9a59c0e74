"""Step-up: a fresh SMS code before a sensitive action.

Revealing PIN/PUK, changing phone or e-mail and changing a certificate's status
need an SMS code confirmed in the last RECENT_CODE_SECONDS (DESIGN.md). The code
is bound to an attempt id kept in the server-side session, so a code sent for
one holder's session is useless in another; a code sent to a new phone number
under its own attempt proves that number, not the holder.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app, session
from flask_babel import gettext as _

from kamusm import audit, otp
from kamusm.errors import CodeRejected, SmsFailed, TooSoon, ValidationError
from kamusm.factors import FactorLocked
from kamusm.web import current
from kamusm.web.db import get_db

RECENT_CODE_SECONDS = 300
STEPUP_ATTEMPT = "stepup_attempt"


@dataclass(frozen=True)
class StepUp:
    """What the step-up screen says: a code was sent (200; 429 or 503 with why not), or the code was refused (422)."""
    status: int
    message: str | None


def code_is_recent(confirmed_at: float | None, now: float) -> bool:
    return confirmed_at is not None and 0 <= now - confirmed_at <= RECENT_CODE_SECONDS



def is_recent() -> bool:
    return code_is_recent(session.get("code_confirmed_at"), current.now())


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


def confirm(code_raw: str) -> None:
    """Spend a step-up code and mark the session as recently confirmed; raises like spend_code."""
    spend_code(code_raw)
    session["code_confirmed_at"] = current.now()
    audit.record(get_db(), current.now(), "stepup.code", "ok", session["holder_id"], current.client_ip())


def check_code(action: str, code_raw: str) -> StepUp | None:
    """Confirm a step-up code for `action`; None when it was right, else the refusal (audited) to show."""
    try:
        confirm(code_raw)
    except (ValidationError, CodeRejected, FactorLocked) as exc:
        audit.record(get_db(), current.now(), "stepup.code", "rejected", session["holder_id"], current.client_ip(),
                     action=action)
        return StepUp(exc.status, str(exc))
    return None


def demand_fresh_code(action: str, form: Mapping[str, str]) -> StepUp | None:
    """The step-up of every sensitive action. None: go ahead (a code was confirmed in the last
    RECENT_CODE_SECONDS, or the form's `code` is right now). Otherwise what the step-up screen shows:
    the form had no code, so one was sent, or its code was refused."""
    if is_recent():
        return None
    code = form.get("code")
    if code is None:
        return StepUp(*send_code())
    return check_code(action, code)

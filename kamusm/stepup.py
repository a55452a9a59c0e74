"""Step-up: a fresh SMS code before a sensitive action.

Revealing PIN/PUK, changing phone or e-mail and changing a certificate's status
need an SMS code confirmed in the last RECENT_CODE_SECONDS (DESIGN.md). The code
is bound to an attempt id kept in the server-side session, so a code sent for
one holder's session is useless in another; a code sent to a new phone number
under its own attempt proves that number, not the holder.
"""
from __future__ import annotations

import secrets

from flask import current_app, request, session
from flask_babel import gettext as _

from kamusm import audit, auth, otp, sms
from kamusm.db import get_db
from kamusm.errors import CodeRejected, SmsFailed, TooSoon

RECENT_CODE_SECONDS = 300
STEPUP_ATTEMPT = "stepup_attempt"


def code_is_recent(confirmed_at: float | None, now: float) -> bool:
    return confirmed_at is not None and 0 <= now - confirmed_at <= RECENT_CODE_SECONDS


def _now() -> float:
    return current_app.config["CLOCK"]()


def is_recent() -> bool:
    return code_is_recent(session.get("code_confirmed_at"), _now())


def send_code(attempt_key: str = STEPUP_ATTEMPT, phone: str | None = None,
              event: str = "stepup.sms") -> tuple[int, str | None]:
    """Send a code for the attempt unless one is still alive; return (HTTP status, problem or None).

    `phone` sends to another number than the holder's (a new number being verified).
    """
    db, now = get_db(), _now()
    holder = auth.current_holder()
    attempt = session.get(attempt_key) or secrets.token_urlsafe(16)
    session[attempt_key] = attempt
    if otp.seconds_left(db, attempt, now) > 0:
        return 200, None
    try:
        code, code_id = otp.issue_code(db, current_app.secret_key, holder["id"], attempt, auth.code_policy(), now)
    except TooSoon as exc:
        return 429, str(exc)
    try:
        sms.make_backend(current_app.config, get_db, _now).send(phone or holder["phone"], auth.sms_text(code))
    except SmsFailed as exc:
        otp.withdraw_code(db, code_id)
        audit.record(db, now, event, "gateway_failed", holder["id"], request.remote_addr or "", reason=str(exc))
        return 503, _("SMS şu anda gönderilemedi. Lütfen biraz sonra tekrar deneyiniz.")
    audit.record(db, now, event, "sent", holder["id"], request.remote_addr or "")
    return 200, None


def spend_code(code_raw: str, attempt_key: str = STEPUP_ATTEMPT) -> None:
    """Accept the attempt's code once. Raises ValidationError or CodeRejected (with CodeExpired)."""
    db, now = get_db(), _now()
    holder_id = otp.spend_code(db, current_app.secret_key, session.get(attempt_key) or "",
                               otp.check_code_input(code_raw), now)
    if holder_id != session["holder_id"]:
        raise CodeRejected(_("SMS onay kodu hatalı."))
    session.pop(attempt_key, None)


def confirm(code_raw: str) -> None:
    """Spend a step-up code and mark the session as recently confirmed; raises like spend_code."""
    spend_code(code_raw)
    session["code_confirmed_at"] = _now()
    audit.record(get_db(), _now(), "stepup.code", "ok", session["holder_id"], request.remote_addr or "")

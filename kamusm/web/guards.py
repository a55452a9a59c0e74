"""Guards a view stands behind: the login stage it needs, and what every page knows about the login."""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import session

from kamusm.auth import STAGE_DONE, STAGE_SMS_SENT, STAGE_WORD_OK, login_state
from kamusm.web import rendering


def endpoint_for_stage(stage: str | None) -> str:
    return {STAGE_WORD_OK: "auth.login_sms", STAGE_SMS_SENT: "auth.login_code",
            STAGE_DONE: "menu.menu"}.get(stage, "auth.login")


def require_stage(*stages: str) -> Callable:
    """Let the view run only at the given login stages; otherwise send the holder where they are."""
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            state = login_state(session)
            if state.stage not in stages:
                if getattr(session, "expired_on_open", False):
                    return rendering.redirect_to("auth.login", expired=1)
                return rendering.redirect_to(endpoint_for_stage(state.stage))
            return view(*args, **kwargs)
        return wrapped
    return decorator


def login_context() -> dict:
    """Every page knows whether to show "Çıkış"."""
    return {"logged_in": login_state(session).stage == STAGE_DONE}

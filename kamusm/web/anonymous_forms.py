"""What the two forms that take an identity without a login (the login's first screen and /lost) share.

Both read the identity and the captcha the same way and before any hash, so a flood spends no hash CPU and
neither form answers differently for an identity that exists: that is decided later, by the rules
(kamusm.auth, kamusm.lostcard), which pay for an unknown identity as for a known one.
"""
from __future__ import annotations

import secrets

from flask import current_app, session
from flask_babel import gettext as _

from kamusm import captcha
from kamusm.errors import ValidationError
from kamusm.identity import normalize_identity
from kamusm.web.forms import LoginForm, LostForm


def captcha_on() -> bool:
    return current_app.config["KAMUSM_CAPTCHA"] == "image"


def captcha_context() -> dict:
    """What the form's screen passes to templates/partials/_captcha.html (a new image URL each render)."""
    return {"captcha_on": captcha_on(), "cache_buster": secrets.token_hex(4)}


def check_identity_and_captcha(form: LoginForm | LostForm, db, now: float) -> tuple[str, dict[str, str]]:
    """The form's identity, normalized ("" when it is not one), and the errors of its identity and captcha
    fields. The session's challenge is spent whatever the answer: one image, one try."""
    errors: dict[str, str] = {}
    identity = ""
    try:
        identity = normalize_identity(form.identity.data or "")
    except ValidationError as exc:
        errors["identity"] = str(exc)
    if captcha_on():
        captcha_id = session.pop("captcha_id", None)
        if not captcha.check_answer(db, current_app.secret_key, captcha_id, form.captcha.data or "", now):
            errors["captcha"] = _("Resimdeki yazı hatalı ya da süresi dolmuş. Lütfen yeni resimdeki yazıyı giriniz.")
    return identity, errors

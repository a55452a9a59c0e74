"""The three login screens (ID number, captcha and security word; SMS; code) and logout."""
from __future__ import annotations

import secrets
from typing import Callable

from flask import Blueprint, current_app, request, session
from flask_babel import gettext as _

from kamusm import audit, captcha, otp, storage
from kamusm.auth import (
    STAGE_DONE,
    STAGE_SMS_SENT,
    STAGE_WORD_OK,
    check_security_word,
    login_state,
    mask_name,
    mask_phone,
)
from kamusm.errors import CodeExpired, CodeRejected, KamusmError, LoginFailed, SmsFailed, TooSoon, ValidationError
from kamusm.factors import SMS, FactorLocked
from kamusm.policy import check_word_input
from kamusm.web import anonymous_forms, current, rendering, stepup
from kamusm.web.db import get_db
from kamusm.web.extensions import limiter
from kamusm.web.forms import CodeForm, LoginForm, SecondStepForm
from kamusm.web.guards import endpoint_for_stage, require_stage

bp = Blueprint("auth", __name__)


def _login_screen(identity: str = "", status: int = 200, errors: dict | None = None, message: str | None = None):
    notice = None
    if request.args.get("expired"):
        notice = _("Oturumunuzun süresi doldu. Lütfen yeniden giriş yapınız.")
    elif request.args.get("bye"):
        notice = _("Çıkış yaptınız.")
    return rendering.render_screen("login", "form", status=status, identity=identity, errors=errors or {},
                             message=message, notice=notice, **anonymous_forms.captcha_context())


@bp.get("/")
def index():
    return rendering.redirect_to(endpoint_for_stage(login_state(session).stage))


@bp.get("/login")
def login():
    if login_state(session).stage == STAGE_DONE:
        return rendering.redirect_to("menu.menu")
    return _login_screen()


@bp.post("/login")
@limiter.limit(lambda: current_app.config["KAMUSM_LOGIN_RATE"])
def login_post():
    form = LoginForm()
    db, now, ip = get_db(), current.now(), current.client_ip()
    identity, errors = anonymous_forms.check_identity_and_captcha(form, db, now)
    try:
        check_word_input(form.security_word.data or "")
    except ValidationError as exc:
        errors["security_word"] = str(exc)
    if errors:
        audit.record(db, now, "login.form", "rejected", None, ip, fields=sorted(errors))
        return _login_screen(form.identity.data or "", 422, errors)
    try:
        holder = check_security_word(db, current_app.extensions["kamusm.hasher"], identity,
                                     form.security_word.data, now, current_app.config["KAMUSM_LOCKOUT_THRESHOLD"], ip)
    except LoginFailed as exc:
        return _login_screen(form.identity.data or "", 401, message=str(exc))
    rendering.start_fresh_session()
    session["login"] = {"stage": STAGE_WORD_OK, "holder_id": holder["id"], "attempt": secrets.token_urlsafe(16)}
    return rendering.redirect_to("auth.login_sms")


@bp.get("/captcha.png")
def captcha_png():
    return _captcha_response(captcha.IMAGE_ALPHABET, captcha.render_png, "image/png")


@bp.get("/captcha.wav")
def captcha_wav():
    return _captcha_response(captcha.AUDIO_ALPHABET, captcha.render_wav, "audio/wav")


def _captcha_response(alphabet: str, render: Callable[[str], bytes], mimetype: str):
    db = get_db()
    fixed = current_app.config["CAPTCHA_FIXED_ANSWER"] if current_app.testing else None
    old = session.get("captcha_id")
    if old:
        storage.captchas.delete_captcha(db, old)
    captcha_id, answer = captcha.new_challenge(db, current_app.secret_key, current.now(), alphabet, fixed)
    session["captcha_id"] = captcha_id
    return current_app.response_class(render(answer), mimetype=mimetype)


def _sms_screen(status: int = 200, message: str | None = None):
    holder = current.holder()
    return rendering.render_screen("login_sms", "confirm", status=status,
                                   masked_phone=mask_phone(holder["phone"]), message=message,
                                   choices=stepup.choices(holder, "login", login_state(session).attempt),
                                   call_centre=current_app.config["KAMUSM_CALL_CENTRE"])


@bp.get("/login/sms")
@require_stage(STAGE_WORD_OK, STAGE_SMS_SENT)
def login_sms():
    return _sms_screen()


@bp.post("/login/sms")
@limiter.limit(lambda: current_app.config["KAMUSM_SMS_RATE"])
@require_stage(STAGE_WORD_OK, STAGE_SMS_SENT)
def login_sms_post():
    """The second step: a passkey, an app code or a recovery code finishes the login here; a form with
    none of them asks for the SMS code."""
    db, now, ip = get_db(), current.now(), current.client_ip()
    state = login_state(session)
    holder = current.holder()
    try:
        factor = stepup.spend_factor(SecondStepForm().sent(), holder, "login")
    except KamusmError as exc:
        return _sms_screen(exc.status, str(exc))
    if factor is not None:
        return _finish_login(holder["id"], factor)
    if holder["sms_disabled"]:
        audit.record(db, now, "login.sms", "disabled", holder["id"], ip)
        return _sms_screen(403, _("SMS ile girişi kapattınız. Başka bir yöntem seçiniz."))
    try:
        otp.send_code(db, current_app.secret_key, current.sms_sender(), holder["id"], holder["phone"], state.attempt,
                      current.code_policy(), now)
    except TooSoon as exc:
        audit.record(db, now, "login.sms", "too_soon", holder["id"], ip)
        return _sms_screen(429, str(exc))
    except SmsFailed as exc:
        audit.record(db, now, "login.sms", "gateway_failed", holder["id"], ip, reason=str(exc))
        return _sms_screen(503, _("SMS şu anda gönderilemedi. Lütfen biraz sonra tekrar deneyiniz."))
    audit.record(db, now, "login.sms", "sent", holder["id"], ip, backend=current_app.config["KAMUSM_SMS_BACKEND"])
    session["login"] = {**session["login"], "stage": STAGE_SMS_SENT}
    return rendering.redirect_to("auth.login_code")


def _code_screen(form: CodeForm, status: int = 200, message: str | None = None):
    db, now = get_db(), current.now()
    state = login_state(session)
    left = otp.seconds_left(db, state.attempt, now)
    context = {"form": form, "message": message,
               "resend_in": otp.seconds_until_resend(db, state.attempt, current.code_policy(), now)}
    if left <= 0:
        return rendering.render_screen("login_code", "expired", status=status, **context)
    return rendering.render_screen("login_code", "form", status=status, seconds_left=left, expires_at=now + left,
                                   **context)


@bp.get("/login/code")
@require_stage(STAGE_SMS_SENT)
def login_code():
    return _code_screen(CodeForm())


@bp.post("/login/code")
@limiter.limit(lambda: current_app.config["KAMUSM_CODE_RATE"])
@require_stage(STAGE_SMS_SENT)
def login_code_post():
    form = CodeForm()
    db, now, ip = get_db(), current.now(), current.client_ip()
    state = login_state(session)
    try:
        code = otp.check_code_input(form.code.data or "")
        holder_id = otp.spend_code(db, current_app.secret_key, state.attempt, code, now)
    except ValidationError as exc:
        return _code_screen(form, 422, str(exc))
    except CodeExpired as exc:
        audit.record(db, now, "login.code", "expired", state.holder_id, ip)
        return _code_screen(form, 422, str(exc))
    except CodeRejected as exc:
        audit.record(db, now, "login.code", "wrong", state.holder_id, ip)
        return _code_screen(form, 422, str(exc))
    except FactorLocked as exc:
        return _code_screen(form, 429, str(exc))
    return _finish_login(holder_id, SMS)


def _finish_login(holder_id: int, factor: str):
    db, now = get_db(), current.now()
    audit.record(db, now, "login", "ok", holder_id, current.client_ip(), factor=factor)
    rendering.start_fresh_session()
    session["login"] = {"stage": STAGE_DONE, "holder_id": holder_id, "attempt": None}
    session["holder_id"] = holder_id
    stepup.mark_confirmed(factor)
    session["masked_name"] = mask_name(storage.holders.get_holder(db, holder_id)["name"])
    return rendering.redirect_to("menu.menu")


@bp.post("/logout")
def logout():
    state = login_state(session)
    if state.holder_id is not None:
        audit.record(get_db(), current.now(), "logout", "ok", state.holder_id, current.client_ip())
    session.destroy()
    return rendering.redirect_to("auth.login", bye=1)

"""Login: identity + captcha + security word, then an SMS code, as a state machine.

Rules first (plain functions taking db, now and their inputs), views last.
Security assumptions:
- One message for an unknown ID, a wrong word and a locked holder, with the
  same status and about the same time: an unknown ID pays the dummy hash, a
  locked holder waits as long as a check takes (WordHasher.pause_like_check).
- The captcha and the per-IP limits are checked before the hash, so a flood
  spends no hash CPU; the per-holder lockout lives in the database, shared by
  every worker.
- An attempt on a known holder is counted in the database before its hash
  (reserve_attempt), and the one that reaches the threshold sets the lock then:
  a burst of parallel guesses gets at most `threshold` hashes, one lock and one
  lockout entry, and a right word behind them is refused like any other.
- The session id changes when the security word is accepted and again when
  the code is; the login steps can only be taken in order.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import wraps
from typing import Callable

from flask import Blueprint, current_app, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, StringField

from kamusm import audit, captcha, otp, sms, storage, web
from kamusm.db import get_db
from kamusm.errors import CodeExpired, CodeRejected, LoginFailed, SmsFailed, TooSoon, ValidationError
from kamusm.extensions import limiter
from kamusm.identity import normalize_identity
from kamusm.words import WordHasher, check_word_input

LOCK_BASE_SECONDS = 30
LOCK_MAX_SECONDS = 3600
LOGIN_FAILED_MESSAGE = _l("Kimlik numarası ya da güvenlik sözcüğü hatalı. Art arda hatalı girişlerden sonra "
                          "giriş bir süre kapatılır.")

STAGE_WORD_OK = "word_ok"
STAGE_SMS_SENT = "sms_sent"
STAGE_DONE = "done"


# Rules ---------------------------------------------------------------------

def lock_seconds(failures: int, threshold: int) -> int:
    """Wait after `failures` consecutive failures: 30 s at the threshold, doubling, at most 1 h."""
    if failures < threshold:
        return 0
    return min(LOCK_BASE_SECONDS * 2 ** (failures - threshold), LOCK_MAX_SECONDS)


@dataclass(frozen=True)
class Reservation:
    """An attempt counted before its hash: `failures` counts it; a lock it set is `locked_until`, else 0."""
    failures: int
    lock_seconds: int
    locked_until: float


def reserve_attempt(db, holder_id: int, now: float, threshold: int) -> Reservation | None:
    """Count the attempt as a failure before its word is hashed; None while the holder is locked.

    The attempt that reaches the threshold (or comes after a lock ran out) locks the holder at once,
    in the same transaction, so the attempts behind it are refused without a hash. Its own hash
    still runs: a right word clears the count and the lock like any success.
    """
    with storage.write(db):
        failures = storage.holders.count_login_attempt(db, holder_id, now)
        if failures is None:
            return None
        wait = lock_seconds(failures, threshold)
        if wait:
            storage.holders.lock_holder(db, holder_id, now + wait)
    return Reservation(failures, wait, now + wait if wait else 0.0)


def check_security_word(db, hasher: WordHasher, identity: str, word: str, now: float, threshold: int,
                        ip: str = "") -> dict:
    """Return the holder whose word this is, or raise LoginFailed (one message for every cause)."""
    holder = storage.holders.find_holder(db, identity)
    if holder is None:
        hasher.check(None, word)
        audit.record(db, now, "login.word", "unknown_identity", None, ip)
        raise LoginFailed(LOGIN_FAILED_MESSAGE)
    reservation = reserve_attempt(db, holder["id"], now, threshold)
    if reservation is None:
        hasher.pause_like_check()
        audit.record(db, now, "login.word", "locked", holder["id"], ip)
        raise LoginFailed(LOGIN_FAILED_MESSAGE)
    result = hasher.check(holder["word_hash"], word)
    if not result.ok:
        with storage.write(db):
            audit.record(db, now, "login.word", "wrong_word", holder["id"], ip, failures=reservation.failures)
            # Unless a right word that was counted before this one cleared the lock in the meantime.
            if reservation.lock_seconds and \
                    storage.holders.get_holder(db, holder["id"])["locked_until"] == reservation.locked_until:
                audit.record(db, now, "login.lockout", "locked", holder["id"], ip,
                             seconds=reservation.lock_seconds, failures=reservation.failures)
        raise LoginFailed(LOGIN_FAILED_MESSAGE)
    with storage.write(db):
        storage.holders.clear_login_failures(db, holder["id"])
        if result.new_hash:
            storage.holders.set_word_hash(db, holder["id"], result.new_hash)
            audit.record(db, now, "login.rehash", "ok", holder["id"], ip)
        audit.record(db, now, "login.word", "ok", holder["id"], ip)
    return holder


def mask_phone(phone: str) -> str:
    """+905430000001 -> '54* *** ** **': enough for the holder to recognise, no more."""
    national = phone[3:] if phone.startswith("+90") else phone.lstrip("+")
    return f"{national[:2]}* *** ** **"


def mask_name(name: str) -> str:
    """'Selin Yılmaz' -> 'S***** Y*****': initials only, a fixed number of stars."""
    return " ".join(f"{part[0]}*****" for part in name.split() if part)


@dataclass(frozen=True)
class LoginState:
    stage: str | None
    holder_id: int | None
    attempt: str | None


def login_state(data: dict) -> LoginState:
    login = data.get("login") or {}
    return LoginState(login.get("stage"), login.get("holder_id"), login.get("attempt"))


def endpoint_for_stage(stage: str | None) -> str:
    return {STAGE_WORD_OK: "auth.login_sms", STAGE_SMS_SENT: "auth.login_code",
            STAGE_DONE: "menu.menu"}.get(stage, "auth.login")


# Views ---------------------------------------------------------------------

bp = Blueprint("auth", __name__)


class LoginForm(web.TextForm):
    identity = StringField()
    captcha = StringField()
    security_word = PasswordField()


class CodeForm(web.TextForm):
    code = StringField()


def _now() -> float:
    return current_app.config["CLOCK"]()


def code_policy() -> otp.CodePolicy:
    config = current_app.config
    return otp.CodePolicy(config["KAMUSM_OTP_TTL"], config["KAMUSM_OTP_RESEND_SECONDS"],
                          config["KAMUSM_OTP_SENDS_PER_HOUR"])


def sms_text(code: str) -> str:
    return _("Kamu SM bireysel işlemler SMS onay kodunuz: %(code)s. Bu kodu kimseyle paylaşmayınız.", code=code)


def _captcha_on() -> bool:
    return current_app.config["KAMUSM_CAPTCHA"] == "image"


def require_stage(*stages: str) -> Callable:
    """Let the view run only at the given login stages; otherwise send the holder where they are."""
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            state = login_state(session)
            if state.stage not in stages:
                if getattr(session, "expired_on_open", False):
                    return web.redirect_to("auth.login", expired=1)
                return web.redirect_to(endpoint_for_stage(state.stage))
            return view(*args, **kwargs)
        return wrapped
    return decorator


def current_holder() -> dict:
    return storage.holders.get_holder(get_db(), login_state(session).holder_id)


def masked_name() -> str:
    """The holder's masked name, kept in the session at login: the menu needs nothing else from the
    database. (A session from before it was kept reads the holder.)"""
    return session.get("masked_name") or mask_name(current_holder()["name"])


@bp.app_context_processor
def login_context() -> dict:
    """Every page knows whether to show "Çıkış"."""
    return {"logged_in": login_state(session).stage == STAGE_DONE}


def _login_screen(identity: str = "", status: int = 200, errors: dict | None = None, message: str | None = None):
    notice = None
    if request.args.get("expired"):
        notice = _("Oturumunuzun süresi doldu. Lütfen yeniden giriş yapınız.")
    elif request.args.get("bye"):
        notice = _("Çıkış yaptınız.")
    return web.render_screen("login", "form", status=status, identity=identity, errors=errors or {},
                             message=message, notice=notice, captcha_on=_captcha_on(),
                             cache_buster=secrets.token_hex(4))


@bp.get("/")
def index():
    return web.redirect_to(endpoint_for_stage(login_state(session).stage))


@bp.get("/login")
def login():
    if login_state(session).stage == STAGE_DONE:
        return web.redirect_to("menu.menu")
    return _login_screen()


@bp.post("/login")
@limiter.limit(lambda: current_app.config["KAMUSM_LOGIN_RATE"])
def login_post():
    form = LoginForm()
    db, now, ip = get_db(), _now(), request.remote_addr or ""
    errors: dict[str, str] = {}
    identity = ""
    try:
        identity = normalize_identity(form.identity.data or "")
    except ValidationError as exc:
        errors["identity"] = str(exc)
    try:
        check_word_input(form.security_word.data or "")
    except ValidationError as exc:
        errors["security_word"] = str(exc)
    if _captcha_on():
        captcha_id = session.pop("captcha_id", None)
        if not captcha.check_answer(db, current_app.secret_key, captcha_id, form.captcha.data or "", now):
            errors["captcha"] = _("Resimdeki yazı hatalı ya da süresi dolmuş. Lütfen yeni resimdeki yazıyı giriniz.")
    if errors:
        audit.record(db, now, "login.form", "rejected", None, ip, fields=sorted(errors))
        return _login_screen(form.identity.data or "", 422, errors)
    try:
        holder = check_security_word(db, current_app.extensions["kamusm.hasher"], identity,
                                     form.security_word.data, now, current_app.config["KAMUSM_LOCKOUT_THRESHOLD"], ip)
    except LoginFailed as exc:
        return _login_screen(form.identity.data or "", 401, message=str(exc))
    web.start_fresh_session()
    session["login"] = {"stage": STAGE_WORD_OK, "holder_id": holder["id"], "attempt": secrets.token_urlsafe(16)}
    return web.redirect_to("auth.login_sms")


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
    captcha_id, answer = captcha.new_challenge(db, current_app.secret_key, _now(), alphabet, fixed)
    session["captcha_id"] = captcha_id
    return current_app.response_class(render(answer), mimetype=mimetype)


def _sms_screen(status: int = 200, message: str | None = None):
    holder = current_holder()
    return web.render_screen("login_sms", "confirm", status=status,
                             masked_phone=mask_phone(holder["phone"]), message=message,
                             call_centre=current_app.config["KAMUSM_CALL_CENTRE"])


@bp.get("/login/sms")
@require_stage(STAGE_WORD_OK, STAGE_SMS_SENT)
def login_sms():
    return _sms_screen()


@bp.post("/login/sms")
@limiter.limit(lambda: current_app.config["KAMUSM_SMS_RATE"])
@require_stage(STAGE_WORD_OK, STAGE_SMS_SENT)
def login_sms_post():
    db, now, ip = get_db(), _now(), request.remote_addr or ""
    state = login_state(session)
    holder = current_holder()
    try:
        code, code_id = otp.issue_code(db, current_app.secret_key, holder["id"], state.attempt, code_policy(), now)
    except TooSoon as exc:
        audit.record(db, now, "login.sms", "too_soon", holder["id"], ip)
        return _sms_screen(429, str(exc))
    try:
        sms.make_backend(current_app.config, get_db, _now).send(holder["phone"], sms_text(code))
    except SmsFailed as exc:
        otp.withdraw_code(db, code_id)
        audit.record(db, now, "login.sms", "gateway_failed", holder["id"], ip, reason=str(exc))
        return _sms_screen(503, _("SMS şu anda gönderilemedi. Lütfen biraz sonra tekrar deneyiniz."))
    audit.record(db, now, "login.sms", "sent", holder["id"], ip, backend=current_app.config["KAMUSM_SMS_BACKEND"])
    session["login"] = {**session["login"], "stage": STAGE_SMS_SENT}
    return web.redirect_to("auth.login_code")


def _code_screen(form: CodeForm, status: int = 200, message: str | None = None):
    db, now = get_db(), _now()
    state = login_state(session)
    left = otp.seconds_left(db, state.attempt, now)
    context = {"form": form, "message": message,
               "resend_in": otp.seconds_until_resend(db, state.attempt, code_policy(), now)}
    if left <= 0:
        return web.render_screen("login_code", "expired", status=status, **context)
    return web.render_screen("login_code", "form", status=status, seconds_left=left, expires_at=now + left, **context)


@bp.get("/login/code")
@require_stage(STAGE_SMS_SENT)
def login_code():
    return _code_screen(CodeForm())


@bp.post("/login/code")
@limiter.limit(lambda: current_app.config["KAMUSM_CODE_RATE"])
@require_stage(STAGE_SMS_SENT)
def login_code_post():
    form = CodeForm()
    db, now, ip = get_db(), _now(), request.remote_addr or ""
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
    audit.record(db, now, "login", "ok", holder_id, ip)
    web.start_fresh_session()
    session["login"] = {"stage": STAGE_DONE, "holder_id": holder_id, "attempt": None}
    session["holder_id"] = holder_id
    session["code_confirmed_at"] = now
    session["masked_name"] = mask_name(storage.holders.get_holder(db, holder_id)["name"])
    return web.redirect_to("menu.menu")


@bp.post("/logout")
def logout():
    state = login_state(session)
    if state.holder_id is not None:
        audit.record(get_db(), _now(), "logout", "ok", state.holder_id, request.remote_addr or "")
    session.destroy()
    return web.redirect_to("auth.login", bye=1)

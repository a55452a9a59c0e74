"""Kişisel Bilgiler: change the e-mail address or the phone number, each verified.

Security assumptions:
- Asking for a change needs an SMS code confirmed in the last 5 minutes
  (kamusm.stepup), so a stolen session alone cannot redirect the holder's codes.
- A new e-mail address counts only once the holder opens the one-time link
  mailed to it; a new phone number only once the code sent to it comes back.
  Until then the old value stays in force.
- A phone change is announced by SMS to the old number, so a holder whose
  number was changed behind their back hears of it.
"""
from __future__ import annotations

from flask import Blueprint, current_app, request, session
from flask_babel import gettext as _

from kamusm import audit, auth, mail, reset, sms, stepup, store, web
from kamusm.contact import normalize_email, normalize_phone
from kamusm.db import get_db
from kamusm.errors import CodeRejected, SmsFailed, ValidationError
from kamusm.extensions import limiter

PURPOSE_EMAIL = "email"
PHONE_ATTEMPT = "phone_attempt"
PENDING = "profile_pending"

bp = Blueprint("profile", __name__)


def _now() -> float:
    return current_app.config["CLOCK"]()


def _ip() -> str:
    return request.remote_addr or ""


def _screen(state: str = "view", status: int = 200, message: str | None = None, notice: str | None = None,
            errors: dict | None = None, values: dict | None = None):
    holder = auth.current_holder()
    pending = session.get(PENDING) or {}
    return web.render_screen("profile", state, status=status, holder=holder, message=message, notice=notice,
                             errors=errors or {}, values=values or {}, pending=pending)


@bp.get("/profile")
@auth.require_stage(auth.STAGE_DONE)
def profile():
    return _screen()


@bp.post("/profile")
@limiter.limit("10 per minute")
@auth.require_stage(auth.STAGE_DONE)
def change():
    form = request.form
    if "code" in form:
        return _take_code(form.get("code", ""))
    try:
        if "email" in form:
            email = normalize_email(form["email"], current_app.config["KAMUSM_EMAIL_DOMAINS"])
            pending = {"field": "email", "value": email}
        elif "phone" in form:
            pending = {"field": "phone", "value": normalize_phone(form["phone"])}
        else:
            return _screen(status=422, message=_("Değiştirilecek bilgiyi giriniz."))
    except ValidationError as exc:
        return _screen(status=422, errors={exc.field: str(exc)}, values=form.to_dict())
    holder = auth.current_holder()
    if pending["value"] == holder[pending["field"]]:
        return _screen(status=422, errors={pending["field"]: _("Bu zaten kayıtlı bilginiz.")}, values=form.to_dict())
    session[PENDING] = {**pending, "stage": "stepup"}
    if not stepup.is_recent():
        status, problem = stepup.send_code()
        return _screen("code", status, problem)
    return _start_verification()


def _take_code(code: str):
    """A code arrives: the step-up code, or the code sent to a new phone number."""
    pending = session.get(PENDING)
    if not pending:
        return _screen(status=409, message=_("Bekleyen bir değişiklik yok."))
    try:
        if pending["stage"] == "stepup":
            stepup.confirm(code)
            return _start_verification()
        stepup.spend_code(code, PHONE_ATTEMPT)
    except (ValidationError, CodeRejected) as exc:
        audit.record(get_db(), _now(), f"profile.{pending['field']}", "code_rejected", session["holder_id"], _ip())
        return _screen("code", 422, str(exc))
    return _apply_phone(pending["value"])


def _start_verification():
    """Step-up done: mail a link to the new address, or send a code to the new number."""
    pending = session[PENDING]
    db, now, holder = get_db(), _now(), auth.current_holder()
    if pending["field"] == "email":
        token = reset.issue_link_token(db, holder["id"], PURPOSE_EMAIL, now, payload=pending["value"])
        body = _("Sayın %(name)s,\n\nKamu SM bireysel işlemler portalında e-posta adresinizi bu adresle değiştirmek "
                 "istediniz. Onaylamak için aşağıdaki bağlantıyı 30 dakika içinde açınız. Bu isteği siz yapmadıysanız "
                 "bu e-postayı dikkate almayınız.\n\n%(link)s\n",
                 name=holder["name"], link=reset.link_for(token, "profile.confirm_email"))
        mail_id = mail.queue_mail(db, holder["id"], pending["value"], _("E-posta adresi doğrulama"), body, now)
        delivered = mail.deliver_queued(db, mail.make_backend(current_app.config, db, current_app.config["CLOCK"]),
                                        mail_id, now)
        audit.record(db, now, "profile.email", "link_sent" if delivered else "mail_failed", holder["id"], _ip())
        session.pop(PENDING, None)
        if not delivered:
            return _screen(status=503, message=_("Doğrulama e-postası şu anda gönderilemedi; yeniden denenecek. "
                                                 "Lütfen biraz sonra e-postanızı kontrol ediniz."))
        return _screen(notice=_("%(email)s adresine bir doğrulama bağlantısı gönderildi. Bağlantıyı açana kadar "
                                "eski adresiniz geçerli kalır.", email=pending["value"]))
    session[PENDING] = {**pending, "stage": "phone"}
    status, problem = stepup.send_code(PHONE_ATTEMPT, phone=pending["value"], event="profile.phone_code")
    return _screen("code", status, problem)


def _apply_phone(new_phone: str):
    db, now, holder = get_db(), _now(), auth.current_holder()
    old_phone = holder["phone"]
    store.set_contact(db, holder["id"], "phone", new_phone)
    audit.record(db, now, "profile.phone", "changed", holder["id"], _ip())
    session.pop(PENDING, None)
    try:
        sms.make_backend(current_app.config, get_db, _now).send(old_phone, _(
            "Kamu SM bireysel işlemler: cep telefonu numaranız değiştirildi. Bu değişikliği siz yapmadıysanız "
            "hemen kurumunuzla görüşünüz."))
    except SmsFailed as exc:
        audit.record(db, now, "profile.phone_notice", "gateway_failed", holder["id"], _ip(), reason=str(exc))
    return _screen(notice=_("Cep telefonu numaranız değiştirildi."))


@bp.get("/profile/email/<token>")
def confirm_email(token: str):
    db, now = get_db(), _now()
    row = reset.live_token(db, token, now)
    if row is None or row["purpose"] != PURPOSE_EMAIL:
        return web.render_screen("reset", "invalid", status=404)
    with store.write(db):
        if not store.claim_token(db, row["id_hash"], now):
            return web.render_screen("reset", "invalid", status=404)
        store.set_contact(db, row["holder_id"], "email", row["payload"])
        audit.record(db, now, "profile.email", "changed", row["holder_id"], _ip())
    return web.render_screen("profile", "email_confirmed")

"""Kişisel Bilgi Değişikliği: phone by a code sent to the new number, e-mail by a link sent to the new address."""
from __future__ import annotations

from flask import Blueprint, current_app, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kamusm import audit, auth, mail, otp, reset, storage
from kamusm.contact import mask_email, normalize_email, normalize_phone
from kamusm.errors import CodeRejected, ValidationError
from kamusm.factors import FactorLocked
from kamusm.profile import attempt_phone, confirm_email_link, issue_email_link, link_state, new_phone_attempt
from kamusm.web import current, guards, notify, rendering, stepup
from kamusm.web.db import get_db
from kamusm.web.extensions import limiter
from kamusm.web.forms import ProfileChangeForm

PHONE_ATTEMPT = "profile_phone_attempt"
PENDING = "profile_pending"
VOIDED_ATTEMPTS = "profile_voided_attempts"
VOIDED_ATTEMPTS_KEPT = 3
LINK_GONE_STATUS = 410


bp = Blueprint("profile", __name__)


LINK_REFUSALS = {  # state: (HTTP status, message)
    "unknown": (404, _l("Bu bağlantı geçerli değil. Bağlantıyı e-postadaki gibi eksiksiz açtığınızdan emin olunuz.")),
    "used": (LINK_GONE_STATUS, _l("Bu bağlantı daha önce kullanıldı: e-posta adresi değişikliği zaten onaylandı.")),
    "expired": (LINK_GONE_STATUS, _l("Bu bağlantının süresi doldu. E-posta adresinizi değiştirmek için Kişisel "
                                     "Bilgiler ekranından yeniden isteyiniz.")),
    "voided": (LINK_GONE_STATUS, _l("Bu bağlantı, daha sonra istediğiniz yeni bir e-posta adresi değişikliğiyle "
                                    "geçersiz kaldı. En son gelen e-postadaki bağlantıyı kullanınız.")),
}


def _screen(state: str = "view", status: int = 200, message: str | None = None, notice: str | None = None,
            errors: dict | None = None, values: dict | None = None, **context):
    holder = current.holder()
    pending = session.get(PENDING) or {}
    return rendering.render_screen("profile", state, status=status, holder=holder, message=message, notice=notice,
                                   errors=errors or {}, values=values or {}, pending=pending, **context)


@bp.get("/profile")
@guards.require_stage(auth.STAGE_DONE)
def profile():
    return _screen()


@bp.post("/profile")
@limiter.limit("10 per minute")
@guards.require_stage(auth.STAGE_DONE)
def change():
    form = ProfileChangeForm().sent()
    if stepup.carries_factor(form) or "send_sms" in form:
        return _take_code(form)
    try:
        if "email" in form:
            email = normalize_email(form["email"], current_app.config["KAMUSM_EMAIL_DOMAINS"])
            asked = {"field": "email", "value": email}
        elif "phone" in form:
            asked = {"field": "phone", "value": normalize_phone(form["phone"])}
        else:
            return _screen(status=422, message=_("Değiştirilecek bilgiyi giriniz."))
    except ValidationError as exc:
        return _screen(status=422, errors={exc.field: str(exc)}, values=form)
    holder = current.holder()
    if asked["value"] == holder[asked["field"]]:
        return _screen(status=422, errors={asked["field"]: _("Bu zaten kayıtlı bilginiz.")}, values=form)
    audit.record(get_db(), current.now(), f"profile.{asked['field']}", "requested", holder["id"], current.client_ip())
    previous = session.get(PENDING)
    if previous and previous["stage"] == "phone" and session.get(PHONE_ATTEMPT) \
            and asked == {"field": "phone", "value": previous["value"]}:
        return _send_phone_code()  # the same number again: a resend under the same attempt, nothing voided
    if previous:
        _void_pending(previous)
    session[PENDING] = {**asked, "stage": "stepup"}
    needed = stepup.demand_fresh_code(f"profile.{asked['field']}", {})
    if needed:
        return _screen("code", needed.status, needed.message, choices=needed.choices)
    return _start_verification()


def _void_pending(previous: dict) -> None:
    """A newer request replaces the pending one: the code already sent to a new number stops working."""
    db, now = get_db(), current.now()
    attempt = session.pop(PHONE_ATTEMPT, None) if previous["stage"] == "phone" else None
    if attempt:
        storage.codes.void_codes(db, attempt, now)
        session[VOIDED_ATTEMPTS] = [attempt, *session.get(VOIDED_ATTEMPTS, [])][:VOIDED_ATTEMPTS_KEPT]
    audit.record(db, now, f"profile.{previous['field']}", "voided", session["holder_id"], current.client_ip(),
                 stage=previous["stage"])


def _take_code(form: dict):
    """A factor arrives: the step-up's (or a request to be sent its SMS code), or the code sent to a new
    phone number."""
    pending = session.get(PENDING)
    if not pending:
        return _screen(status=409, message=_("Bekleyen bir değişiklik yok."))
    event = f"profile.{pending['field']}"
    if pending["stage"] == "stepup":
        needed = stepup.demand_fresh_code(event, form)
        if needed:
            if needed.status >= 400:
                audit.record(get_db(), current.now(), event, "refused", session["holder_id"], current.client_ip(),
                             reason="stepup")
            return _screen("code", needed.status, needed.message, choices=needed.choices)
        return _start_verification()
    code = form.get("code", "")
    attempt = session.get(PHONE_ATTEMPT) or ""
    try:
        stepup.spend_code(code, PHONE_ATTEMPT)
    except ValidationError as exc:
        audit.record(get_db(), current.now(), event, "refused", session["holder_id"], current.client_ip(),
                     reason="bad_input")
        return _screen("code", 422, str(exc))
    except FactorLocked as exc:
        audit.record(get_db(), current.now(), event, "refused", session["holder_id"], current.client_ip(),
                     reason="locked")
        return _screen("code", 429, str(exc))
    except CodeRejected as exc:
        if _code_of_voided_request(code):
            audit.record(get_db(), current.now(), event, "refused", session["holder_id"], current.client_ip(),
                         reason="voided")
            return _screen("code", 422, _("Bu kod, daha sonra istediğiniz yeni bir numara değişikliğiyle geçersiz "
                                          "kaldı. %(phone)s numarasına gönderilen son kodu giriniz.",
                                          phone=pending["value"]))
        audit.record(get_db(), current.now(), event, "refused", session["holder_id"], current.client_ip(),
                     reason="wrong_code")
        return _screen("code", 422, str(exc))
    return _apply_phone(attempt_phone(attempt))


def _code_of_voided_request(code: str) -> bool:
    entered = otp.check_code_input(code)
    return any(otp.was_sent(get_db(), current_app.secret_key, attempt, entered)
               for attempt in session.get(VOIDED_ATTEMPTS, []))


def _start_verification():
    """Step-up done: mail a link to the new address, or send a code to the new number."""
    pending = session[PENDING]
    db, now, holder = get_db(), current.now(), current.holder()
    if pending["field"] == "email":
        token = issue_email_link(db, holder["id"], pending["value"], now, current.client_ip())
        body = _("Sayın %(name)s,\n\nKamu SM bireysel işlemler portalında e-posta adresinizi bu adresle değiştirmek "
                 "istediniz. Onaylamak için aşağıdaki bağlantıyı 30 dakika içinde açınız ve açılan sayfadaki "
                 "düğmeye basınız. Bu isteği siz yapmadıysanız bu e-postayı dikkate almayınız.\n\n%(link)s\n",
                 name=holder["name"], link=rendering.link_for(token, "profile.confirm_email"))
        mail_id = mail.queue_mail(db, holder["id"], pending["value"], _("E-posta adresi doğrulama"), body, now)
        delivered = mail.deliver_queued(db, mail.make_backend(current_app.config, db, current_app.config["CLOCK"]),
                                        mail_id, now)
        audit.record(db, now, "profile.email", "link_sent" if delivered else "mail_failed", holder["id"],
                     current.client_ip())
        session.pop(PENDING, None)
        if not delivered:
            return _screen(status=503, message=_("Doğrulama e-postası şu anda gönderilemedi; yeniden denenecek. "
                                                 "Lütfen biraz sonra e-postanızı kontrol ediniz."))
        return _screen(notice=_("%(email)s adresine bir doğrulama bağlantısı gönderildi. Bağlantıyı açana kadar "
                                "eski adresiniz geçerli kalır.", email=pending["value"]))
    session[PENDING] = {**pending, "stage": "phone"}
    session[PHONE_ATTEMPT] = new_phone_attempt(pending["value"])
    return _send_phone_code()


def _send_phone_code():
    status, problem = stepup.send_code(PHONE_ATTEMPT, phone=attempt_phone(session[PHONE_ATTEMPT]),
                                       event="profile.phone_code")
    return _screen("code", status, problem)


def _apply_phone(new_phone: str):
    db, now, holder = get_db(), current.now(), current.holder()
    with storage.write(db):
        storage.holders.set_contact(db, holder["id"], "phone", new_phone)
        storage.holders.set_phone_changed_at(db, holder["id"], now)
        audit.record(db, now, "profile.phone", "confirmed", holder["id"], current.client_ip())
    session.pop(PENDING, None)
    session.pop(VOIDED_ATTEMPTS, None)
    text = _("Kamu SM bireysel işlemler: cep telefonu numaranız değiştirildi. Bu değişikliği siz yapmadıysanız "
             "hemen kurumunuzla görüşünüz.")
    notify.tell_holder(holder, "profile.phone_notice", text, _("Cep telefonu numaranız değiştirildi"),
                       text + "\n\n" + _("Yeni numaranız 72 saat boyunca tek başına PIN/PUK görüntüleme, kilit "
                                         "çözme ya da yeni bir numara değişikliği için yeterli olmaz; bu "
                                         "işlemler için geçiş anahtarınızı ya da doğrulama uygulamanızı "
                                         "kullanınız."))
    return _screen(notice=_("Cep telefonu numaranız değiştirildi."))


def _link_refused(state: str):
    status, message = LINK_REFUSALS[state]
    return rendering.render_screen("profile_email", "invalid", status=status, message=message)


@bp.get("/profile/email/<token>")
def confirm_email(token: str):
    """The mailed link: shows what it would confirm and a button; writes nothing."""
    row = reset.find_link_token(get_db(), token)
    state = link_state(row, current.now())
    if state != "live":
        return _link_refused(state)
    login = auth.login_state(session)
    own = login.stage == auth.STAGE_DONE and login.holder_id == row["holder_id"]
    return rendering.render_screen("profile_email", "confirm",
                                   email=row["payload"] if own else mask_email(row["payload"]))


@bp.post("/profile/email/<token>")
@limiter.limit("10 per minute")
def confirm_email_post(token: str):
    state = confirm_email_link(get_db(), token, current.now(), current.client_ip())
    if state != "confirmed":
        return _link_refused(state)
    return rendering.render_screen("profile_email", "confirmed")

"""Kartımı Kaybettim (/lost): the identity and the printed lost-card code suspend the certificate, no login.

Well-formed input always gets the same page and status, whatever happened (kamusm.lostcard); the holder
learns the outcome by SMS and mail, sent after the answer so a right code does not answer later than a
wrong one. The per-IP limit and the captcha come before any hash, like the login's.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _

from kamusm import audit, certificates, lostcard, mail, sms
from kamusm.errors import SmsFailed, ValidationError
from kamusm.web import anonymous_forms, current, receipting, rendering
from kamusm.web.db import get_db
from kamusm.web.extensions import limiter
from kamusm.web.forms import LostForm

bp = Blueprint("lost", __name__)


def code_sheet(code: str) -> dict:
    """What templates/partials/_lost_code_sheet.html needs: the code and where to use it (KAMUSM_PUBLIC_URL, as
    mailed links: the request's own host could be forged onto the paper)."""
    base = current_app.config["KAMUSM_PUBLIC_URL"] or "http://127.0.0.1:5000"
    return {"lost_code": code, "lost_url": base.rstrip("/") + url_for("lost.lost")}


def _form_screen(identity: str = "", status: int = 200, errors: dict | None = None):
    return rendering.render_screen("lost", "form", status=status, identity=identity, errors=errors or {},
                                   **anonymous_forms.captcha_context())


@bp.get("/lost")
def lost():
    return _form_screen()


@bp.post("/lost")
@limiter.limit(lambda: current_app.config["KAMUSM_LOGIN_RATE"])
def lost_post():
    form = LostForm()
    db, now, ip = get_db(), current.now(), current.client_ip()
    identity, errors = anonymous_forms.check_identity_and_captcha(form, db, now)
    code = ""
    try:
        code = lostcard.normalize(form.lost_code.data or "")
    except ValidationError as exc:
        errors["lost_code"] = str(exc)
    if errors:
        audit.record(db, now, "lost.form", "rejected", None, ip, fields=sorted(errors))
        return _form_screen(form.identity.data or "", 422, errors)
    authority = certificates.portal_authority(Path(current_app.instance_path), current_app.config["KAMUSM_DEMO"])
    suspension = lostcard.suspend_with_code(db, authority, identity, code, now, ip)
    # Whoever sent this leaves with a new anonymous session: the holder's own may have been ended just now,
    # and must not be saved back by this request.
    rendering.start_fresh_session()
    body, status = rendering.render_screen("lost", "done")
    response = current_app.make_response((body, status))
    if suspension is not None:
        _tell_after_response(response, suspension)
    return response


def _tell_after_response(response, suspension: lostcard.Suspension) -> None:
    """Queue the mail now (it survives a crash and is retried), send the SMS and the mail once the answer
    is out, in the request's language."""
    db, now, holder = get_db(), current.now(), suspension.holder
    count = len(suspension.suspended)
    if count:
        text = _("Kamu SM bireysel işlemler: kayıp kart kodunuzla %(n)d sertifikanız askıya alındı ve "
                 "oturumlarınız kapatıldı. Kullanılan kod artık geçersizdir: giriş yapıp Güvenlik Yöntemlerim "
                 "sayfasında yeni bir kayıp kart kodu oluşturup yazdırınız. Bunu siz yapmadıysanız hemen "
                 "kurumunuzla görüşünüz.", n=count)
    else:
        text = _("Kamu SM bireysel işlemler: kayıp kart kodunuz kullanıldı; askıya alınacak geçerli bir "
                 "sertifikanız yoktu. Oturumlarınız kapatıldı ve kod artık geçersizdir: giriş yapıp Güvenlik "
                 "Yöntemlerim sayfasında yeni bir kayıp kart kodu oluşturup yazdırınız. Bunu siz yapmadıysanız "
                 "hemen kurumunuzla görüşünüz.")
    mail_id = mail.queue_mail(db, holder["id"], holder["email"], _("Sertifikanız askıya alındı"), text, now) \
        if holder.get("email") else None
    app, ip, language = current_app._get_current_object(), current.client_ip(), str(get_locale())
    response.call_on_close(lambda: _deliver(app, holder, text, mail_id, ip, suspension.suspended, language))


def _deliver(app, holder: dict, text: str, mail_id: int | None, ip: str, suspended: list[dict],
             language: str) -> None:
    with app.app_context(), force_locale(language):
        db, clock = get_db(), app.config["CLOCK"]
        for row in suspended:
            receipting.for_certificate_change(holder["id"], row["id"], "suspend", ip,
                                              by=_("kayıp kart kodu ile, giriş yapılmadan (/lost)"))
        try:
            sms.make_backend(app.config, get_db, clock).send(holder["phone"], text)
        except SmsFailed as exc:
            audit.record(db, clock(), "lost.notice", "sms_failed", holder["id"], ip, reason=str(exc))
        if mail_id is not None and not mail.deliver_queued(db, mail.make_backend(app.config, db, clock), mail_id,
                                                           clock()):
            audit.record(db, clock(), "lost.notice", "mail_failed", holder["id"], ip)

"""Güvenlik sözcüğü: the forgot form and the one-time reset/activation link."""
from __future__ import annotations

from flask import Blueprint, current_app, make_response, request
from flask_babel import gettext as _

from kamusm import lostcard, mail, storage
from kamusm.errors import ValidationError
from kamusm.identity import normalize_identity
from kamusm.policy import check_security_word
from kamusm.reset import PURPOSE_ACTIVATION, live_token, request_reset, set_security_word
from kamusm.web import current, rendering
from kamusm.web.db import get_db
from kamusm.web.extensions import limiter
from kamusm.web.forms import ForgotForm, ResetForm
from kamusm.web.rendering import link_for
from kamusm.web.views.lost import code_sheet

bp = Blueprint("reset", __name__)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    db, now = get_db(), current.now()
    row = live_token(db, token, now)
    if row is None:
        return rendering.render_screen("reset", "invalid", status=404)
    holder = storage.holders.get_holder(db, row["holder_id"])
    form = ResetForm()
    if request.method == "GET":
        return rendering.render_screen("reset", "form", form=form, errors={},
                                       activation=row["purpose"] == PURPOSE_ACTIVATION)
    word, confirm = form.security_word.data or "", form.security_word_confirm.data or ""
    try:
        check_security_word(word, confirm, identity=holder["identity"], name=holder["name"])
    except ValidationError as exc:
        return rendering.render_screen("reset", "form", status=422, form=form, errors={exc.field: str(exc)},
                                 activation=row["purpose"] == PURPOSE_ACTIVATION)
    word_hash = current_app.extensions["kamusm.hasher"].hash(word)
    if not set_security_word(db, holder, row, word_hash, now, current.client_ip()):
        return rendering.render_screen("reset", "invalid", status=404)
    # The lost-card code reaches a holder here, on the screen where they set their word (never by mail); a
    # reset keeps the code they printed before.
    lost_code = lostcard.issue_if_none(db, holder["id"], now, current.client_ip(), via=row["purpose"])
    return rendering.render_screen("reset", "done", message=_(
        "Güvenlik sözcüğünüz kaydedildi. Yeni sözcüğünüzle giriş yapabilirsiniz."),
        **(code_sheet(lost_code) if lost_code else {}))


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["KAMUSM_FORGOT_RATE"], methods=["POST"])
def forgot():
    form = ForgotForm()
    if request.method == "GET":
        return rendering.render_screen("forgot", "form", form=form, errors={})
    try:
        identity = normalize_identity(form.identity.data or "")
    except ValidationError as exc:
        return rendering.render_screen("forgot", "form", status=422, form=form, errors={"identity": str(exc)})
    db, now = get_db(), current.now()
    issued = request_reset(db, identity, current_app.config["KAMUSM_EMAIL_DOMAINS"], now, current.client_ip())
    response = make_response(rendering.render_screen("forgot", "sent"))
    if issued is not None:
        holder, token = issued
        body = _("Sayın %(name)s,\n\nGüvenlik sözcüğünüzü yenilemek için aşağıdaki bağlantıyı 30 dakika içinde "
                 "açınız. Bu isteği siz yapmadıysanız bu e-postayı dikkate almayınız; sözcüğünüz "
                 "değişmez.\n\n%(link)s\n",
                 name=holder["name"], link=link_for(token))
        subject = _("Güvenlik sözcüğü yenileme bağlantısı")
        mail_id = mail.queue_mail(db, holder["id"], holder["email"], subject, body, now)
        app = current_app._get_current_object()
        # Delivered after the answer is sent, so a known ID does not answer slower than an unknown one.
        response.call_on_close(lambda: deliver_after_response(app, mail_id))
    return response


def deliver_after_response(app, mail_id: int) -> None:
    with app.app_context():
        db = get_db()
        now = app.config["CLOCK"]()
        mail.deliver_queued(db, mail.make_backend(app.config, db, app.config["CLOCK"]), mail_id, now)

"""The console's staff screens: operators (admins only) and the outgoing messages (bodies never shown)."""
from __future__ import annotations

from flask import Blueprint, current_app, g
from flask_babel import gettext as _

from kamusm import mail, operators, storage
from kamusm.contact import mask_email
from kamusm.errors import ValidationError
from kamusm.web import current
from kamusm.web.db import get_db
from kamusm.web.forms import AdminOperatorForm
from kamusm.web.views.admin import enrolment_link, record, require_operator, screen

bp = Blueprint("admin_staff", __name__, url_prefix="/admin")

RECENT_MESSAGES = 50


def _operators_screen(status: int = 200, **context):
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return screen("operators", "list", status, operators=storage.operators.all_operators(get_db()), **context)


@bp.get("/operators")
@require_operator(operators.MANAGE_OPERATORS)
def operators_page():
    return _operators_screen()


@bp.post("/operators")
@require_operator(operators.MANAGE_OPERATORS)
def add_operator():
    form = AdminOperatorForm().sent()
    try:
        token = operators.add(get_db(), form.get("name", ""), form.get("role", ""), current.now(),
                              by=g.operator["name"])
    except ValidationError as exc:
        return _operators_screen(422, errors={exc.field: str(exc)}, values=form)
    return _operators_screen(link=enrolment_link(token),
                             notice=_("Operatör eklendi: %(name)s", name=operators.check_name(form["name"])))


@bp.post("/operators/<int:operator_id>")
@require_operator(operators.MANAGE_OPERATORS)
def operator_change(operator_id: int):
    db, now = get_db(), current.now()
    row = storage.operators.get_operator(db, operator_id)
    action = AdminOperatorForm().sent().get("action", "")
    if row is None:
        return _operators_screen(404, message=_("Böyle bir operatör yok."))
    if row["id"] == g.operator["id"]:
        return _operators_screen(409, message=_("Kendi hesabınızı buradan değiştiremezsiniz."))
    if action == "reenrol":
        token = operators.reissue(db, row["name"], now, by=g.operator["name"])
        return _operators_screen(link=enrolment_link(token),
                                 notice=_("%(name)s için yeni kayıt bağlantısı oluşturuldu; eski parola ve uygulama "
                                          "artık geçmez.", name=row["name"]))
    if action in ("disable", "enable"):
        storage.operators.set_operator_disabled(db, row["id"], now if action == "disable" else None)
        record(f"operator.{action}", subject=row["name"])
        return _operators_screen(notice=_("%(name)s devre dışı bırakıldı.", name=row["name"]) if action == "disable"
                                 else _("%(name)s etkinleştirildi.", name=row["name"]))
    return _operators_screen(422, message=_("Bilinmeyen işlem."))


def _mask_recipient(row: dict) -> str:
    return mask_email(row["recipient"]) if row["kind"] == "mail" else row["recipient"][:6] + "*****"


@bp.get("/mail")
@require_operator()
def mail_page():
    db = get_db()
    return screen("mail", "list", queue=storage.mail_queue.recent_mail(db, RECENT_MESSAGES),
                  counts=storage.mail_queue.mail_counts(db),
                  outbox=storage.outbox.recent_outbox_meta(db, RECENT_MESSAGES), mask_email=mask_email,
                  mask_recipient=_mask_recipient)


@bp.post("/mail/retry")
@require_operator(operators.MANAGE_HOLDERS)
def mail_retry():
    db, now = get_db(), current.now()
    sent, failed = mail.retry_pending(db, mail.make_backend(current_app.config, db, current_app.config["CLOCK"]), now)
    record("operator.mail_retry", sent=sent, failed=failed)
    return mail_page()

"""The console's staff screens: operators and the vault key (admins only), the outgoing messages (bodies
never shown)."""
from __future__ import annotations

import threading
from pathlib import Path

from flask import Blueprint, Flask, current_app, g
from flask_babel import gettext as _

from kamusm import audit, jobs, mail, operators, storage, vault
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


@bp.post("/operators/<rowid:operator_id>")
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


ROTATION = "vault-rotation"


def _vault_screen(status: int = 200, message: str | None = None):
    db, config = get_db(), current_app.config
    keyring = vault.app_keyring()
    job = jobs.running(Path(current_app.instance_path), ROTATION)
    return screen("vault", "view", status, message=message, key_id=keyring.current_id, pending=bool(keyring.others),
                  from_environment=bool(config["KAMUSM_VAULT_KEY"]), keys=_sealed_count(db), job=job)


def _sealed_count(db) -> int:
    """Everything a rotation re-seals: data keys, holders' app seeds, operators' app seeds."""
    return (storage.vault.count_data_keys(db) + len(storage.factors.totp_not_under(db, ""))
            + len(storage.operators.operators_not_under(db, "")))


@bp.get("/vault")
@require_operator(operators.MANAGE_OPERATORS)
def vault_page():
    return _vault_screen()


@bp.post("/vault/rotate")
@require_operator(operators.MANAGE_OPERATORS)
def rotate_vault_key():
    instance = Path(current_app.instance_path)
    if current_app.config["KAMUSM_VAULT_KEY"]:
        return _vault_screen(409, _("Anahtar ortam değişkeninden geliyor: döndürmek için KAMUSM_VAULT_KEY_NEXT "
                                    "ayarlayıp `kamusm rotate-vault-key` komutunu çalıştırınız."))
    if jobs.running(instance, ROTATION):
        return _vault_screen(409, _("Bir anahtar döndürme zaten sürüyor."))
    job = jobs.new_job(instance)
    jobs.write_progress(instance, job, {"kind": ROTATION, "state": "running", "done": 0,
                                        "total": _sealed_count(get_db())})
    record("admin.rotate_vault_key", outcome="started")
    threading.Thread(target=_rotate, name=f"vault-rotation-{job[:6]}", daemon=True,
                     args=(current_app._get_current_object(), job, g.operator["name"], current.client_ip())).start()
    return _rotation_screen(job)


def _rotate(app: Flask, job: str, operator_name: str, ip: str) -> None:
    instance = Path(app.instance_path)
    with app.app_context():
        db = get_db()
        total = jobs.read_progress(instance, job)["total"]

        def progress(done: int) -> None:
            jobs.write_progress(instance, job, {"kind": ROTATION, "state": "running", "done": done, "total": total})

        try:
            count = vault.rotate_key_file(db, instance, progress)
        except Exception as exc:  # the page shows the failure; a rotation resumes safely when started again
            jobs.write_progress(instance, job, {"kind": ROTATION, "state": "failed", "done": 0, "total": total})
            audit.record(db, app.config["CLOCK"](), "admin.rotate_vault_key", "failed", None, ip,
                         operator=operator_name, problem=type(exc).__name__)
            return
        audit.record(db, app.config["CLOCK"](), "admin.rotate_vault_key", "ok", None, ip, operator=operator_name,
                     rewrapped=count)
        jobs.write_progress(instance, job, {"kind": ROTATION, "state": "done", "done": count, "total": count})


def _rotation_screen(job: str):
    progress = jobs.read_progress(Path(current_app.instance_path), job)
    if progress is None or progress.get("kind") != ROTATION:
        return _vault_screen(404, _("Böyle bir anahtar döndürme yok."))
    return screen("vault", progress["state"], job=job, progress=progress)


@bp.get("/vault/<job>")
@require_operator(operators.MANAGE_OPERATORS)
def rotation_progress(job: str):
    return _rotation_screen(job)

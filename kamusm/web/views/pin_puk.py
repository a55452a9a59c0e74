"""PIN/PUK Görüntüle: masked, revealed after a fresh code, saved as a file, deleted for good."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, session
from flask_babel import gettext as _

from kamusm import audit, auth, receipts, storage, vault
from kamusm.pinpuk import CONFIRM_VALUE, card_rows, mask, mask_serial, secrets_text
from kamusm.web import current, guards, notify, receipting, rendering, stepup
from kamusm.web.db import get_db
from kamusm.web.forms import PinPukForm, StepUpForm

bp = Blueprint("pinpuk", __name__)


def _screen(state: str, status: int = 200, message: str | None = None, rows: list[dict] | None = None,
            **context):
    db = get_db()
    holder_id = session["holder_id"]
    if rows is None:
        rows = card_rows(db, None, holder_id)
    deleted_at = next((row["secrets_deleted_at"] for row in rows if row["secrets_deleted_at"]), None)
    if state == "masked" and rows and not any(row["has_secrets"] for row in rows):
        state = "deleted"
    receipt = storage.receipts.latest_holder_receipt(db, holder_id, receipts.KIND_VAULT_DELETE)
    return rendering.render_screen("pin_puk", state, status=status, rows=rows, message=message,
                                   deleted_at=deleted_at, mask=mask, mask_serial=mask_serial, receipt=receipt,
                                   **context)


@bp.get("/pin-puk")
@guards.require_stage(auth.STAGE_DONE)
def pin_puk():
    return _screen("masked")


def _reveal():
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    rows = card_rows(db, vault.app_keyring(), holder_id)
    audit.record(db, now, "pinpuk.reveal", "ok", holder_id, current.client_ip(), cards=len(rows))
    notify.alert_vault_use(holder_id, "pinpuk.reveal", _("PIN/PUK bilgileriniz portalda görüntülendi"))
    return _screen("revealed", rows=rows)


@bp.post("/pin-puk/reveal")
@guards.require_stage(auth.STAGE_DONE)
def reveal():
    needed = stepup.demand_fresh_code("pinpuk.reveal", StepUpForm().sent())
    if needed:
        return _screen("stepup", needed.status, needed.message, stepup_for="reveal", choices=needed.choices)
    return _reveal()


@bp.post("/pin-puk/save")
@guards.require_stage(auth.STAGE_DONE)
def save():
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    if not stepup.is_recent("pinpuk.save"):
        return _screen("masked", 403, _("Kaydetmek için önce \"Göster\" ile SMS onay kodunu giriniz."))
    rows = [row for row in card_rows(db, vault.app_keyring(), holder_id) if row["pin"]]
    if not rows:
        return _screen("masked", 409, _("Kayıtlı PIN/PUK bilgisi yok."))
    audit.record(db, now, "pinpuk.save", "ok", holder_id, current.client_ip(), cards=len(rows))
    notify.alert_vault_use(holder_id, "pinpuk.save", _("PIN/PUK bilgileriniz portaldan dosya olarak indirildi"))
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d")
    return Response(secrets_text(rows), mimetype="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="pin-puk-{stamp}.txt"', "Cache-Control": "no-store"})


@bp.post("/pin-puk/delete")
@guards.require_stage(auth.STAGE_DONE)
def delete():
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    form = PinPukForm().sent()
    confirmed = form.get("confirm") == CONFIRM_VALUE
    not_confirmed = _("Silmek için kutuyu işaretleyerek onaylayınız.")
    if not stepup.is_recent() and not stepup.carries_factor(form):
        if not confirmed:  # no SMS is spent on a form that could not delete anyway
            return _screen("masked", 422, not_confirmed, errors={"confirm": not_confirmed})
        audit.record(db, now, "pinpuk.delete", "stepup", holder_id, current.client_ip())
    needed = stepup.demand_fresh_code("pinpuk.delete", form)
    if needed:
        return _screen("stepup", needed.status, needed.message, stepup_for="delete", confirmed=confirmed,
                       choices=needed.choices)
    if not confirmed:
        return _screen("masked", 422, not_confirmed, errors={"confirm": not_confirmed})
    serials = [row["serial"] for row in card_rows(db, None, holder_id) if row["has_secrets"]]
    with storage.write(db, durable=True):
        removed = vault.destroy_secrets(db, holder_id)
        storage.cards.mark_secrets_deleted(db, holder_id, now)
        audit.record(db, now, "pinpuk.delete", "ok", holder_id, current.client_ip(), secrets=removed)
    receipting.for_vault_delete(holder_id, serials, current.client_ip())
    notify.alert_vault_use(holder_id, "pinpuk.delete", _("PIN/PUK bilgileriniz portaldan kalıcı olarak silindi"))
    if rendering.is_htmx_partial():
        return _screen("deleted")
    return rendering.redirect_to("pinpuk.pin_puk")

"""PIN ve PUK Bilgileri: show masked, reveal after a recent code, save, delete for good.

Security assumptions:
- Secrets are opened from the vault only for a reveal or a save, and only when
  the holder confirmed an SMS code in the last 5 minutes (kamusm.stepup); otherwise a
  fresh code is sent first (step-up). Revealed values go only into that
  response, which is never cached; they are not put in the session.
- Delete needs the same recent code, and its `confirm` box on top: a session
  left open (or stolen) cannot destroy the vault, and a code alone deletes nothing.
- The PUK of a card whose certificate was issued in 2011 or later is never
  shown: such cards are unlocked online (Kilit Çözme), which uses the PUK
  without showing it.
- Delete destroys the ciphertexts and the data key; see kamusm.vault.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, request, session
from flask_babel import gettext as _

from kamusm import audit, auth, stepup, storage, vault, web
from kamusm.db import get_db
from kamusm.errors import CodeRejected, ValidationError

PUK_SHOWN_UNTIL_YEAR = 2010
CONFIRM_VALUE = "yes"


# Rules ---------------------------------------------------------------------

def puk_is_shown(cert_issued: str) -> bool:
    """The seed: cards from 2010 and earlier are unlocked with the PUK by the holder, so it is shown."""
    return int(cert_issued[:4]) <= PUK_SHOWN_UNTIL_YEAR


def mask(value: str) -> str:
    """'482916' -> '4*****', as on the CA's screen: the first character and a fixed number of stars."""
    return f"{value[:1]}*****" if value else ""


def mask_serial(serial: str) -> str:
    return f"{serial[:2]}*****"


def card_rows(db, keyring: vault.Keyring | None, holder_id: int) -> list[dict]:
    """The holder's cards for the screen; with a keyring, the opened secrets too."""
    rows = []
    for card in storage.cards.holder_cards(db, holder_id):
        opened = vault.read_secrets(db, keyring, holder_id, card["serial"]) if keyring else {}
        rows.append({**card, "show_puk": puk_is_shown(card["cert_issued"]),
                     "has_secrets": bool(storage.vault.card_secrets(db, holder_id, card["serial"])),
                     "pin": opened.get("pin"), "puk": opened.get("puk")})
    return rows


def secrets_text(rows: list[dict]) -> str:
    lines = [_("PIN ve PUK Bilgileri"), ""]
    for row in rows:
        lines.append(f"{_('Kart Seri Numarası')}: {row['serial']}")
        if row["pin"]:
            lines.append(f"PIN: {row['pin']}")
        if row["show_puk"] and row["puk"]:
            lines.append(f"PUK: {row['puk']}")
        lines.append("")
    lines.append(_("Kamu Sertifikasyon Merkezi, güvenliğiniz için PIN/PUK bilgilerinizin silinmesini ve ikinci "
                   "şahısların ulaşabileceği yerlere kaydedilmemesini önerir."))
    return "\n".join(lines) + "\n"


# Views ---------------------------------------------------------------------

bp = Blueprint("pinpuk", __name__)


def _now() -> float:
    return current_app.config["CLOCK"]()


def _ip() -> str:
    return request.remote_addr or ""


def _screen(state: str, status: int = 200, message: str | None = None, rows: list[dict] | None = None,
            **context):
    db = get_db()
    holder_id = session["holder_id"]
    if rows is None:
        rows = card_rows(db, None, holder_id)
    deleted_at = next((row["secrets_deleted_at"] for row in rows if row["secrets_deleted_at"]), None)
    if state == "masked" and rows and not any(row["has_secrets"] for row in rows):
        state = "deleted"
    return web.render_screen("pin_puk", state, status=status, rows=rows, message=message,
                             deleted_at=deleted_at, mask=mask, mask_serial=mask_serial, **context)


@bp.get("/pin-puk")
@auth.require_stage(auth.STAGE_DONE)
def pin_puk():
    return _screen("masked")


def _reveal():
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    rows = card_rows(db, vault.app_keyring(), holder_id)
    audit.record(db, now, "pinpuk.reveal", "ok", holder_id, _ip(), cards=len(rows))
    return _screen("revealed", rows=rows)


@bp.post("/pin-puk/reveal")
@auth.require_stage(auth.STAGE_DONE)
def reveal():
    if stepup.is_recent():
        return _reveal()
    code = request.form.get("code")
    if code is None:
        status, problem = stepup.send_code()
        return _screen("stepup", status, problem, stepup_for="reveal")
    try:
        stepup.confirm(code)
    except (ValidationError, CodeRejected) as exc:
        audit.record(get_db(), _now(), "stepup.code", "rejected", session["holder_id"], _ip())
        return _screen("stepup", 422, str(exc), stepup_for="reveal")
    return _reveal()


@bp.post("/pin-puk/save")
@auth.require_stage(auth.STAGE_DONE)
def save():
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    if not stepup.is_recent():
        return _screen("masked", 403, _("Kaydetmek için önce \"Göster\" ile SMS onay kodunu giriniz."))
    rows = [row for row in card_rows(db, vault.app_keyring(), holder_id) if row["pin"]]
    if not rows:
        return _screen("masked", 409, _("Kayıtlı PIN/PUK bilgisi yok."))
    audit.record(db, now, "pinpuk.save", "ok", holder_id, _ip(), cards=len(rows))
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d")
    return Response(secrets_text(rows), mimetype="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="pin-puk-{stamp}.txt"', "Cache-Control": "no-store"})


@bp.post("/pin-puk/delete")
@auth.require_stage(auth.STAGE_DONE)
def delete():
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    confirmed = request.form.get("confirm") == CONFIRM_VALUE
    not_confirmed = _("Silmek için kutuyu işaretleyerek onaylayınız.")
    if not stepup.is_recent():
        code = request.form.get("code")
        if code is None:
            if not confirmed:  # no SMS is spent on a form that could not delete anyway
                return _screen("masked", 422, not_confirmed)
            audit.record(db, now, "pinpuk.delete", "stepup", holder_id, _ip())
            status, problem = stepup.send_code()
            return _screen("stepup", status, problem, stepup_for="delete", confirmed=confirmed)
        try:
            stepup.confirm(code)
        except (ValidationError, CodeRejected) as exc:
            audit.record(db, now, "stepup.code", "rejected", holder_id, _ip(), action="pinpuk.delete")
            return _screen("stepup", 422, str(exc), stepup_for="delete", confirmed=confirmed)
    if not confirmed:
        return _screen("masked", 422, not_confirmed)
    with storage.write(db, durable=True):
        removed = vault.destroy_secrets(db, holder_id)
        storage.cards.mark_secrets_deleted(db, holder_id, now)
        audit.record(db, now, "pinpuk.delete", "ok", holder_id, _ip(), secrets=removed)
    if web.is_htmx_partial():
        return _screen("deleted")
    return web.redirect_to("pinpuk.pin_puk")

"""Son İşlemlerim: the holder's own recent security events (kamusm.activity) and signed receipts (kamusm.receipts)."""
from __future__ import annotations

from flask import Blueprint, Response, abort, session
from flask_babel import lazy_gettext as _l

from kamusm import activity, auth, receipts, storage
from kamusm.web import guards, rendering
from kamusm.web.db import get_db

bp = Blueprint("activity", __name__)

RECEIPT_KINDS = {receipts.KIND_CERTIFICATE: _l("Sertifika durum değişikliği"),
                 receipts.KIND_VAULT_DELETE: _l("PIN/PUK silme")}


@bp.get("/activity")
@guards.require_stage(auth.STAGE_DONE)
def activity_page():
    db, holder_id = get_db(), session["holder_id"]
    return rendering.render_screen("activity", "list", rows=activity.holder_activity(db, holder_id),
                                   receipts=storage.receipts.holder_receipts(db, holder_id),
                                   receipt_kinds=RECEIPT_KINDS)


@bp.get("/receipts/<rowid:receipt_id>")
@guards.require_stage(auth.STAGE_DONE)
def receipt(receipt_id: int):
    """The holder's own receipt as signed (CMS, DER); someone else's is as absent as a missing one."""
    row = storage.receipts.get_holder_receipt(get_db(), session["holder_id"], receipt_id)
    if row is None:
        abort(404)
    return Response(row["signed"], mimetype=receipts.RECEIPT_MIMETYPE, headers={
        "Content-Disposition": f'attachment; filename="makbuz-{receipt_id}.p7m"', "Cache-Control": "no-store"})

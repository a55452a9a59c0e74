"""İşlemler Menüsü: the greeting and the operations a holder can open."""
from __future__ import annotations

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from kamusm import auth, web

bp = Blueprint("menu", __name__)

OPERATIONS = (
    ("pinpuk.pin_puk", _l("PIN/PUK Bilgisi")),
    ("unlock.unlock", _l("Kilit Çözme")),
    ("certificates.certificate", _l("Sertifika Durumu")),
    ("profile.profile", _l("Kişisel Bilgiler")),
)


@bp.get("/menu")
@auth.require_stage(auth.STAGE_DONE)
def menu():
    holder = auth.current_holder()
    return web.render_screen("menu", "operations", masked_name=auth.mask_name(holder["name"]),
                             operations=OPERATIONS)

"""İşlemler Menüsü, and the operations that later issues fill in."""
from __future__ import annotations

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from kamusm import auth, web

bp = Blueprint("menu", __name__)

OPERATIONS = (
    ("pinpuk.pin_puk", _l("PIN/PUK Bilgisi")),
    ("unlock.unlock", _l("Kilit Çözme")),
    ("menu.certificate", _l("Sertifika Durumu")),
    ("profile.profile", _l("Kişisel Bilgiler")),
)


@bp.get("/menu")
@auth.require_stage(auth.STAGE_DONE)
def menu():
    holder = auth.current_holder()
    return web.render_screen("menu", "operations", masked_name=auth.mask_name(holder["name"]),
                             operations=OPERATIONS)


def _not_yet(title: str):
    return web.render_screen("not_yet", "notice", title=title)


@bp.get("/certificate")
@auth.require_stage(auth.STAGE_DONE)
def certificate():
    return _not_yet(_l("Sertifika Durumu"))

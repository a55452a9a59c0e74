"""İşlemler Menüsü: the greeting and the operations a holder can open."""
from __future__ import annotations

from flask import Blueprint

from kamusm import auth, web

bp = Blueprint("menu", __name__)


@bp.get("/menu")
@auth.require_stage(auth.STAGE_DONE)
def menu():
    return web.render_screen("menu", "operations", masked_name=auth.masked_name())

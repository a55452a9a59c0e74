"""İşlemler Menüsü: the greeting and the operations a holder can open."""
from __future__ import annotations

from flask import Blueprint

from kamusm import auth
from kamusm.web import current, guards, rendering

bp = Blueprint("menu", __name__)


@bp.get("/menu")
@guards.require_stage(auth.STAGE_DONE)
def menu():
    return rendering.render_screen("menu", "operations", masked_name=current.masked_name())

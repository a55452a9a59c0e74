"""Son İşlemlerim: the holder's own recent security events (kamusm.activity)."""
from __future__ import annotations

from flask import Blueprint, session

from kamusm import activity, auth
from kamusm.web import guards, rendering
from kamusm.web.db import get_db

bp = Blueprint("activity", __name__)


@bp.get("/activity")
@guards.require_stage(auth.STAGE_DONE)
def activity_page():
    return rendering.render_screen("activity", "list", rows=activity.holder_activity(get_db(), session["holder_id"]))

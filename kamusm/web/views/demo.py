"""The demo phone and mailbox: what the outbox backends kept, shown in demo mode only."""
from __future__ import annotations

from flask import Blueprint

from kamusm import storage
from kamusm.web import rendering
from kamusm.web.db import get_db

bp = Blueprint("demo", __name__, url_prefix="/demo")


@bp.get("/phone")
def phone():
    return rendering.render_screen("demo_phone", "messages", messages=storage.outbox.latest_outbox(get_db(), "sms"))


@bp.get("/mail")
def mail():
    return rendering.render_screen("demo_mail", "messages", messages=storage.outbox.latest_outbox(get_db(), "mail"))

"""The demo phone and mailbox: what the outbox backends kept; and the presenter, the teacher's screen beside the
portal (the phone, the mailbox, the demo card's counters, every demo holder's state, the scenario buttons).
Registered in demo mode only (kamusm/web/factory.py): outside it every path here is a 404.

The presenter cannot frame the portal (its CSP says frame-ancestors 'none'): it is a page of its own, for a
second window or the right half of the projector, with a link that opens the portal in another window.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app
from flask_babel import gettext as _

from kamusm import audit, certificates, scenarios, storage
from kamusm.demo import DEMO_HOLDERS
from kamusm.web import current, rendering
from kamusm.web.db import get_db
from kamusm.web.forms import ScenarioForm

bp = Blueprint("demo", __name__, url_prefix="/demo")


@bp.get("/phone")
def phone():
    return rendering.render_screen("demo_phone", "messages", messages=storage.outbox.latest_outbox(get_db(), "sms"))


@bp.get("/mail")
def mail():
    return rendering.render_screen("demo_mail", "messages", messages=storage.outbox.latest_outbox(get_db(), "mail"))


def _presenter(state: str, status: int = 200, selected: str = scenarios.DEFAULT_IDENTITY, message: str | None = None,
               done: str | None = None, refresh_tokens: bool = False):
    """The presenter page (every panel) or, for htmx, the one partial `state`."""
    db, now = get_db(), current.now()
    return rendering.render_screen(
        "demo_presenter", state, status=status,
        card=scenarios.card_state(scenarios.sim_card_path(Path(current_app.instance_path))),
        card_holder=DEMO_HOLDERS[0], holders=scenarios.holder_states(db, now),
        status_labels=certificates.STATUS_LABELS, sms_messages=storage.outbox.latest_outbox(db, "sms"),
        mail_messages=storage.outbox.latest_outbox(db, "mail"), scenario_labels=scenarios.SCENARIO_LABELS,
        demo_holders=DEMO_HOLDERS, selected=selected, message=message, done=done,
        refresh_tokens=refresh_tokens)


@bp.get("/presenter")
def presenter():
    return _presenter("panels")


@bp.get("/presenter/state")
def presenter_state():
    """The card and holder panel alone, which the presenter polls."""
    return _presenter("state", refresh_tokens=rendering.is_htmx_partial())


@bp.post("/presenter/scenario")
def presenter_scenario():
    form = ScenarioForm()
    db, now, ip = get_db(), current.now(), current.client_ip()
    name, identity = form.scenario.data or "", (form.holder.data or "").strip()
    try:
        holder = scenarios.apply_scenario(db, scenarios.classroom_for(current_app), name, identity, now, ip)
    except scenarios.ScenarioRefused as exc:
        audit.record(db, now, "demo.scenario", "rejected", None, ip, scenario=name[:40])
        return _presenter("scenarios", exc.status, identity, message=str(exc))
    if not rendering.is_htmx_partial():
        return rendering.redirect_to("demo.presenter")
    return _presenter("scenarios", selected=identity, done=f"{holder['name']}: {scenarios.SCENARIO_LABELS[name]}.")


@bp.post("/presenter/reset")
def presenter_reset():
    """`kamusm demo --reset` from the presenter: the next class starts afresh."""
    db, now = get_db(), current.now()
    scenarios.reset_demo(db, current_app.extensions["kamusm.hasher"], scenarios.classroom_for(current_app), now,
                         current.client_ip())
    if not rendering.is_htmx_partial():
        return rendering.redirect_to("demo.presenter")
    return _presenter("scenarios", done=_("Tanıtım baştan başladı: kart sahipleri, kart ve mesajlar ilk "
                                           "hâllerinde."))

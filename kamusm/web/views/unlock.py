"""Kilit Çözme: the page, its states from what the helper answered, pairing, and the seal for the helper."""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, redirect, request, session, url_for
from flask_babel import gettext as _

from kamusm import audit, auth, helper_dist, pairing, sealing, storage, vault
from kamusm.errors import SmsFailed, ValidationError
from kamusm.helper.service import DEFAULT_PORT as DEFAULT_HELPER_PORT
from kamusm.pinpuk import puk_is_shown
from kamusm.policy import check_new_pin
from kamusm.unlock import (
    MESSAGES,
    OPERATIONS,
    OUTCOMES,
    PIN_OPERATIONS_PER_DAY,
    SEALS_PER_DAY,
    HelperFacts,
    card_problem_message,
    holder_card,
    holder_system,
    install_steps,
    messages,
    outcome_message,
    pairing_notice,
    read_facts,
    screen_state,
    uses_this_today,
)
from kamusm.web import current, guards, notify, rendering, stepup
from kamusm.web.db import get_db
from kamusm.web.extensions import limiter
from kamusm.web.forms import OutcomeForm, PairForm, PairStartForm, PinOperationForm, SealForm, StepUpForm

PAIRING_ATTEMPT = "pairing_attempt"


bp = Blueprint("unlock", __name__)


def _origin() -> str:
    """This portal's origin as the browser names it in Origin, which the helper binds a pairing seal to."""
    return f"{request.scheme}://{request.host}".lower()


def _refuse(status: int, message: str, errors: dict | None = None, **extra):
    return jsonify(message=message, errors=errors or {}, **extra), status


def _page_context(db, holder_id: int) -> dict:
    return {"helpers": storage.helper_keys.holder_helper_keys(db, holder_id),
            "helper_url": current_app.config["KAMUSM_HELPER_URL"], "messages": messages()}


def _install_context() -> dict:
    wheel, origin = helper_dist.wheel_info(current_app.config), _origin()
    system = holder_system(request.headers.get("User-Agent", ""), request.headers.get("Sec-CH-UA-Platform", ""))
    steps = []
    if wheel:
        wheel_url = url_for("helper_dist.wheel", filename=wheel["filename"], _external=True)
        helper_port = urlsplit(current_app.config["KAMUSM_HELPER_URL"]).port or DEFAULT_HELPER_PORT
        steps = install_steps(wheel_url, wheel["sha256"], origin, system, helper_port)
    return {"wheel": wheel, "origin": origin, "steps": steps}


def _state_screen(state: str, status: int = 200, **context):
    db = get_db()
    return rendering.render_screen("unlock", state, status, **_page_context(db, session["holder_id"]), **context)


@bp.get("/unlock")
@guards.require_stage(auth.STAGE_DONE)
def unlock():
    return _state_screen("checking")


@bp.get("/unlock/state")
@limiter.limit("60 per minute")
@guards.require_stage(auth.STAGE_DONE)
def state():
    """The screen for what the page says the helper answered (reads only)."""
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    try:
        facts = read_facts(request.args)
    except ValidationError as exc:
        return _state_screen("card_problem", 400, message=str(exc), facts=HelperFacts())
    pinned = pairing.pinned_key(db, holder_id, facts.helper_key)
    waiting = pairing.pending(db, holder_id, session.get(PAIRING_ATTEMPT, ""), facts.helper_key, now)
    card = holder_card(db, holder_id, facts.serial)
    name = screen_state(facts, pinned is not None, waiting is not None, card is not None)
    context = {"facts": facts, "stepup_fresh": stepup.is_recent("unlock"),
               "paired": request.args.get("notice") == "paired"}
    if name == "unreachable":
        context.update(_install_context())
    if name in ("pair", "pair_code"):
        context["fingerprint"] = pairing.key_fingerprint(facts.helper_key)
    if name == "card_problem":
        context["message"] = card_problem_message(facts.error)
    if name == "forms":
        context["card"] = {**card, "online": not puk_is_shown(card["cert_issued"])}
    return _state_screen(name, **context)


@bp.post("/unlock/stepup/send")
@limiter.limit("10 per minute")
@guards.require_stage(auth.STAGE_DONE)
def send_stepup_code():
    """Offer the methods that confirm pairing and the online unlock (an SMS code is sent at once to a holder
    with no other method, or on `send_sms`), and show where to enter it."""
    offered = stepup.offer(current.holder(), "unlock", "send_sms" in StepUpForm().sent())
    return _state_screen("stepup", offered.status, message=offered.message, choices=offered.choices)


@bp.post("/unlock/stepup")
@limiter.limit("10 per minute")
@guards.require_stage(auth.STAGE_DONE)
def confirm_stepup_code():
    form = StepUpForm().sent()
    if not stepup.carries_factor(form):
        form = {**form, "code": ""}  # an empty submission is a code left blank, not a request for a new one
    refused = stepup.confirm_factor("unlock", form)
    if refused:
        return _state_screen("stepup", refused.status, message=refused.message, choices=refused.choices)
    return jsonify(ok=True)


@bp.post("/unlock/pair/start")
@limiter.limit("10 per minute")
@guards.require_stage(auth.STAGE_DONE)
def start_pairing():
    """Make a pairing code and answer it sealed for the helper key the page reports (JSON)."""
    form = PairStartForm().sent()
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    helper_key = form.get("helper_key", "")
    if not stepup.is_recent("unlock"):
        audit.record(db, now, "unlock.pair_start", "stepup", holder_id, current.client_ip())
        return _refuse(401, _("Kart yardımcısını eşleştirmek için SMS onay kodu gerekir."), stepup=True)
    attempt = secrets.token_urlsafe(16)
    try:
        sealed = pairing.begin(db, current_app.secret_key, holder_id, attempt, helper_key,
                               form.get("helper_name", ""), _origin(), now)
    except sealing.SealError:
        audit.record(db, now, "unlock.pair_start", "bad_key", holder_id, current.client_ip())
        return _refuse(422, str(MESSAGES["bad_helper_key"]))
    session[PAIRING_ATTEMPT] = attempt
    audit.record(db, now, "unlock.pair_start", "sent", holder_id, current.client_ip(),
                 fingerprint=pairing.key_fingerprint(helper_key))
    return jsonify(sealed_code=sealed)


@bp.post("/unlock/pair")
@limiter.limit("10 per minute")
@guards.require_stage(auth.STAGE_DONE)
def pair():
    """Pin the helper key the page reports, when pairing_code is the code that helper showed."""
    form = PairForm().sent()
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    helper_key = form.get("helper_key", "")
    facts = HelperFacts(helper_key=helper_key)
    try:
        fingerprint = pairing.key_fingerprint(helper_key)
    except sealing.SealError:
        audit.record(db, now, "unlock.pair", "bad_key", holder_id, current.client_ip())
        return _state_screen("card_problem", 400, facts=facts,
                             message=str(MESSAGES["bad_helper_key"]))
    try:
        code = pairing.check_code_input(form.get("pairing_code", ""))
        pinned = pairing.finish(db, current_app.secret_key, holder_id, session.get(PAIRING_ATTEMPT, ""),
                                helper_key, code, now)
    except ValidationError as exc:
        audit.record(db, now, "unlock.pair", "bad_input", holder_id, current.client_ip(), fingerprint=fingerprint)
        return _state_screen("pair_code", 422, facts=facts, fingerprint=fingerprint, errors={"pairing_code": str(exc)})
    except pairing.PairingGone as exc:
        session.pop(PAIRING_ATTEMPT, None)
        audit.record(db, now, "unlock.pair", "gone", holder_id, current.client_ip(), fingerprint=fingerprint)
        return _state_screen("pair", 422, facts=facts, fingerprint=fingerprint, message=str(exc))
    except pairing.PairingFailed as exc:
        audit.record(db, now, "unlock.pair", "wrong_code", holder_id, current.client_ip(), fingerprint=fingerprint)
        return _state_screen("pair_code", 422, facts=facts, fingerprint=fingerprint,
                             errors={"pairing_code": str(exc)}, tries_left=exc.tries_left)
    session.pop(PAIRING_ATTEMPT, None)
    audit.record(db, now, "unlock.pair", "ok", holder_id, current.client_ip(), fingerprint=fingerprint,
                 helper_key_id=pinned["id"])
    _send_pairing_notice(db, holder_id, fingerprint, now)
    return jsonify(ok=True, fingerprint=fingerprint)


def _send_pairing_notice(db, holder_id: int, fingerprint: str, now: float) -> None:
    """Tell the holder's phone about the new helper; a failing gateway leaves the pairing standing, audited."""
    holder = storage.holders.get_holder(db, holder_id)
    try:
        current.sms_sender().send(holder["phone"], pairing_notice(fingerprint))
    except SmsFailed as exc:
        audit.record(db, now, "unlock.pair_notice", "gateway_failed", holder_id, current.client_ip(), reason=str(exc))
        return
    audit.record(db, now, "unlock.pair_notice", "sent", holder_id, current.client_ip())


@bp.post("/unlock/helpers/<rowid:key_id>/delete")
@limiter.limit("10 per minute")
@guards.require_stage(auth.STAGE_DONE)
def remove_helper(key_id: int):
    """Unpin one of the holder's helpers: no seal goes to it again until it is paired anew."""
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    with storage.write(db):
        removed = storage.helper_keys.delete_helper_key(db, holder_id, key_id)
        if removed is not None:
            audit.record(db, now, "unlock.helper_removed", "ok", holder_id, current.client_ip(),
                         fingerprint=removed["fingerprint"])
    if removed is None:
        return _state_screen("checking", 404, message=_("Bu kart yardımcısı hesabınızda kayıtlı değil."))
    return redirect(url_for("unlock.unlock"), code=303)


@bp.post("/unlock")
@limiter.limit("10 per minute;30 per day")
@guards.require_stage(auth.STAGE_DONE)
def seal_for_helper():
    """Check the new PIN, the code, the helper and the card, then answer the PUK sealed for the helper (JSON)."""
    form = SealForm().sent()
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    try:
        check_new_pin(form.get("new_pin", ""), form.get("new_pin_confirm", ""))
    except ValidationError as exc:
        return _refuse(422, str(exc), {exc.field: str(exc)})
    if not stepup.is_recent("unlock"):
        audit.record(db, now, "unlock.seal", "stepup", holder_id, current.client_ip())
        return _refuse(401, _("Kilidi çözmek için SMS onay kodu gerekir."), stepup=True)
    helper_key = form.get("helper_key", "")
    try:
        sealing.decode_public_key(helper_key)
    except sealing.SealError:
        audit.record(db, now, "unlock.seal", "bad_key", holder_id, current.client_ip())
        return _refuse(422, str(MESSAGES["bad_helper_key"]))
    pinned = pairing.pinned_key(db, holder_id, helper_key)
    if pinned is None:
        audit.record(db, now, "unlock.seal", "unpaired_helper", holder_id, current.client_ip())
        return _refuse(409, _("Bu kart yardımcısı hesabınızla eşleştirilmemiş. Lütfen önce eşleştiriniz."), pair=True)
    card = holder_card(db, holder_id, form.get("card_serial", ""))
    if card is None:
        audit.record(db, now, "unlock.seal", "foreign_card", holder_id, current.client_ip())
        return _refuse(403, str(MESSAGES["foreign_card"]))
    if puk_is_shown(card["cert_issued"]):
        return _refuse(409, _("2010 ve öncesinde üretilen kartların kilidi PUK ile kart aracı üzerinden çözülür."))
    # The cap is counted and spent inside one write transaction, so parallel requests cannot all
    # read the same count and each make a seal.
    with storage.write(db):
        if uses_this_today(db, holder_id, "unlock.seal", "ok", now) >= SEALS_PER_DAY:
            audit.record(db, now, "unlock.seal", "daily_cap", holder_id, current.client_ip())
            return _refuse(429, _("Bugün için kilit çözme deneme sınırına ulaştınız. Lütfen yarın tekrar deneyiniz."))
        puk = vault.read_secrets(db, vault.app_keyring(), holder_id, card["serial"]).get("puk")
        if not puk:
            return _refuse(409, _("PUK bilginiz silindiği için kilit çözme çevrimiçi yapılamaz. "
                                  "Lütfen kurumunuzla görüşünüz."))
        sealed, seal_id = sealing.seal_puk(helper_key, card["serial"], puk, now)
        storage.helper_keys.touch_helper_key(db, pinned["id"], now)
        audit.record(db, now, "unlock.seal", "ok", holder_id, current.client_ip(), serial=card["serial"],
                     seal_id=seal_id, fingerprint=pinned["fingerprint"])
    notify.alert_vault_use(holder_id, "unlock.seal", _("PUK bilginiz kilit çözme için kart yardımcısına şifreli "
                                                      "gönderildi"))
    return jsonify(sealed_puk=sealed, seal_id=seal_id)


@bp.post("/unlock/op")
@limiter.limit("20 per minute")
@guards.require_stage(auth.STAGE_DONE)
def permit_pin_operation():
    form = PinOperationForm().sent()
    """Count and audit what the page is about to ask the helper for without a seal:
    a PIN check, a PIN change, or an unblock with a PUK the holder types (2010-and-earlier cards)."""
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    operation = form.get("op", "")
    if operation not in OPERATIONS:
        return _refuse(400, str(MESSAGES["unknown_operation"]))
    if operation in ("change", "unblock"):
        try:
            check_new_pin(form.get("new_pin", ""), form.get("new_pin_confirm", ""))
        except ValidationError as exc:
            return _refuse(422, str(exc), {exc.field: str(exc)})
    with storage.write(db):  # counted and spent together, as the seals are
        if uses_this_today(db, holder_id, "unlock.pin_op", "permitted", now) >= PIN_OPERATIONS_PER_DAY:
            audit.record(db, now, "unlock.pin_op", "daily_cap", holder_id, current.client_ip(), op=operation)
            return _refuse(429, _("Bugün için PIN işlemi sınırına ulaştınız. Lütfen yarın tekrar deneyiniz."))
        audit.record(db, now, "unlock.pin_op", "permitted", holder_id, current.client_ip(), op=operation)
    return jsonify(ok=True)


@bp.post("/unlock/result")
@limiter.limit("30 per minute")
@guards.require_stage(auth.STAGE_DONE)
def report_result():
    """Record what the helper answered; a successful unblock or change makes the stored PIN stale."""
    form = OutcomeForm().sent()
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    operation, outcome = form.get("op", ""), form.get("outcome", "")
    if operation not in OPERATIONS or outcome not in OUTCOMES:
        return _refuse(400, str(MESSAGES["unknown_operation"]))
    card = holder_card(db, holder_id, form.get("card_serial", ""))
    with storage.write(db):  # the report and the stale-PIN mark land together
        audit.record(db, now, f"unlock.{operation}", outcome, holder_id, current.client_ip(),
                     serial=card["serial"] if card else None, reported_by="browser")
        if outcome == "ok" and operation in ("change", "unblock") and card is not None:
            storage.cards.mark_pin_replaced(db, card["serial"], now)
    return jsonify(message=outcome_message(operation, outcome))

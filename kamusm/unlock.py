"""Kilit Çözme: unblock the card's PIN with the vaulted PUK, through the holder's local helper.

The browser page (static/js/unlock.js) talks to two parties: the local helper on
127.0.0.1, which holds the card, and this portal, which holds the PUK. The
portal never hands the PUK to the browser in clear: it seals it to the public
key the helper reported, bound to the card serial the helper read, for
kamusm.sealing.SEAL_TTL_SECONDS and one use. The new PIN passes through the
portal only to check its rules; it is never stored or logged.

Security assumptions:
- The card serial comes from the browser and is checked against the holder's
  own cards; a serial of someone else's card gets no seal.
- Seals are capped per holder per day (the vault's PUK is the scarce thing:
  three wrong PUKs block a card for good); PIN checks and changes the page
  asks for are capped too, as is every route by flask-limiter.
- What the browser reports back (the outcome) is recorded as reported; it can
  mark a stored PIN stale, never reveal or change a secret.
"""
from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kamusm import audit, auth, sealing, store, vault, web
from kamusm.db import get_db
from kamusm.errors import ValidationError
from kamusm.extensions import limiter
from kamusm.pinpuk import puk_is_shown

SEALS_PER_DAY = 3
PIN_OPERATIONS_PER_DAY = 10
DAY_SECONDS = 24 * 3600
PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 8
OPERATIONS = ("verify", "change", "unblock")
OUTCOMES = ("ok", "no_reader", "no_card", "card_removed", "wrong_pin", "wrong_puk", "pin_blocked", "puk_blocked",
            "bad_request", "forbidden_origin", "busy", "pcsc_unavailable", "unreachable")
_PIN = re.compile(r"[0-9]+", re.ASCII)
_SERIAL = re.compile(r"[A-Za-z0-9]{4,32}", re.ASCII)


# Rules ---------------------------------------------------------------------

def check_new_pin(new_pin: str, confirm: str) -> str:
    """Raise ValidationError (naming the field) unless new_pin is a PIN the card will take and hard to guess."""
    if not new_pin:
        raise ValidationError(_l("Yeni PIN'i giriniz."), "new_pin")
    if not _PIN.fullmatch(new_pin) or not PIN_MIN_DIGITS <= len(new_pin) <= PIN_MAX_DIGITS:
        raise ValidationError(_l("PIN %(low)d-%(high)d rakamdan oluşmalıdır.", low=PIN_MIN_DIGITS, high=PIN_MAX_DIGITS),
                              "new_pin")
    digits = [int(char) for char in new_pin]
    steps = {later - earlier for earlier, later in zip(digits, digits[1:], strict=False)}
    if len(set(digits)) == 1 or steps in ({1}, {-1}):
        raise ValidationError(_l("Tek rakamın tekrarı ya da ardışık rakamlar PIN olamaz."), "new_pin")
    if new_pin != confirm:
        raise ValidationError(_l("İki PIN birbirinin aynı değil."), "new_pin_confirm")
    return new_pin


def holder_card(db, holder_id: int, serial: str) -> dict | None:
    """The card with this serial if it is the holder's own, else None."""
    if not _SERIAL.fullmatch(serial or ""):
        return None
    card = store.find_card(db, serial)
    if card is None or card["holder_id"] != holder_id:
        return None
    return card


def uses_this_today(db, holder_id: int, event: str, outcome: str, now: float) -> int:
    """How often today the event had the outcome that spends the cap (refusals spend nothing)."""
    return store.count_audit_events(db, holder_id, event, outcome, now - DAY_SECONDS)


# Views ---------------------------------------------------------------------

bp = Blueprint("unlock", __name__)


def _now() -> float:
    return current_app.config["CLOCK"]()


def _ip() -> str:
    return request.remote_addr or ""


def _refuse(status: int, message: str, errors: dict | None = None):
    return jsonify(message=message, errors=errors or {}), status


@bp.get("/unlock")
@auth.require_stage(auth.STAGE_DONE)
def unlock():
    cards = [{**card, "online": not puk_is_shown(card["cert_issued"])}
             for card in store.holder_cards(get_db(), session["holder_id"])]
    return web.render_screen("unlock", "page", cards=cards, helper_url=current_app.config["KAMUSM_HELPER_URL"])


@bp.post("/unlock")
@limiter.limit("10 per minute;30 per day")
@auth.require_stage(auth.STAGE_DONE)
def seal_for_helper():
    """Check the new PIN and the card, then answer the PUK sealed for the helper (JSON)."""
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    try:
        check_new_pin(request.form.get("new_pin", ""), request.form.get("new_pin_confirm", ""))
    except ValidationError as exc:
        return _refuse(422, str(exc), {exc.field: str(exc)})
    card = holder_card(db, holder_id, request.form.get("card_serial", ""))
    if card is None:
        audit.record(db, now, "unlock.seal", "foreign_card", holder_id, _ip())
        return _refuse(403, _("Okuyucudaki kart size ait değil. Lütfen kendi kartınızı takınız."))
    if puk_is_shown(card["cert_issued"]):
        return _refuse(409, _("2010 ve öncesinde üretilen kartların kilidi PUK ile kart aracı üzerinden çözülür."))
    if uses_this_today(db, holder_id, "unlock.seal", "ok", now) >= SEALS_PER_DAY:
        audit.record(db, now, "unlock.seal", "daily_cap", holder_id, _ip())
        return _refuse(429, _("Bugün için kilit çözme deneme sınırına ulaştınız. Lütfen yarın tekrar deneyiniz."))
    puk = vault.read_secrets(db, vault.app_keyring(), holder_id, card["serial"]).get("puk")
    if not puk:
        return _refuse(409, _("PUK bilginiz silindiği için kilit çözme çevrimiçi yapılamaz. "
                              "Lütfen kurumunuzla görüşünüz."))
    try:
        sealed, seal_id = sealing.seal_puk(request.form.get("helper_key", ""), card["serial"], puk, now)
    except sealing.SealError:
        return _refuse(422, _("Kart yardımcısının anahtarı geçersiz. Lütfen yardımcıyı yeniden başlatınız."))
    audit.record(db, now, "unlock.seal", "ok", holder_id, _ip(), serial=card["serial"], seal_id=seal_id)
    return jsonify(sealed_puk=sealed, seal_id=seal_id)


@bp.post("/unlock/op")
@limiter.limit("20 per minute")
@auth.require_stage(auth.STAGE_DONE)
def permit_pin_operation():
    """Count and audit what the page is about to ask the helper for without a seal:
    a PIN check, a PIN change, or an unblock with a PUK the holder types (2010-and-earlier cards)."""
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    operation = request.form.get("op", "")
    if operation not in OPERATIONS:
        return _refuse(400, _("Bilinmeyen işlem."))
    if operation in ("change", "unblock"):
        try:
            check_new_pin(request.form.get("new_pin", ""), request.form.get("new_pin_confirm", ""))
        except ValidationError as exc:
            return _refuse(422, str(exc), {exc.field: str(exc)})
    if uses_this_today(db, holder_id, "unlock.pin_op", "permitted", now) >= PIN_OPERATIONS_PER_DAY:
        audit.record(db, now, "unlock.pin_op", "daily_cap", holder_id, _ip(), op=operation)
        return _refuse(429, _("Bugün için PIN işlemi sınırına ulaştınız. Lütfen yarın tekrar deneyiniz."))
    audit.record(db, now, "unlock.pin_op", "permitted", holder_id, _ip(), op=operation)
    return jsonify(ok=True)


@bp.post("/unlock/result")
@limiter.limit("30 per minute")
@auth.require_stage(auth.STAGE_DONE)
def report_result():
    """Record what the helper answered; a successful unblock or change makes the stored PIN stale."""
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    operation, outcome = request.form.get("op", ""), request.form.get("outcome", "")
    if operation not in OPERATIONS or outcome not in OUTCOMES:
        return _refuse(400, _("Bilinmeyen işlem."))
    card = holder_card(db, holder_id, request.form.get("card_serial", ""))
    with store.write(db):  # the report and the stale-PIN mark land together
        audit.record(db, now, f"unlock.{operation}", outcome, holder_id, _ip(),
                     serial=card["serial"] if card else None, reported_by="browser")
        if outcome == "ok" and operation in ("change", "unblock") and card is not None:
            store.mark_pin_replaced(db, card["serial"], now)
    return jsonify(message=outcome_message(operation, outcome))


def outcome_message(operation: str, outcome: str) -> str:
    if outcome == "ok":
        return {"verify": _("PIN doğru."), "change": _("PIN'iniz değiştirildi."),
                "unblock": _("Kartınızın kilidi çözüldü; yeni PIN'iniz geçerli.")}[operation]
    return {
        "no_reader": _("Kart okuyucu bulunamadı. Okuyucuyu takıp tekrar deneyiniz."),
        "no_card": _("Okuyucuda kart yok. Kartınızı takıp tekrar deneyiniz."),
        "card_removed": _("Kart işlem sırasında çıkarıldı. Kartı takıp tekrar deneyiniz."),
        "wrong_pin": _("PIN hatalı."),
        "wrong_puk": _("PUK kartta kabul edilmedi. Lütfen kurumunuzla görüşünüz."),
        "pin_blocked": _("PIN bloke. Kilit Çözme ile yeni PIN belirleyebilirsiniz."),
        "puk_blocked": _("PUK kalıcı olarak bloke; yeni sertifika gerekir."),
        "busy": _("Kart yardımcısı başka bir işlemle meşgul. Biraz sonra tekrar deneyiniz."),
        "pcsc_unavailable": _("Bilgisayarınızdaki akıllı kart hizmeti çalışmıyor."),
        "unreachable": _("Kart yardımcısına ulaşılamadı."),
    }.get(outcome, _("İşlem tamamlanamadı."))

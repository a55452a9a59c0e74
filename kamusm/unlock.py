"""Kilit Çözme: unblock the card's PIN with the vaulted PUK, through the holder's local helper.

The browser page (static/js/unlock.js) talks to two parties: the local helper on
127.0.0.1, which holds the card, and this portal, which holds the PUK. The page
reports what the helper said (its key, the card's serial and counters, or its
error) and the portal answers the screen state for it (`screen_state`): helper
unreachable, helper not paired, pairing code asked, card problem, card of
another holder, card blocked for good, or the forms.

The portal never hands the PUK to the browser in clear: it seals it to a helper
key pinned to the holder by pairing (kamusm.pairing), bound to the card serial
the helper read, for kamusm.sealing.SEAL_TTL_SECONDS and one use, and only after
an SMS code confirmed in the last 5 minutes. The new PIN passes through the
portal only to check its rules; it is never stored or logged.

Security assumptions:
- Everything the page reports is untrusted: it only chooses which screen to
  show. The seal checks for itself that the key is pinned, the code is fresh
  and the serial is one of the holder's own cards.
- Seals are capped per holder per day (the vault's PUK is the scarce thing:
  three wrong PUKs block a card for good); PIN checks and changes the page
  asks for are capped too, as is every route by flask-limiter.
- What the browser reports back (the outcome) is recorded as reported; it can
  mark a stored PIN stale, never reveal or change a secret.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kamusm import audit, auth, helper_dist, pairing, sealing, sms, stepup, storage, vault, web
from kamusm.db import get_db
from kamusm.errors import CodeRejected, SmsFailed, ValidationError
from kamusm.extensions import limiter
from kamusm.helper.service import DEFAULT_PORT as DEFAULT_HELPER_PORT
from kamusm.pinpuk import puk_is_shown

SEALS_PER_DAY = 3
PIN_OPERATIONS_PER_DAY = 10
DAY_SECONDS = 24 * 3600
PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 8
MAX_TRIES_REPORTED = 15
OPERATIONS = ("verify", "change", "unblock")
OUTCOMES = ("ok", "no_reader", "no_card", "card_removed", "wrong_pin", "wrong_puk", "pin_blocked", "puk_blocked",
            "bad_request", "forbidden_origin", "busy", "pcsc_unavailable", "unreachable")
# What the helper may answer instead of a card; "unreachable" is the page's own word for no answer at all.
HELPER_DOWN = ("unreachable", "forbidden_origin")
CARD_PROBLEMS = ("no_reader", "no_card", "card_removed", "busy", "pcsc_unavailable", "bad_request")
PAIRING_ATTEMPT = "pairing_attempt"
_PIN = re.compile(r"[0-9]+", re.ASCII)
_SERIAL = re.compile(r"[A-Za-z0-9]{4,32}", re.ASCII)


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
    card = storage.cards.find_card(db, serial)
    if card is None or card["holder_id"] != holder_id:
        return None
    return card


def uses_this_today(db, holder_id: int, event: str, outcome: str, now: float) -> int:
    """How often today the event had the outcome that spends the cap (refusals spend nothing)."""
    return storage.audit_log.count_audit_events(db, holder_id, event, outcome, now - DAY_SECONDS)


@dataclass(frozen=True)
class HelperFacts:
    """What the page says the helper answered: its key and name, then the card or an error name."""

    error: str = ""
    helper_key: str = ""
    helper_name: str = ""
    reader: str = ""
    serial: str = ""
    pin_tries_left: int | None = None
    puk_tries_left: int | None = None


def _tries(text: str | None) -> int | None:
    if text in (None, ""):
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_TRIES_REPORTED:
        raise ValidationError(_l("Kart yardımcısından gelen bilgi anlaşılamadı. Lütfen sayfayı yenileyiniz."))
    return int(text)


def read_facts(args: Mapping[str, str]) -> HelperFacts:
    """The page's report, checked for shape; ValidationError for anything a helper would not say."""
    not_understood = ValidationError(_l("Kart yardımcısından gelen bilgi anlaşılamadı. Lütfen sayfayı yenileyiniz."))
    error = args.get("error", "")
    if error and error not in OUTCOMES:
        raise not_understood
    helper_key = args.get("helper_key", "")
    if helper_key:
        try:
            sealing.decode_public_key(helper_key)
        except sealing.SealError:
            raise not_understood from None
    elif error not in HELPER_DOWN:
        raise not_understood
    serial = args.get("serial", "")
    if serial and not _SERIAL.fullmatch(serial):
        raise not_understood
    return HelperFacts(error=error, helper_key=helper_key, serial=serial,
                       helper_name=pairing.clean_helper_name(args.get("helper_name", "")),
                       reader=pairing.clean_helper_name(args.get("reader", "")),
                       pin_tries_left=_tries(args.get("pin_tries_left")),
                       puk_tries_left=_tries(args.get("puk_tries_left")))


def screen_state(facts: HelperFacts, pinned: bool, pairing_waits: bool, own_card: bool) -> str:
    """The /unlock state for what the helper reported; the first that applies wins."""
    if facts.error in HELPER_DOWN or not facts.helper_key:
        return "unreachable"
    if not pinned:
        return "pair_code" if pairing_waits else "pair"
    if facts.error or not facts.serial:
        return "card_problem"
    if not own_card:
        return "foreign_card"
    if facts.puk_tries_left == 0:
        return "blocked"
    return "forms"


def holder_system(user_agent: str, platform_hint: str = "") -> str:
    """Which install steps to show first: from Sec-CH-UA-Platform when sent, else the User-Agent."""
    text = f"{platform_hint} {user_agent}".lower()
    if "windows" in text:
        return "windows"
    if "mac" in text and "iphone" not in text and "ipad" not in text:
        return "macos"
    return "debian"


@dataclass(frozen=True)
class InstallSteps:
    system: str
    label: str
    install: str
    start: str


def install_steps(wheel_url: str, sha256: str, origin: str, first: str, port: int = 8765) -> list[InstallSteps]:
    """The install and start commands for each system, the holder's own first.

    The wheel's URL carries its SHA-256 as a #sha256= fragment, which pip checks before installing.
    Debian and Ubuntu take pyscard and cryptography from their own packages (pyscard would otherwise
    be compiled), which pipx's --system-site-packages lets the helper use.
    """
    package = f'"{wheel_url}#sha256={sha256}"'
    options = f"--origin {origin}" if port == DEFAULT_HELPER_PORT else f"--port {port} --origin {origin}"
    steps = [
        InstallSteps("debian", "Debian / Ubuntu",
                     "sudo apt install pcscd pipx python3-pyscard python3-cryptography && "
                     f"pipx install --system-site-packages {package}",
                     f"~/.local/bin/kamusm-helper {options}"),
        InstallSteps("windows", "Windows", f"py -m pip install --user {package}",
                     f"py -m kamusm.helper {options}"),
        InstallSteps("macos", "macOS", f"brew install pipx && pipx install {package}",
                     f"~/.local/bin/kamusm-helper {options}"),
    ]
    return sorted(steps, key=lambda step: step.system != first)


def pairing_notice(fingerprint: str) -> str:
    return _("Kamu SM: hesabınıza yeni bir kart yardımcısı eşleştirildi (anahtar %(fingerprint)s). "
             "Bunu siz yapmadıysanız Kilit Çözme ekranından kaldırıp kurumunuzla görüşünüz.", fingerprint=fingerprint)


bp = Blueprint("unlock", __name__)


def _now() -> float:
    return current_app.config["CLOCK"]()


def _ip() -> str:
    return request.remote_addr or ""


def _origin() -> str:
    """This portal's origin as the browser names it in Origin, which the helper binds a pairing seal to."""
    return f"{request.scheme}://{request.host}".lower()


def _refuse(status: int, message: str, errors: dict | None = None, **extra):
    return jsonify(message=message, errors=errors or {}, **extra), status


def _page_context(db, holder_id: int) -> dict:
    return {"helpers": storage.helper_keys.holder_helper_keys(db, holder_id),
            "helper_url": current_app.config["KAMUSM_HELPER_URL"]}


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
    return web.render_screen("unlock", state, status, **_page_context(db, session["holder_id"]), **context)


@bp.get("/unlock")
@auth.require_stage(auth.STAGE_DONE)
def unlock():
    return _state_screen("checking")


@bp.get("/unlock/state")
@limiter.limit("60 per minute")
@auth.require_stage(auth.STAGE_DONE)
def state():
    """The screen for what the page says the helper answered (reads only)."""
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    try:
        facts = read_facts(request.args)
    except ValidationError as exc:
        return _state_screen("card_problem", 400, message=str(exc), facts=HelperFacts())
    pinned = pairing.pinned_key(db, holder_id, facts.helper_key)
    waiting = pairing.pending(db, holder_id, session.get(PAIRING_ATTEMPT, ""), facts.helper_key, now)
    card = holder_card(db, holder_id, facts.serial)
    name = screen_state(facts, pinned is not None, waiting is not None, card is not None)
    context = {"facts": facts, "stepup_fresh": stepup.is_recent(), "paired": request.args.get("notice") == "paired"}
    if name == "unreachable":
        context.update(_install_context())
    if name in ("pair", "pair_code"):
        context["fingerprint"] = pairing.key_fingerprint(facts.helper_key)
    if name == "forms":
        context["card"] = {**card, "online": not puk_is_shown(card["cert_issued"])}
    return _state_screen(name, **context)


@bp.post("/unlock/stepup/send")
@limiter.limit("10 per minute")
@auth.require_stage(auth.STAGE_DONE)
def send_stepup_code():
    """Send the SMS code that pairing and the online unlock need, and show where to type it."""
    status, problem = stepup.send_code()
    return _state_screen("stepup", status, message=problem)


@bp.post("/unlock/stepup")
@limiter.limit("10 per minute")
@auth.require_stage(auth.STAGE_DONE)
def confirm_stepup_code():
    try:
        stepup.confirm(request.form.get("code", ""))
    except (ValidationError, CodeRejected) as exc:
        audit.record(get_db(), _now(), "stepup.code", "rejected", session["holder_id"], _ip(), action="unlock")
        return _state_screen("stepup", 422, message=str(exc))
    return jsonify(ok=True)


@bp.post("/unlock/pair/start")
@limiter.limit("10 per minute")
@auth.require_stage(auth.STAGE_DONE)
def start_pairing():
    """Make a pairing code and answer it sealed for the helper key the page reports (JSON)."""
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    helper_key = request.form.get("helper_key", "")
    if not stepup.is_recent():
        audit.record(db, now, "unlock.pair_start", "stepup", holder_id, _ip())
        return _refuse(401, _("Kart yardımcısını eşleştirmek için SMS onay kodu gerekir."), stepup=True)
    attempt = secrets.token_urlsafe(16)
    try:
        sealed = pairing.begin(db, current_app.secret_key, holder_id, attempt, helper_key,
                               request.form.get("helper_name", ""), _origin(), now)
    except sealing.SealError:
        audit.record(db, now, "unlock.pair_start", "bad_key", holder_id, _ip())
        return _refuse(422, _("Kart yardımcısının anahtarı geçersiz. Lütfen yardımcıyı yeniden başlatınız."))
    session[PAIRING_ATTEMPT] = attempt
    audit.record(db, now, "unlock.pair_start", "sent", holder_id, _ip(),
                 fingerprint=pairing.key_fingerprint(helper_key))
    return jsonify(sealed_code=sealed)


@bp.post("/unlock/pair")
@limiter.limit("10 per minute")
@auth.require_stage(auth.STAGE_DONE)
def pair():
    """Pin the helper key the page reports, when pairing_code is the code that helper showed."""
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    helper_key = request.form.get("helper_key", "")
    facts = HelperFacts(helper_key=helper_key)
    try:
        fingerprint = pairing.key_fingerprint(helper_key)
    except sealing.SealError:
        audit.record(db, now, "unlock.pair", "bad_key", holder_id, _ip())
        return _state_screen("card_problem", 400, facts=facts,
                             message=_("Kart yardımcısının anahtarı geçersiz. Lütfen yardımcıyı yeniden başlatınız."))
    try:
        code = pairing.check_code_input(request.form.get("pairing_code", ""))
        pinned = pairing.finish(db, current_app.secret_key, holder_id, session.get(PAIRING_ATTEMPT, ""),
                                helper_key, code, now)
    except ValidationError as exc:
        audit.record(db, now, "unlock.pair", "bad_input", holder_id, _ip(), fingerprint=fingerprint)
        return _state_screen("pair_code", 422, facts=facts, fingerprint=fingerprint, errors={"pairing_code": str(exc)})
    except pairing.PairingGone as exc:
        session.pop(PAIRING_ATTEMPT, None)
        audit.record(db, now, "unlock.pair", "gone", holder_id, _ip(), fingerprint=fingerprint)
        return _state_screen("pair", 422, facts=facts, fingerprint=fingerprint, message=str(exc))
    except pairing.PairingFailed as exc:
        audit.record(db, now, "unlock.pair", "wrong_code", holder_id, _ip(), fingerprint=fingerprint)
        return _state_screen("pair_code", 422, facts=facts, fingerprint=fingerprint,
                             errors={"pairing_code": str(exc)}, tries_left=exc.tries_left)
    session.pop(PAIRING_ATTEMPT, None)
    audit.record(db, now, "unlock.pair", "ok", holder_id, _ip(), fingerprint=fingerprint, helper_key_id=pinned["id"])
    _send_pairing_notice(db, holder_id, fingerprint, now)
    return jsonify(ok=True, fingerprint=fingerprint)


def _send_pairing_notice(db, holder_id: int, fingerprint: str, now: float) -> None:
    """Tell the holder's phone about the new helper; a failing gateway leaves the pairing standing, audited."""
    holder = storage.holders.get_holder(db, holder_id)
    try:
        sms.make_backend(current_app.config, get_db, _now).send(holder["phone"], pairing_notice(fingerprint))
    except SmsFailed as exc:
        audit.record(db, now, "unlock.pair_notice", "gateway_failed", holder_id, _ip(), reason=str(exc))
        return
    audit.record(db, now, "unlock.pair_notice", "sent", holder_id, _ip())


@bp.post("/unlock/helpers/<int:key_id>/delete")
@limiter.limit("10 per minute")
@auth.require_stage(auth.STAGE_DONE)
def remove_helper(key_id: int):
    """Unpin one of the holder's helpers: no seal goes to it again until it is paired anew."""
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    with storage.write(db):
        removed = storage.helper_keys.delete_helper_key(db, holder_id, key_id)
        if removed is not None:
            audit.record(db, now, "unlock.helper_removed", "ok", holder_id, _ip(), fingerprint=removed["fingerprint"])
    if removed is None:
        return _state_screen("checking", 404, message=_("Bu kart yardımcısı hesabınızda kayıtlı değil."))
    return redirect(url_for("unlock.unlock"), code=303)


@bp.post("/unlock")
@limiter.limit("10 per minute;30 per day")
@auth.require_stage(auth.STAGE_DONE)
def seal_for_helper():
    """Check the new PIN, the code, the helper and the card, then answer the PUK sealed for the helper (JSON)."""
    db, now, holder_id = get_db(), _now(), session["holder_id"]
    try:
        check_new_pin(request.form.get("new_pin", ""), request.form.get("new_pin_confirm", ""))
    except ValidationError as exc:
        return _refuse(422, str(exc), {exc.field: str(exc)})
    if not stepup.is_recent():
        audit.record(db, now, "unlock.seal", "stepup", holder_id, _ip())
        return _refuse(401, _("Kilidi çözmek için SMS onay kodu gerekir."), stepup=True)
    helper_key = request.form.get("helper_key", "")
    try:
        sealing.decode_public_key(helper_key)
    except sealing.SealError:
        audit.record(db, now, "unlock.seal", "bad_key", holder_id, _ip())
        return _refuse(422, _("Kart yardımcısının anahtarı geçersiz. Lütfen yardımcıyı yeniden başlatınız."))
    pinned = pairing.pinned_key(db, holder_id, helper_key)
    if pinned is None:
        audit.record(db, now, "unlock.seal", "unpaired_helper", holder_id, _ip())
        return _refuse(409, _("Bu kart yardımcısı hesabınızla eşleştirilmemiş. Lütfen önce eşleştiriniz."), pair=True)
    card = holder_card(db, holder_id, request.form.get("card_serial", ""))
    if card is None:
        audit.record(db, now, "unlock.seal", "foreign_card", holder_id, _ip())
        return _refuse(403, _("Okuyucudaki kart size ait değil. Lütfen kendi kartınızı takınız."))
    if puk_is_shown(card["cert_issued"]):
        return _refuse(409, _("2010 ve öncesinde üretilen kartların kilidi PUK ile kart aracı üzerinden çözülür."))
    # The cap is counted and spent inside one write transaction, so parallel requests cannot all
    # read the same count and each make a seal.
    with storage.write(db):
        if uses_this_today(db, holder_id, "unlock.seal", "ok", now) >= SEALS_PER_DAY:
            audit.record(db, now, "unlock.seal", "daily_cap", holder_id, _ip())
            return _refuse(429, _("Bugün için kilit çözme deneme sınırına ulaştınız. Lütfen yarın tekrar deneyiniz."))
        puk = vault.read_secrets(db, vault.app_keyring(), holder_id, card["serial"]).get("puk")
        if not puk:
            return _refuse(409, _("PUK bilginiz silindiği için kilit çözme çevrimiçi yapılamaz. "
                                  "Lütfen kurumunuzla görüşünüz."))
        sealed, seal_id = sealing.seal_puk(helper_key, card["serial"], puk, now)
        storage.helper_keys.touch_helper_key(db, pinned["id"], now)
        audit.record(db, now, "unlock.seal", "ok", holder_id, _ip(), serial=card["serial"], seal_id=seal_id,
                     fingerprint=pinned["fingerprint"])
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
    with storage.write(db):  # counted and spent together, as the seals are
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
    with storage.write(db):  # the report and the stale-PIN mark land together
        audit.record(db, now, f"unlock.{operation}", outcome, holder_id, _ip(),
                     serial=card["serial"] if card else None, reported_by="browser")
        if outcome == "ok" and operation in ("change", "unblock") and card is not None:
            storage.cards.mark_pin_replaced(db, card["serial"], now)
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

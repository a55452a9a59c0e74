"""Güvenlik Yöntemlerim: the holder's passkeys, authenticator app, recovery codes, SMS and lost-card code.

Every change needs a factor confirmed in the last 5 minutes (and, in the 72 hours after a phone change,
not SMS alone: a new number must not enrol a factor that then outranks it). A holder is told of every
change by SMS and mail. SMS can be turned off only while a passkey or an app remains; removing the last
of them turns SMS back on, so no holder is left without a way in.
"""
from __future__ import annotations

import base64

from flask import Blueprint, current_app, session
from flask_babel import gettext as _

from kamusm import audit, auth, factors, lostcard, passkeys, recovery, storage, totp, vault
from kamusm.errors import KamusmError
from kamusm.web import current, guards, notify, rendering, stepup
from kamusm.web.db import get_db
from kamusm.web.extensions import limiter
from kamusm.web.forms import SecurityForm
from kamusm.web.views.lost import code_sheet

bp = Blueprint("security", __name__)

ACTION = "security"
PENDING_SEED = "totp_pending_seed"


def _screen(state: str = "list", status: int = 200, message: str | None = None, notice: str | None = None,
            **context):
    db, now, holder = get_db(), current.now(), current.holder()
    fresh = stepup.is_recent(ACTION)
    rp = current.relying_party()
    rows = storage.factors.holder_passkeys(db, holder["id"])
    register_options = None
    if state == "list" and fresh and rp.usable:
        register_options = passkeys.registration_options(db, rp, _user_handle_key(), holder, holder["name"], now)
    return rendering.render_screen(
        "security", state, status=status, message=message, notice=notice, fresh=fresh, passkeys=rows,
        app=storage.factors.get_totp(db, holder["id"]),
        recovery_counts=storage.factors.recovery_code_counts(db, holder["id"]),
        methods=factors.methods(db, holder), register_options=register_options, rp=rp,
        lost_code_state=lostcard.state(holder), lost_code_issued_at=holder["lost_code_issued_at"], **context)


def _user_handle_key() -> bytes:
    key = current_app.secret_key
    return key if isinstance(key, bytes) else key.encode()


@bp.get("/security")
@guards.require_stage(auth.STAGE_DONE)
def security():
    return _screen()


@bp.post("/security")
@limiter.limit("20 per minute")
@guards.require_stage(auth.STAGE_DONE)
def change():
    form = SecurityForm().sent()
    action = form.get("action", "")
    if action not in HANDLERS:
        return _screen(status=422, message=_("Bilinmeyen işlem."))
    needed = stepup.demand_fresh_code(ACTION, form)
    if needed:
        return _screen("stepup", needed.status, needed.message, choices=needed.choices)
    if action == "stepup":
        return _screen(notice=_("Kimliğiniz doğrulandı. Şimdi güvenlik yöntemlerinizi değiştirebilirsiniz."))
    try:
        return HANDLERS[action](form)
    except KamusmError as exc:
        audit.record(get_db(), current.now(), f"security.{action}", "rejected", session["holder_id"],
                     current.client_ip(), problem=type(exc).__name__)
        if action == "confirm_totp":
            return _totp_screen(exc.status, str(exc))
        return _screen(status=exc.status, message=str(exc))


def _done(event: str, notice: str, **detail):
    """Audit a change, tell the holder, show the list."""
    _record_change(event, notice, **detail)
    return _screen(notice=notice)


def _record_change(event: str, notice: str, **detail) -> None:
    db, now, holder = get_db(), current.now(), current.holder()
    audit.record(db, now, event, "ok", holder["id"], current.client_ip(), **detail)
    text = _("Kamu SM bireysel işlemler: güvenlik yöntemleriniz değiştirildi (%(what)s). Bunu siz yapmadıysanız "
             "hemen kurumunuzla görüşünüz.", what=notice)
    notify.tell_holder(holder, event + "_notice", text, _("Güvenlik yöntemleriniz değiştirildi"), text)


def _add_passkey(form: dict):
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    count = len(storage.factors.holder_passkeys(db, holder_id))
    name = passkeys.check_name(form.get("name", ""), _("Geçiş anahtarı %(n)d", n=count + 1))
    row = passkeys.register(db, current.relying_party(), holder_id, form.get("new_credential", ""), name, now)
    return _done("security.passkey_added", _("Geçiş anahtarı eklendi: %(name)s", name=row["name"]), passkey=row["id"])


def _remove_passkey(form: dict):
    db, holder_id = get_db(), session["holder_id"]
    try:
        passkey_id = int(form.get("passkey", ""))
    except ValueError:
        passkey_id = 0
    row = storage.factors.delete_passkey(db, holder_id, passkey_id)
    if row is None:
        return _screen(status=404, message=_("Bu geçiş anahtarı hesabınızda kayıtlı değil."))
    _keep_a_way_in()
    return _done("security.passkey_removed", _("Geçiş anahtarı kaldırıldı: %(name)s", name=row["name"]),
                 passkey=row["id"])


def _keep_a_way_in() -> None:
    """With the last passkey or app gone, SMS is on again: a holder never ends with no factor."""
    db, holder = get_db(), current.holder()
    if holder["sms_disabled"] and not factors.methods(db, holder).strong:
        storage.holders.set_sms_disabled(db, holder["id"], False)
        audit.record(db, current.now(), "security.sms_on", "ok", holder["id"], current.client_ip(),
                     reason="last_factor_removed")


def _start_totp(form: dict):
    db, holder_id = get_db(), session["holder_id"]
    if storage.factors.get_totp(db, holder_id) is not None:
        return _screen(status=409, message=_("Kayıtlı bir doğrulama uygulamanız zaten var; önce onu kaldırınız."))
    keyring = vault.app_keyring()
    session[PENDING_SEED] = [keyring.current_id, base64.b64encode(totp.seal_seed(keyring, holder_id, totp.new_seed()))
                             .decode("ascii")]
    return _totp_screen()


def _pending_seed() -> str | None:
    kept = session.get(PENDING_SEED)
    if not kept:
        return None
    return totp.open_seed(vault.app_keyring(), session["holder_id"], base64.b64decode(kept[1]), kept[0])


def _totp_screen(status: int = 200, message: str | None = None):
    seed = _pending_seed()
    if seed is None:
        return _screen(status=409, message=_("Önce \"Doğrulama uygulaması ekle\" düğmesine basınız."))
    uri = totp.provisioning_uri(seed, current.holder()["name"], current.relying_party().name or totp.ISSUER)
    return _screen("totp", status, message, qr_svg=totp.qr_svg(uri, _("Doğrulama uygulaması için QR kodu")),
                   seed=totp.grouped_seed(seed))


def _confirm_totp(form: dict):
    seed = _pending_seed()
    if seed is None:
        return _totp_screen()
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    name = passkeys.check_name(form.get("name", ""), _("Doğrulama uygulaması"))
    totp.enrol(db, vault.app_keyring(), holder_id, seed, form.get("new_totp_code", ""), name, now)
    session.pop(PENDING_SEED, None)
    return _done("security.totp_added", _("Doğrulama uygulaması eklendi: %(name)s", name=name))


def _remove_totp(form: dict):
    if not storage.factors.delete_totp(get_db(), session["holder_id"]):
        return _screen(status=404, message=_("Kayıtlı bir doğrulama uygulamanız yok."))
    _keep_a_way_in()
    return _done("security.totp_removed", _("Doğrulama uygulaması kaldırıldı"))


def _new_recovery_codes(form: dict):
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    codes = recovery.issue(db, holder_id, now)
    _record_change("security.recovery_codes", _("Yeni kurtarma kodları oluşturuldu"), count=len(codes))
    return _screen("recovery_codes", codes=codes)


def _new_lost_code(form: dict):
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    code = lostcard.issue(db, holder_id, now, current.client_ip())
    _record_change("security.lost_code", _("Yeni kayıp kart kodu oluşturuldu"))
    return _screen("lost_code", **code_sheet(code))


def _sms_off(form: dict):
    db, holder = get_db(), current.holder()
    if not factors.methods(db, holder).strong:
        return _screen(status=409, message=_("SMS'i kapatmak için önce bir geçiş anahtarı ya da doğrulama uygulaması "
                                             "ekleyiniz."))
    storage.holders.set_sms_disabled(db, holder["id"], True)
    return _done("security.sms_off", _("SMS ile onay kapatıldı"))


def _sms_on(form: dict):
    storage.holders.set_sms_disabled(get_db(), session["holder_id"], False)
    return _done("security.sms_on", _("SMS ile onay açıldı"))


HANDLERS = {"stepup": None, "add_passkey": _add_passkey, "remove_passkey": _remove_passkey, "start_totp": _start_totp,
            "confirm_totp": _confirm_totp, "remove_totp": _remove_totp, "new_recovery_codes": _new_recovery_codes,
            "new_lost_code": _new_lost_code, "sms_off": _sms_off, "sms_on": _sms_on}

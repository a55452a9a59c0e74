"""Kurum Yönetim Konsolu (/admin): operators log in, find holders, lock and unlock them, read the audit log.

The area's session is its own (kamusm.web.sessions: another cookie, 15 minutes idle); the operator's
row is read on every request, so a role change or a disabled account takes effect at once. What a role
may do is kamusm.operators.PERMISSIONS; every action is audited with the operator's name.
"""
from __future__ import annotations

import base64
import csv
import io
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import Callable

from flask import Blueprint, Response, abort, current_app, g, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kamusm import audit, auth, certificates, mail, operators, pinpuk, renewals, reset, storage, totp, vault
from kamusm.certificates import CertificateNotFound, TransitionRefused
from kamusm.contact import email_domain_allowed, mask_email
from kamusm.errors import LoginFailed, ValidationError
from kamusm.identity import mask_identity
from kamusm.web import current, receipting, rendering
from kamusm.web.db import get_db
from kamusm.web.extensions import limiter
from kamusm.web.forms import (
    AdminAuditForm,
    AdminEnrolForm,
    AdminLoginForm,
    AdminRenewalDoneForm,
    AdminSearchForm,
    AdminSuspendForm,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50
HOLDER_LOCK_SECONDS = 100 * 365 * 24 * 3600
PENDING_SEED = "operator_pending_seed"
NOTE_MIN, NOTE_MAX = 5, 200
ROLE_LABELS = {"admin": _l("Yönetici"), "operator": _l("Operatör"), "auditor": _l("Denetçi")}


def screen(name: str, state: str, status: int = 200, **context):
    return rendering.render_screen(f"admin_{name}", state, status=status, operator=g.get("operator"),
                                   role_labels=ROLE_LABELS, may=_may, **context)


def enrolment_link(token: str) -> str:
    return rendering.link_for(token, "admin.enrol")


def _may(permission: str) -> bool:
    return "operator" in g and operators.may(g.operator["role"], permission)


def _current_operator() -> dict | None:
    """The session's operator while the account stands (enrolled, not disabled); else the session ends."""
    row = storage.operators.get_operator(get_db(), session.get("operator_id") or 0)
    if row is None or row["disabled_at"] is not None or row["password_hash"] is None:
        if session.get("operator_id"):
            session.destroy()
        return None
    return row


def require_operator(permission: str = operators.READ) -> Callable:
    """Let the view run for a logged-in operator whose role has `permission` (else 403)."""
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            row = _current_operator()
            if row is None:
                return rendering.redirect_to("admin.login", expired=1 if session.expired_on_open else None)
            g.operator = row
            if not operators.may(row["role"], permission):
                audit.record(get_db(), current.now(), "operator.forbidden", "refused", None, current.client_ip(),
                             operator=row["name"], endpoint=request.endpoint)
                return screen("home", "forbidden", 403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def record(event: str, holder_id: int | None = None, outcome: str = "ok", **detail) -> None:
    audit.record(get_db(), current.now(), event, outcome, holder_id, current.client_ip(), operator=g.operator["name"],
                 **detail)


@bp.get("/login")
def login():
    if session.get("operator_id"):  # a session that stands goes home; one that fell (ended now) starts again
        return rendering.redirect_to("admin.home" if _current_operator() is not None else "admin.login")
    notice = _("Oturumunuzun süresi doldu. Lütfen yeniden giriş yapınız.") if request.args.get("expired") else None
    return screen("login", "form", notice=notice, errors={}, values={})


@bp.post("/login")
@limiter.limit(lambda: current_app.config["KAMUSM_LOGIN_RATE"])
def login_post():
    form = AdminLoginForm().sent()
    db, now = get_db(), current.now()
    try:
        row = operators.log_in(db, current_app.extensions["kamusm.hasher"], vault.app_keyring(), form.get("name", ""),
                               form.get("password", ""), form.get("totp_code", ""), now,
                               current_app.config["KAMUSM_LOCKOUT_THRESHOLD"], current.client_ip())
    except LoginFailed as exc:
        return screen("login", "form", 401, message=str(exc), errors={}, values={"name": form.get("name", "")})
    rendering.start_fresh_session()
    session["operator_id"] = row["id"]
    return rendering.redirect_to("admin.home")


@bp.post("/logout")
def logout():
    if session.get("operator_id"):
        row = storage.operators.get_operator(get_db(), session["operator_id"])
        audit.record(get_db(), current.now(), "operator.logout", "ok", None, current.client_ip(),
                     operator=row["name"] if row else "")
    session.destroy()
    return rendering.redirect_to("admin.login")


def _pending_seed(operator_id: int) -> str:
    """The seed this enrolment shows, made once and kept sealed in the session until the form is sent."""
    keyring = vault.app_keyring()
    kept = session.get(PENDING_SEED)
    if kept and kept[0] == operator_id:
        return vault.open_under_kek(keyring.find(kept[1]), operator_id, vault.OPERATOR_TOTP_PURPOSE,
                                    base64.b64decode(kept[2]))
    seed = totp.new_seed()
    session[PENDING_SEED] = [operator_id, keyring.current_id,
                             base64.b64encode(operators.seal_seed(keyring, operator_id, seed)).decode("ascii")]
    return seed


def _enrol_screen(row: dict, token: str, status: int = 200, errors: dict | None = None):
    seed = _pending_seed(row["id"])
    uri = totp.provisioning_uri(seed, row["name"], f"{current_app.config['KAMUSM_INSTITUTION_NAME']} kamusm")
    return screen("enrol", "form", status, subject=row, token=token, errors=errors or {},
                   qr_svg=totp.qr_svg(uri, _("Doğrulama uygulaması için QR kodu")), seed=totp.grouped_seed(seed))


@bp.get("/enrol/<token>")
def enrol(token: str):
    row = operators.enrolment(get_db(), token, current.now())
    if row is None:
        return screen("enrol", "invalid", 404)
    return _enrol_screen(row, token)


@bp.post("/enrol/<token>")
@limiter.limit("10 per minute")
def enrol_post(token: str):
    db, now = get_db(), current.now()
    row = operators.enrolment(db, token, now)
    if row is None:
        return screen("enrol", "invalid", 404)
    form = AdminEnrolForm().sent()
    try:
        operators.enrol(db, current_app.extensions["kamusm.hasher"], vault.app_keyring(), token,
                        form.get("password", ""), form.get("password_confirm", ""), _pending_seed(row["id"]),
                        form.get("totp_code", ""), now, current.client_ip())
    except ValidationError as exc:
        return _enrol_screen(row, token, 422, {exc.field: str(exc)})
    session.pop(PENDING_SEED, None)
    return screen("enrol", "done")


@bp.get("")
@require_operator()
def home():
    return screen("home", "menu")


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 100_000))
    except ValueError:
        return 1


@bp.get("/holders")
@require_operator()
def holders():
    form = AdminSearchForm(request.args)
    query = " ".join((form.q.data or "").split())[:64]
    page = _page_number(form.page.data)
    rows, total = storage.holders.search_holders(get_db(), query, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    if query:
        record("operator.holder_search", matches=total)
    pages = max(1, -(-total // PAGE_SIZE))
    return screen("holders", "list", rows=rows, total=total, query=query, page=min(page, pages), pages=pages,
                   now=current.now(), mask_identity=mask_identity)


def _holder_or_404(holder_id: int) -> dict:
    holder = storage.holders.get_holder(get_db(), holder_id)
    if holder is None:
        abort(404)
    return holder


def _holder_screen(holder_id: int, status: int = 200, message: str | None = None, notice: str | None = None,
                   note_for: int | None = None):
    db, now = get_db(), current.now()
    holder = _holder_or_404(holder_id)
    entries = storage.audit_log.search_audit(db, holder_id=holder_id, limit=AUDIT_PAGE_SIZE)
    logins = [entry for entry in storage.audit_log.search_audit(db, holder_id=holder_id, event="login", limit=200)
              if entry["event"] == "login" and entry["outcome"] == "ok"][:5]
    return screen("holder", "view", status, holder=holder, now=now, message=message, notice=notice,
                   identity=mask_identity(holder["identity"]), phone=auth.mask_phone(holder["phone"]),
                   email=mask_email(holder["email"]) if holder["email"] else "",
                   cards=storage.cards.holder_cards(db, holder_id), mask_serial=pinpuk.mask_serial,
                   certificates=storage.certificates.holder_certificates(db, holder_id), logins=logins,
                   entries=entries, locked=holder["locked_until"] > now, status_labels=certificates.STATUS_LABELS,
                   note_for=note_for, reminders=storage.reminders.holder_reminders(db, holder_id),
                   renewal_requests=storage.reminders.holder_renewal_requests(db, holder_id))


@bp.get("/holders/<rowid:holder_id>")
@require_operator()
def holder(holder_id: int):
    _holder_or_404(holder_id)
    record("operator.holder_view", holder_id)
    return _holder_screen(holder_id)


@bp.post("/holders/<rowid:holder_id>/lock")
@require_operator(operators.MANAGE_HOLDERS)
def lock_holder(holder_id: int):
    db, now = get_db(), current.now()
    _holder_or_404(holder_id)
    with storage.write(db):
        storage.holders.lock_out(db, holder_id, storage.holders.LOGIN, now + HOLDER_LOCK_SECONDS)
        ended = storage.sessions.delete_holder_sessions(db, holder_id)
        record("admin.holder_lock", holder_id, sessions_ended=ended)
    return _holder_screen(holder_id, notice=_("Kart sahibinin girişi kilitlendi; açık oturumları kapatıldı."))


@bp.post("/holders/<rowid:holder_id>/unlock")
@require_operator(operators.MANAGE_HOLDERS)
def unlock_holder(holder_id: int):
    db = get_db()
    _holder_or_404(holder_id)
    with storage.write(db):
        storage.holders.clear_failures(db, holder_id, storage.holders.LOGIN)
        record("admin.holder_unlock", holder_id)
    return _holder_screen(holder_id, notice=_("Kart sahibinin kilidi kaldırıldı."))


LINK_SUBJECTS = {reset.PURPOSE_ACTIVATION: _l("Hesap etkinleştirme bağlantısı"),
                 reset.PURPOSE_RESET: _l("Güvenlik sözcüğü yenileme bağlantısı")}


@bp.post("/holders/<rowid:holder_id>/link")
@require_operator(operators.MANAGE_HOLDERS)
def send_link(holder_id: int):
    """Mail the holder an activation link (no word set yet) or a reset link, to the institutional address only."""
    db, now = get_db(), current.now()
    holder = _holder_or_404(holder_id)
    if not holder["email"] or not email_domain_allowed(holder["email"], current_app.config["KAMUSM_EMAIL_DOMAINS"]):
        return _holder_screen(holder_id, 409, _("Kart sahibinin kurumsal bir e-posta adresi yok; bağlantı "
                                                "gönderilemez."))
    purpose = reset.PURPOSE_ACTIVATION if holder["word_hash"] is None else reset.PURPOSE_RESET
    token = reset.issue_link_token(db, holder_id, purpose, now)
    body = _("Sayın %(name)s,\n\nKurumunuzun portal görevlisi isteğiniz üzerine size bu bağlantıyı gönderdi. "
             "Güvenlik sözcüğünüzü belirlemek için bağlantıyı açınız. Bunu siz istemediyseniz bu e-postayı "
             "dikkate almayınız.\n\n%(link)s\n", name=holder["name"], link=rendering.link_for(token))
    mail_id = mail.queue_mail(db, holder_id, holder["email"], str(LINK_SUBJECTS[purpose]), body, now)
    delivered = mail.deliver_queued(db, mail.make_backend(current_app.config, db, current_app.config["CLOCK"]),
                                    mail_id, now)
    record("admin.reset_link", holder_id, "ok" if delivered else "mail_failed", purpose=purpose)
    if not delivered:
        return _holder_screen(holder_id, 503, _("E-posta şu anda gönderilemedi; kuyrukta bekliyor ve yeniden "
                                                "denenecek."))
    return _holder_screen(holder_id, notice=_("Bağlantı kart sahibinin kurumsal e-posta adresine gönderildi."))


@bp.post("/holders/<rowid:holder_id>/suspend")
@require_operator(operators.MANAGE_HOLDERS)
def suspend_certificate(holder_id: int):
    """The call-centre case: the holder calls, the operator suspends a certificate, with the call's reason."""
    db, now = get_db(), current.now()
    _holder_or_404(holder_id)
    form = AdminSuspendForm().sent()
    note = " ".join(form.get("note", "").split())
    if not NOTE_MIN <= len(note) <= NOTE_MAX or not note.isprintable():
        certificate = form.get("certificate", "")
        return _holder_screen(holder_id, 422, _("Askıya alma nedenini %(min)d-%(max)d karakterle yazınız.",
                                                min=NOTE_MIN, max=NOTE_MAX),
                              note_for=int(certificate) if certificate.isascii() and certificate.isdigit() else None)
    try:
        change = certificates.read_change(db, holder_id, {"action": "suspend",
                                                          "certificate": form.get("certificate", "")})
        certificates.apply_change(db, certificates.portal_authority(Path(current_app.instance_path),
                                                                    current_app.config["KAMUSM_DEMO"]),
                                  change, holder_id, current.client_ip(), now, operator=g.operator["name"], note=note)
    except (CertificateNotFound, TransitionRefused, ValidationError) as exc:
        return _holder_screen(holder_id, exc.status, str(exc))
    receipting.for_certificate_change(holder_id, change.certificate["id"], change.action, current.client_ip(),
                                      by=_("kurum görevlisi, kart sahibinin isteğiyle"))
    return _holder_screen(holder_id, notice=_("Sertifika askıya alındı; neden ve işlemi yapan kaydedildi."))


def _audit_filters() -> tuple[dict, dict]:
    """The audit viewer's filters from the query string: (for storage, as typed); ValidationError when bad."""
    form = AdminAuditForm(request.args)
    typed = {name: (getattr(form, name).data or "").strip()[:64] for name in ("holder", "event", "operator",
                                                                              "since", "until")}
    filters: dict = {"event": typed["event"], "operator": typed["operator"]}
    if typed["holder"]:
        holder = storage.holders.find_holder(get_db(), typed["holder"])
        filters["holder_id"] = holder["id"] if holder else -1
    for name in ("since", "until"):
        if typed[name]:
            try:
                day = datetime.strptime(typed[name], "%Y-%m-%d").replace(tzinfo=timezone.utc)
            except ValueError:
                raise ValidationError(_l("Tarihi YYYY-AA-GG biçiminde giriniz."), name) from None
            filters[name] = day.timestamp() + (86400 if name == "until" else 0)
    return filters, typed


@bp.get("/audit")
@require_operator()
def audit_log():
    try:
        filters, typed = _audit_filters()
    except ValidationError as exc:
        return screen("audit", "list", 422, entries=[], typed=dict(request.args), errors={exc.field: str(exc)},
                       page=1, verified=None)
    page = _page_number(request.args.get("page"))
    entries = storage.audit_log.search_audit(get_db(), limit=AUDIT_PAGE_SIZE + 1,
                                             offset=(page - 1) * AUDIT_PAGE_SIZE, **filters)
    return screen("audit", "list", entries=entries[:AUDIT_PAGE_SIZE], more=len(entries) > AUDIT_PAGE_SIZE,
                   typed=typed, errors={}, page=page, verified=None)


@bp.post("/audit/verify")
@require_operator()
def audit_verify():
    checked, broken = audit.verify(get_db())
    record("operator.audit_verify", outcome="ok" if broken is None else "broken", checked=checked, broken=broken)
    return screen("audit", "list", entries=[], typed={}, errors={}, page=1, verified={"checked": checked,
                                                                                         "broken": broken})


@bp.get("/audit.csv")
@require_operator()
def audit_csv():
    try:
        filters, _typed = _audit_filters()
    except ValidationError as exc:
        return Response(str(exc), status=422, mimetype="text/plain; charset=utf-8")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "at", "event", "outcome", "holder_id", "ip", "detail", "hash"])
    count = 0
    for entry in storage.audit_log.search_audit(get_db(), **filters):
        writer.writerow([entry["id"], datetime.fromtimestamp(entry["at"], timezone.utc).isoformat(),
                         *(_csv_safe(entry[name]) for name in ("event", "outcome")), entry["holder_id"] or "",
                         *(_csv_safe(entry[name]) for name in ("ip", "detail")), entry["hash"]])
        count += 1
    record("operator.audit_export", rows=count)
    return Response(out.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="kamusm-audit.csv"'})


def _csv_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


RENEWAL_CSV_COLUMNS = ["id", "requested_at", "holder_id", "name", "certificate_serial", "card_serial", "valid_until",
                       "certificate_status"]


def _renewals_screen(status: int = 200, message: str | None = None):
    return screen("renewals", "list", status, message=message,
                  requests=storage.reminders.open_renewal_requests(get_db()), mask_serial=pinpuk.mask_serial,
                  status_labels=certificates.STATUS_LABELS)


@bp.get("/renewals")
@require_operator()
def renewals_page():
    """Open renewal requests, oldest first: what the institution has still to renew."""
    return _renewals_screen()


@bp.get("/renewals.csv")
@require_operator()
def renewals_csv():
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(RENEWAL_CSV_COLUMNS)
    rows = storage.reminders.open_renewal_requests(get_db())
    for row in rows:
        writer.writerow([row["id"], datetime.fromtimestamp(row["requested_at"], timezone.utc).isoformat(),
                         row["holder_id"], _csv_safe(row["name"]), row["serial_hex"] or "",
                         pinpuk.mask_serial(row["card_serial"]),
                         datetime.fromtimestamp(row["not_after"], timezone.utc).isoformat() if row["not_after"] else "",
                         row["status"]])
    record("operator.renewals_export", rows=len(rows))
    return Response(out.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="kamusm-renewals.csv"'})


@bp.post("/renewals/<rowid:request_id>/done")
@require_operator(operators.MANAGE_HOLDERS)
def renewal_done(request_id: int):
    """Close a request the institution has dealt with; back to the holder's page or the list."""
    back_to_holder = AdminRenewalDoneForm().sent().get("back") == "holder"
    try:
        row = renewals.mark_done(get_db(), request_id, g.operator["name"], current.client_ip(), current.now())
    except (renewals.RenewalNotFound, renewals.RenewalRefused) as exc:
        return _renewals_screen(exc.status, str(exc))
    if back_to_holder:
        return rendering.redirect_to("admin.holder", holder_id=row["holder_id"])
    return rendering.redirect_to("admin.renewals_page")

"""Sertifika Durum Değişikliği, and the CRL and OCSP a relying party fetches."""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request, session
from flask_babel import format_date
from flask_babel import gettext as _

from kamusm import audit, auth, ca, pinpuk, renewals, storage
from kamusm.certificates import (
    ACTION_LABELS,
    CA_CERT_MIMETYPE,
    CRL_MIMETYPE,
    DONE_MESSAGES,
    OCSP_RESPONSE_MIMETYPE,
    REASON_LABELS,
    REVOKE_REASONS,
    STATUS_LABELS,
    CertificateNotFound,
    Change,
    TransitionRefused,
    allowed_actions,
    apply_change,
    crl_cache_headers,
    current_crl,
    ocsp_cache_headers,
    ocsp_status,
    portal_authority,
    read_change,
)
from kamusm.errors import ValidationError
from kamusm.web import current, guards, notify, receipting, rendering, stepup
from kamusm.web.db import get_db
from kamusm.web.extensions import csrf
from kamusm.web.forms import CertificateChangeForm, RenewalRequestForm

bp = Blueprint("certificates", __name__)


def _authority() -> ca.Authority | None:
    return portal_authority(Path(current_app.instance_path), current_app.config["KAMUSM_DEMO"])


def _public_url() -> str:
    return current_app.config["KAMUSM_PUBLIC_URL"] or ca.DEFAULT_PUBLIC_URL


def _display(row: dict) -> dict:
    until = row["not_after"]
    return {**row, "card_serial_masked": pinpuk.mask_serial(row["card_serial"]),
            "valid_from": format_date(datetime.fromtimestamp(row["not_before"], timezone.utc)),
            "valid_until": format_date(datetime.fromtimestamp(until, timezone.utc)) if until else None,
            "actions": allowed_actions(row["status"])}


def _screen(state: str, status: int = 200, message: str | None = None, change: Change | None = None,
            errors: dict | None = None, errors_for: str | None = None, **context):
    """errors_for: the certificate whose revoke form shows `errors` beside its fields."""
    db, holder_id = get_db(), session["holder_id"]
    rows = [_display(row) for row in storage.certificates.holder_certificates(db, holder_id)]
    return rendering.render_screen("certificate", state, status=status, rows=rows, message=message, change=change,
                                   own_ca=_authority() is not None, reasons=REVOKE_REASONS,
                                   reason_labels=REASON_LABELS, status_labels=STATUS_LABELS,
                                   action_labels=ACTION_LABELS, mask_serial=pinpuk.mask_serial, errors=errors or {},
                                   errors_for=errors_for, renewal_requests=renewals.open_requests(db, holder_id),
                                   may_renew=lambda row: renewals.may_request(row, current.now()), **context)


@bp.route("/certificate", methods=["GET", "POST"])
@guards.require_stage(auth.STAGE_DONE)
def certificate():
    if request.method == "GET":
        return _screen("list")
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    form = CertificateChangeForm().sent()
    try:
        change = read_change(db, holder_id, form)
    except (ValidationError, CertificateNotFound, TransitionRefused) as exc:
        audit.record(db, now, "certificate.change", "rejected", holder_id, current.client_ip(),
                     problem=type(exc).__name__)
        if isinstance(exc, ValidationError) and exc.field in ("reason", "confirm"):
            return _screen("list", exc.status, str(exc), errors={exc.field: str(exc)},
                           errors_for=form.get("certificate"))
        return _screen("list", exc.status, str(exc))
    needed = stepup.demand_fresh_code("certificate.change", form)
    if needed:
        return _screen("stepup", needed.status, needed.message, change=change, choices=needed.choices)
    try:
        apply_change(db, _authority(), change, holder_id, current.client_ip(), now)
    except TransitionRefused as exc:
        return _screen("list", exc.status, str(exc))
    receipt_id = receipting.for_certificate_change(holder_id, change.certificate["id"], change.action,
                                                   current.client_ip())
    if rendering.is_htmx_partial():
        return _screen("done", message=str(DONE_MESSAGES[change.action]), receipt_id=receipt_id)
    return rendering.redirect_to("certificates.certificate")


@bp.post("/certificate/renewal")
@guards.require_stage(auth.STAGE_DONE)
def renewal_request():
    """Yenileme Talebi: asks the institution to renew one certificate; the holder is told by mail."""
    db, now, holder_id = get_db(), current.now(), session["holder_id"]
    try:
        filed = renewals.file_request(db, holder_id, RenewalRequestForm().sent().get("certificate", ""),
                                      current.client_ip(), now)
    except (CertificateNotFound, renewals.RenewalRefused) as exc:
        return _screen("list", exc.status, str(exc))
    holder = current.holder()
    certificate = storage.certificates.get_holder_certificate(db, holder_id, filed["certificate_id"])
    body = _("Sayın %(name)s,\n\n%(serial)s seri numaralı sertifikanız için yenileme talebiniz %(when)s tarihinde "
             "kurumunuza iletildi. Talebin durumunu portalın Sertifika Durumu ekranında görebilirsiniz.\n\nBu "
             "talebi siz göndermediyseniz hemen kurumunuzla görüşünüz.\n", name=holder["name"],
             serial=certificate["serial_hex"] or pinpuk.mask_serial(certificate["card_serial"]),
             when=rendering.format_timestamp(filed["requested_at"]))
    notify.tell_holder(holder, "certificate.renewal_notice", None, _("Yenileme talebiniz alındı"), body)
    return rendering.redirect_to("certificates.certificate")


@bp.get("/ca.crt")
def ca_certificate():
    """The CA certificate (DER, RFC 5280 4.2.2.1 caIssuers), for relying parties building the chain."""
    authority = _authority()
    if authority is None:
        abort(404)
    return Response(ca.certificate_der(authority.cert), mimetype=CA_CERT_MIMETYPE,
                    headers={"Cache-Control": "max-age=86400, public"})


@bp.get("/crl.der")
def crl():
    authority = _authority()
    if authority is None:
        abort(404)
    der = current_crl(get_db(), authority, current.now())
    return Response(der, mimetype=CRL_MIMETYPE, headers=crl_cache_headers(der, current.now()))


def _ocsp_answer(request_der: bytes, cacheable: bool = False) -> Response:
    authority = _authority()
    if authority is None:
        return Response(ca.unauthorized_response(), status=404, mimetype=OCSP_RESPONSE_MIMETYPE)
    db = get_db()
    # RFC 6960 2.3 and A.1: a malformed request is answered with an OCSPResponse saying so, over HTTP 200,
    # so a client can show the responder's verdict rather than a transport error.
    answer, _well_formed = ca.answer_ocsp(authority, request_der, lambda serial: ocsp_status(db, serial),
                                          current.now())
    headers = ocsp_cache_headers(answer, current.now()) if cacheable else {}
    return Response(answer, status=200, mimetype=OCSP_RESPONSE_MIMETYPE, headers=headers)


@bp.get("/ocsp/<path:encoded>")
def ocsp_get(encoded: str):
    """RFC 6960 A.1: GET {url}/{url-encoding of base64 of the DER request}; base64 may hold '/' and '//'."""
    try:
        request_der = base64.b64decode(encoded, validate=True)
    except ValueError:
        request_der = b""
    return _ocsp_answer(request_der, cacheable=True)


@bp.post("/ocsp")
def ocsp_post():
    return _ocsp_answer(request.get_data(cache=False))


csrf.exempt(ocsp_post)

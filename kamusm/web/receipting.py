"""Issuing the holder's signed receipt (kamusm.receipts) for what was just done, with this portal's CA,
receipt key and institution name. Needs the app context only: /lost issues its receipts after the answer."""
from __future__ import annotations

from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

from kamusm import audit, certificates, pinpuk, receipts, storage
from kamusm.web import current
from kamusm.web.db import get_db


def _authority():
    return certificates.portal_authority(Path(current_app.instance_path), current_app.config["KAMUSM_DEMO"])


def _issue(holder_id: int, kind: str, what: str, facts: list[tuple[str, str]], ip: str) -> int | None:
    """The receipt's id, or None when the receipt key is unusable: the change it reports stands, and the
    audit entry tells the operator to fix the key files (docs/receipts.md)."""
    db, now, institution = get_db(), current.now(), current_app.config["KAMUSM_INSTITUTION_NAME"]
    try:
        signer = receipts.ensure_signer(Path(current_app.instance_path), _authority(), institution, now)
    except receipts.ReceiptKeyError:
        audit.record(db, now, "receipt.issue", "key_error", holder_id, ip, kind=kind)
        return None
    receipt_id = receipts.issue(db, signer, institution, storage.holders.get_holder(db, holder_id), kind, what,
                                now, facts)
    audit.record(db, now, "receipt.issue", "ok", holder_id, ip, kind=kind, receipt=receipt_id)
    return receipt_id


def for_certificate_change(holder_id: int, certificate_id: int, action: str, ip: str,
                           by: str | None = None) -> int | None:
    """After the change committed: the certificate, its new status and what the CRL and OCSP now say;
    `by` names who acted when it was not the holder on /certificate (the console, the lost-card code)."""
    db, now, authority = get_db(), current.now(), _authority()
    row = storage.certificates.get_holder_certificate(db, holder_id, certificate_id)
    facts = [(_("Sertifika seri no"), row["serial_hex"] or "—"),
             (_("Kart seri no"), pinpuk.mask_serial(row["card_serial"])),
             (_("Yeni durum"), str(certificates.STATUS_LABELS[row["status"]]))]
    if by:
        facts.insert(0, (_("İşlemi yapan"), by))
    if row["status"] == "revoked":
        facts.append((_("İptal nedeni"), str(certificates.REASON_LABELS.get(row["reason"], row["reason"]))))
    if authority is not None and row["der"]:
        crl = storage.certificates.get_crl_state(db)
        produced_at, seen = receipts.ocsp_seen(authority, row["der"],
                                               lambda serial: certificates.ocsp_status(db, serial), now)
        facts += [(_("Değişiklikten sonraki CRL numarası"), str(crl["number"])),
                  (_("OCSP yanıtı (producedAt)"), produced_at), (_("OCSP durumu"), seen)]
    else:
        facts.append((_("CRL ve OCSP"), _("kurumunuzun sertifika makamı yayınlar")))
    what = _("Sertifika durumu değiştirildi: %(action)s", action=certificates.ACTION_LABELS[action])
    return _issue(holder_id, receipts.KIND_CERTIFICATE, what, facts, ip)


def for_vault_delete(holder_id: int, card_serials: list[str], ip: str) -> int | None:
    facts = [(_("Kart seri no"), ", ".join(pinpuk.mask_serial(serial) for serial in card_serials) or "—")]
    return _issue(holder_id, receipts.KIND_VAULT_DELETE,
                  _("PIN/PUK bilgileri portaldan kalıcı olarak silindi"), facts, ip)

"""Telling a holder, by SMS and mail, of something done on their account that they should know of."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _

from kamusm import audit, mail, storage
from kamusm.errors import SmsFailed
from kamusm.web import current
from kamusm.web.db import get_db


def tell_holder(holder: dict, event: str, sms_text: str | None, subject: str, body: str,
                phone: str | None = None) -> None:
    """Send the notice by SMS (to `phone`, else the holder's number; none when sms_text is None) and by mail
    to the holder's address; a failed channel is audited, never raised: the action it reports stands."""
    db, now, ip = get_db(), current.now(), current.client_ip()
    if sms_text is not None:
        try:
            current.sms_sender().send(phone or holder["phone"], sms_text)
        except SmsFailed as exc:
            audit.record(db, now, event, "sms_failed", holder["id"], ip, reason=str(exc))
    if holder.get("email"):
        mail_id = mail.queue_mail(db, holder["id"], holder["email"], subject, body, now)
        if not mail.deliver_queued(db, mail.make_backend(current_app.config, db, current_app.config["CLOCK"]),
                                   mail_id, now):
            audit.record(db, now, event, "mail_failed", holder["id"], ip)


def alert_vault_use(holder_id: int, event: str, what: str) -> None:
    """Tell the holder at once that their PIN/PUK was shown, saved, deleted or sealed for the helper: a stolen
    session or security word is then noticed while the card can still be suspended (/lost, /certificate)."""
    holder = storage.holders.get_holder(get_db(), holder_id)
    text = _("Kamu SM bireysel işlemler: %(what)s. Bunu siz yapmadıysanız hemen sertifikanızı askıya alınız "
             "ve kurumunuzla görüşünüz.", what=what)
    tell_holder(holder, event + "_alert", text, _("Kartınızın gizli bilgileri kullanıldı"), text)

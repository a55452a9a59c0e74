"""Expiry reminders: 90, 60, 30 and 15 days before a certificate ends, by SMS and by mail, queued and then
delivered by `kamusm reminders send` (docs/reminders.md).

Rules and their reasons:
- Due: a certificate that is not revoked (a suspended one may still be resumed, so its end matters), ends
  within 90 days, has a known end (a status record of an outside CA has none), and whose holder has not
  asked to renew it yet (then the institution knows, and more reminders are noise).
- Only the tightest threshold reached is queued: a certificate first seen with 20 days left gets the
  30-day reminder, once, never 90, 60 and 30 at once.
- Queueing is INSERT OR IGNORE on (certificate, days, channel), so a second run, or one in parallel,
  queues nothing twice; delivering claims each try first (one UPDATE counts it and moves the next try
  ahead), so two runs never send the same reminder.
- A failed try is audited and left for a later run after a growing wait; after MAX_TRIES the reminder
  is failed. A reminder whose moment has passed (a tighter one is due, the certificate ended, was revoked
  or its renewal was requested before it went out) is dropped unsent.
- A mail reminder's message is queued in the mail queue once and re-delivered from there, so a retry by
  `kamusm mail retry` and one by this module cannot both send it.
- The texts carry no secret (no code, no link with a token): the mail names the /certificate screen,
  which the holder reaches by the normal login, and the SMS only the date.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

from flask_babel import force_locale, format_date
from flask_babel import gettext as _

from kamusm import audit, mail, storage
from kamusm.errors import SmsFailed
from kamusm.pinpuk import mask_serial
from kamusm.sms import SmsBackend

THRESHOLDS_DAYS = (90, 60, 30, 15)
DAY_SECONDS = 86400
CHANNELS = ("sms", "mail")
# Waits before the 2nd, 3rd and 4th try: each under a day, so a daily timer retries on each of the next
# days, and an hourly one spreads its tries; after the 4th failed try the reminder is failed.
RETRY_WAIT_SECONDS = (3600, 4 * 3600, 20 * 3600)
MAX_TRIES = len(RETRY_WAIT_SECONDS) + 1


@dataclass(frozen=True)
class Senders:
    """What a run delivers with: the SMS and mail backends, the portal's /certificate address (for the mail)
    and the language of the texts (the portal keeps no language per holder: the default one)."""

    sms: SmsBackend
    mail: mail.MailBackend
    certificate_link: str
    language: str


@dataclass
class RunCounts:
    queued: int = 0
    sent: int = 0
    retry_later: int = 0
    failed: int = 0
    dropped: int = 0
    failures: list[str] = field(default_factory=list)


def tightest_threshold(seconds_left: float) -> int | None:
    """The smallest threshold (in days) the time left has reached; None past the end or beyond 90 days."""
    if seconds_left <= 0:
        return None
    reached = [days for days in THRESHOLDS_DAYS if seconds_left <= days * DAY_SECONDS]
    return min(reached) if reached else None


def days_left(not_after: float, now: float) -> int:
    return max(1, math.ceil((not_after - now) / DAY_SECONDS))


def retry_wait(tries: int) -> float:
    """The wait after the `tries`-th try (counted from 1) before the next one."""
    return RETRY_WAIT_SECONDS[min(tries, len(RETRY_WAIT_SECONDS)) - 1]


def queue_due(db, now: float) -> int:
    """Queue the tightest reminder of every due certificate, on each channel its holder has; return how many
    were new."""
    queued = 0
    for certificate in storage.reminders.expiring_certificates(db, now, now + max(THRESHOLDS_DAYS) * DAY_SECONDS):
        days = tightest_threshold(certificate["not_after"] - now)
        for channel in CHANNELS:
            if certificate["phone" if channel == "sms" else "email"]:
                queued += storage.reminders.queue_reminder(db, certificate["id"], days, channel, now)
    return queued


def why_not_due(reminder: dict, now: float) -> str | None:
    """Why a queued reminder should no longer go out, or None when it should."""
    if reminder["status"] == "revoked":
        return "revoked"
    if reminder["not_after"] is None or reminder["not_after"] <= now:
        return "expired"
    if reminder["renewal_requested"]:
        return "renewal_requested"
    if tightest_threshold(reminder["not_after"] - now) != reminder["days"]:
        return "superseded"
    return None


def texts(reminder: dict, now: float, senders: Senders) -> tuple[str, str, str]:
    """(SMS text, mail subject, mail body) in the run's language."""
    with force_locale(senders.language):
        date = format_date(datetime.fromtimestamp(reminder["not_after"], timezone.utc))
        left = days_left(reminder["not_after"], now)
        sms_text = _("Kamu SM bireysel işlemler: nitelikli elektronik sertifikanızın süresi %(date)s tarihinde "
                     "doluyor (%(days)d gün kaldı). Yenilemek için portalın Sertifika Durumu ekranından Yenileme "
                     "Talebi gönderiniz.", date=date, days=left)
        subject = _("Sertifikanızın süresi %(date)s tarihinde doluyor", date=date)
        body = _("Sayın %(name)s,\n\n%(serial)s seri numaralı nitelikli elektronik sertifikanızın geçerlilik "
                 "süresi %(date)s tarihinde doluyor (%(days)d gün kaldı). Süresi dolan sertifikayla imza "
                 "atılamaz.\n\nSertifikanızı yeniletmek için portala her zamanki gibi giriş yapınız ve Sertifika "
                 "Durumu ekranında sertifikanızın yanındaki \"Yenileme Talebi\" butonuna basınız; talebiniz "
                 "kurumunuza iletilir:\n%(link)s\n\nBu e-posta sizden hiçbir parola, PIN ya da kod istemez.\n",
                 name=reminder["name"], serial=reminder["serial_hex"] or mask_serial(reminder["card_serial"]),
                 date=date, days=left, link=senders.certificate_link)
    return sms_text, subject, body


def _deliver(db, reminder: dict, senders: Senders, now: float) -> str | None:
    """Send one claimed reminder; None when it went out, else the failure's reason (naming no secret)."""
    sms_text, subject, body = texts(reminder, now, senders)
    if reminder["channel"] == "sms":
        try:
            senders.sms.send(reminder["phone"], sms_text)
        except SmsFailed as exc:
            return str(exc) or "sms_failed"
        return None
    mail_id = reminder["mail_id"]
    if mail_id is None:
        with storage.write(db):
            mail_id = mail.queue_mail(db, reminder["holder_id"], reminder["email"], subject, body, now)
            storage.reminders.set_reminder_mail(db, reminder["id"], mail_id)
    if mail.deliver_queued(db, senders.mail, mail_id, now, retries=0):
        return None
    return storage.mail_queue.get_queued_mail(db, mail_id)["reason"] or "mail_failed"


def deliver_due(db, senders: Senders, now: float, counts: RunCounts | None = None) -> RunCounts:
    """Try every reminder whose time has come, each once; every outcome is audited."""
    counts = counts or RunCounts()
    for due in storage.reminders.due_reminders(db, now):
        reminder = storage.reminders.claim_reminder(db, due["id"], now, now + retry_wait(due["tries"] + 1))
        if reminder is None:
            continue
        detail = {"certificate_id": reminder["certificate_id"], "days": reminder["days"],
                  "channel": reminder["channel"], "tries": reminder["tries"]}
        dropped = why_not_due(reminder, now)
        if dropped:
            storage.reminders.mark_reminder_failed(db, reminder["id"], dropped, final=True)
            audit.record(db, now, "reminder.dropped", dropped, reminder["holder_id"], **detail)
            counts.dropped += 1
            continue
        reason = _deliver(db, reminder, senders, now)
        if reason is None:
            storage.reminders.mark_reminder_sent(db, reminder["id"], now)
            audit.record(db, now, "reminder.sent", "ok", reminder["holder_id"], **detail)
            counts.sent += 1
            continue
        final = reminder["tries"] >= MAX_TRIES
        storage.reminders.mark_reminder_failed(db, reminder["id"], reason, final)
        audit.record(db, now, "reminder.sent", "failed" if final else "retry_later", reminder["holder_id"],
                     reason=reason, **detail)
        counts.failures.append(f"{reminder['channel']} reminder {reminder['id']}: {reason}")
        if final:
            counts.failed += 1
        else:
            counts.retry_later += 1
    return counts


def send_reminders(db, senders: Senders, now: float) -> RunCounts:
    """One run: queue what is due, then deliver what is pending (this run's and earlier runs' retries)."""
    counts = RunCounts(queued=queue_due(db, now))
    return deliver_due(db, senders, now, counts)

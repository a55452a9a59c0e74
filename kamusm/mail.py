"""E-mail: a queue in the database, delivered by the outbox or an SMTP server.

Every message is first stored in the `mail_queue` table, in the caller's
transaction, and only then delivered; a delivery that fails after its retries
stays queued with the reason, is audited, and `kamusm mail retry` sends it
later. So a failing mail server loses nothing. The outbox backend (demo) puts
messages where /demo/mail shows them. Bodies can hold one-time links: they are
never logged.

Every message leaves signed with the institution's name (SignedMail wraps whatever
backend delivers it), and over SMTP that name is the From header's display name, what
mail clients list as the sender. No logo goes along: clients block remote images, and
an attached one would make each short message many times its size.
"""
from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Callable, Protocol

from kamusm import audit, storage

RETRY_PAUSE_SECONDS = 0.5


class MailFailed(Exception):
    """The mail server did not take the message; the reason names no secret."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # "starttls", "tls" or "none"
    user: str
    password: str
    timeout_seconds: int
    sender: str
    ca_file: str = ""  # a CA bundle to verify the server with (an institution's own CA); empty: the system's
    display_name: str = ""  # the From name when `sender` names none: the institution's


class MailBackend(Protocol):
    def deliver(self, recipient: str, subject: str, body: str) -> None: ...


class OutboxMail:
    """Keeps delivered mail in the outbox table for /demo/mail."""

    def __init__(self, db, clock: Callable[[], float]):
        self._db = db
        self._clock = clock

    def deliver(self, recipient: str, subject: str, body: str) -> None:
        storage.outbox.add_to_outbox(self._db, "mail", recipient, body, self._clock(), subject=subject)


class SmtpMail:
    def __init__(self, settings: SmtpSettings):
        self._settings = settings

    def message(self, recipient: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        name, address = parseaddr(self._settings.sender)
        message["From"] = formataddr((name or self._settings.display_name, address))
        message["To"] = recipient
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=address.rpartition("@")[2] or None)
        message.set_content(body)
        return message

    def deliver(self, recipient: str, subject: str, body: str) -> None:
        settings = self._settings
        context = ssl.create_default_context(cafile=settings.ca_file or None)
        try:
            if settings.security == "tls":
                client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_seconds,
                                          context=context)
            else:
                client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
            with client:
                if settings.security == "starttls":
                    client.starttls(context=context)
                if settings.user:
                    client.login(settings.user, settings.password)
                client.send_message(self.message(recipient, subject, body))
        except (smtplib.SMTPException, OSError) as exc:
            raise MailFailed(type(exc).__name__) from None


def signed(body: str, institution: str) -> str:
    """The body with the institution's name under a signature separator ("-- ", RFC 3676).

    A name reads the same in every language, so the signature fits a Turkish or an English body."""
    return f"{body.rstrip()}\n\n-- \n{institution}\n"


class SignedMail:
    """Signs every message on its way to the backend, so no mail of the portal leaves unsigned."""

    def __init__(self, backend: MailBackend, institution: str):
        self._backend = backend
        self._institution = institution

    def deliver(self, recipient: str, subject: str, body: str) -> None:
        self._backend.deliver(recipient, subject, signed(body, self._institution))


def make_backend(config: dict, db, clock: Callable[[], float]) -> MailBackend:
    institution = config["KAMUSM_INSTITUTION_NAME"]
    backend: MailBackend = OutboxMail(db, clock)
    if config["KAMUSM_MAIL_BACKEND"] == "smtp":
        backend = SmtpMail(SmtpSettings(config["KAMUSM_SMTP_HOST"], config["KAMUSM_SMTP_PORT"],
                                        config["KAMUSM_SMTP_SECURITY"], config["KAMUSM_SMTP_USER"],
                                        config["KAMUSM_SMTP_PASSWORD"], config["KAMUSM_SMTP_TIMEOUT"],
                                        config["KAMUSM_MAIL_FROM"], config["KAMUSM_SMTP_CA_FILE"], institution))
    return SignedMail(backend, institution)


def queue_mail(db, holder_id: int | None, recipient: str, subject: str, body: str, now: float) -> int:
    """Store the message for delivery (in the caller's transaction); return its queue id."""
    return storage.mail_queue.enqueue_mail(db, holder_id, recipient, subject, body, now)


def deliver_queued(db, backend: MailBackend, mail_id: int, now: float, retries: int = 2) -> bool:
    """Try to deliver one queued message, with retries; True when sent. Failures are recorded and audited."""
    row = storage.mail_queue.get_queued_mail(db, mail_id)
    if row is None or row["sent_at"] is not None:
        return True
    reason = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(RETRY_PAUSE_SECONDS)
        try:
            backend.deliver(row["recipient"], row["subject"], row["body"])
        except MailFailed as exc:
            reason = str(exc)
            continue
        storage.mail_queue.mark_mail_sent(db, mail_id, now)
        audit.record(db, now, "mail.sent", "ok", row["holder_id"], mail_id=mail_id)
        return True
    storage.mail_queue.mark_mail_failed(db, mail_id, reason, now)
    audit.record(db, now, "mail.sent", "failed", row["holder_id"], mail_id=mail_id, reason=reason)
    return False


def retry_pending(db, backend: MailBackend, now: float) -> tuple[int, int]:
    """Deliver every queued, unsent message; return (sent, still failing)."""
    sent = failed = 0
    for row in storage.mail_queue.pending_mail(db):
        if deliver_queued(db, backend, row["id"], now, retries=0):
            sent += 1
        else:
            failed += 1
    return sent, failed

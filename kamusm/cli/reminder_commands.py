"""flask kamusm reminders: the certificate expiry reminders, run daily by a systemd timer (docs/reminders.md)."""
from __future__ import annotations

import click
from flask import current_app, url_for
from flask.cli import AppGroup

from kamusm import audit, mail, reminders, sms, storage
from kamusm.web import current
from kamusm.web.db import get_db

reminders_cli = AppGroup("reminders", help="Certificate expiry reminders (90, 60, 30 and 15 days before the end).")
DEFAULT_PORTAL = "http://127.0.0.1:5000"


def _certificate_link(config: dict) -> str:
    """Where the mail sends the holder: the public origin, which a deployment must name (demo mode may not)."""
    if not config["KAMUSM_PUBLIC_URL"] and not config["KAMUSM_DEMO"]:
        raise click.ClickException("set KAMUSM_PUBLIC_URL: the reminder mail tells holders where the portal is")
    with current_app.test_request_context():
        path = url_for("certificates.certificate")
    return (config["KAMUSM_PUBLIC_URL"] or DEFAULT_PORTAL).rstrip("/") + path


@reminders_cli.command("send")
def reminders_send_command() -> None:
    """Queue the reminders that are due and deliver the pending ones. Safe to run again, or twice at once:
    nothing goes out twice. Exit 0 even when some failed (a later run retries them); 1 on a setup error."""
    config, db = current_app.config, get_db()
    if storage.migrations.schema_version(db) < len(storage.migrations.MIGRATIONS):
        raise click.ClickException("the database is not at the latest schema: run `kamusm init` first")
    senders = reminders.Senders(sms=sms.make_backend(config, get_db, current.now),
                                mail=mail.make_backend(config, db, config["CLOCK"]),
                                certificate_link=_certificate_link(config), language=config["BABEL_DEFAULT_LOCALE"])
    now = current.now()
    counts = reminders.send_reminders(db, senders, now)
    audit.record(db, now, "admin.reminders", "ok", queued=counts.queued, sent=counts.sent,
                 retry_later=counts.retry_later, failed=counts.failed, dropped=counts.dropped)
    for failure in counts.failures:
        click.echo(failure, err=True)
    click.echo(f"{counts.queued} queued, {counts.sent} sent, {counts.retry_later} to retry later, "
               f"{counts.failed} failed, {counts.dropped} dropped")

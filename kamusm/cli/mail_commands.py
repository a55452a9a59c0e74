"""flask kamusm mail: the queue's retry."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from kamusm import mail
from kamusm.web import current
from kamusm.web.db import get_db

mail_cli = AppGroup("mail", help="The mail queue.")



@mail_cli.command("retry")
def mail_retry_command() -> None:
    """Deliver every queued message that has not gone out yet."""
    db, now = get_db(), current.now()
    sent, failed = mail.retry_pending(db, mail.make_backend(current_app.config, db, current_app.config["CLOCK"]), now)
    click.echo(f"{sent} sent, {failed} still failing")
    if failed:
        sys.exit(1)

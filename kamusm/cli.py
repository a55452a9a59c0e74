"""`flask --app app kamusm …`: the operator's commands. No secret is printed."""
from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from kamusm import audit, store
from kamusm.db import get_db
from kamusm.config import settings_markdown
from kamusm.demo import load_demo_holders

kamusm_cli = AppGroup("kamusm", help="kamusm portal administration.")


def _now() -> float:
    return current_app.config["CLOCK"]()


@kamusm_cli.command("init")
def init_command() -> None:
    """Create or upgrade the database and the instance keys."""
    version = store.migrate(get_db())
    audit.record(get_db(), _now(), "admin.init", "ok", schema=version)
    click.echo(f"database ready at schema version {version}: {current_app.config['DATABASE']}")


@kamusm_cli.command("demo")
def demo_command() -> None:
    """Load (or refresh) the demo holders of DESIGN.md."""
    ids = load_demo_holders(get_db(), current_app.extensions["kamusm.hasher"], _now())
    audit.record(get_db(), _now(), "admin.demo", "ok", holders=len(ids))
    click.echo(f"{len(ids)} demo holders loaded")


@kamusm_cli.command("outbox")
@click.option("--limit", default=10, show_default=True, help="How many of the latest messages.")
@click.option("--kind", type=click.Choice(["sms", "mail"]), default=None, help="Only SMS or only mail.")
def outbox_command(limit: int, kind: str | None) -> None:
    """Print the latest outbox SMS/mail as JSON lines, newest first."""
    for message in store.latest_outbox(get_db(), kind, limit):
        click.echo(json.dumps({"kind": message["kind"], "to": message["recipient"], "subject": message["subject"],
                               "body": message["body"], "sent_at": message["sent_at"]}, ensure_ascii=False))


@kamusm_cli.command("settings")
def settings_command() -> None:
    """Print every setting with its default and meaning (the text of docs/settings.md)."""
    click.echo(settings_markdown(), nl=False)


audit_cli = AppGroup("audit", help="The tamper-evident audit log.")
kamusm_cli.add_command(audit_cli)


@audit_cli.command("verify")
def audit_verify_command() -> None:
    """Check the hash chain; exit 1 naming the first broken entry."""
    checked, broken = audit.verify(get_db())
    if broken is not None:
        click.echo(f"audit chain broken at entry {broken} (after {checked} good entries)", err=True)
        sys.exit(1)
    click.echo(f"audit chain ok: {checked} entries")


def init_app(app: Flask) -> None:
    app.cli.add_command(kamusm_cli)

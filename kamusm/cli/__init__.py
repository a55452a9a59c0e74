"""`flask --app app kamusm …`: the operator's commands. No secret is printed."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from kamusm import audit, certificates, helper, housekeeping, roster, storage, vault
from kamusm.cli.audit_commands import audit_cli
from kamusm.cli.certificate_commands import certificates_cli
from kamusm.cli.db_commands import db_cli
from kamusm.cli.demo_commands import RESET_HELP, reset_demo, scenario_command
from kamusm.cli.holder_commands import holder_cli
from kamusm.cli.mail_commands import mail_cli
from kamusm.cli.operator_commands import operator_cli
from kamusm.cli.reminder_commands import reminders_cli
from kamusm.config import settings_markdown
from kamusm.demo import load_demo_holders
from kamusm.helper import BACKENDS, DEFAULT_PORT, DEFAULT_PORTAL_ORIGIN, HelperSetupError
from kamusm.web import current
from kamusm.web.db import get_db

kamusm_cli = AppGroup("kamusm", help="kamusm portal administration.")


@kamusm_cli.command("init")
def init_command() -> None:
    """Create or upgrade the database and the instance keys."""
    version = storage.migrations.migrate(get_db())
    vault.app_keyring()
    if current_app.config["KAMUSM_DEMO"]:
        certificates.ensure_demo_ca(get_db(), Path(current_app.instance_path), current.now())
    certificates.issue_for_new_cards(get_db(), Path(current_app.instance_path), current_app.config["KAMUSM_DEMO"],
                                     current_app.config["KAMUSM_PUBLIC_URL"], current.now())
    audit.record(get_db(), current.now(), "admin.init", "ok", schema=version)
    click.echo(f"database ready at schema version {version}: "
               f"{storage.connection.describe(current_app.config['DATABASE'])}")


@kamusm_cli.command("demo")
@click.option("--reset", is_flag=True, help=RESET_HELP)
def demo_command(reset: bool) -> None:
    """Load (or refresh) the demo holders of DESIGN.md; --reset starts a class afresh (docs/teaching.md)."""
    if reset:
        reset_demo()
        return
    ids = load_demo_holders(get_db(), current_app.extensions["kamusm.hasher"], vault.app_keyring(), current.now())
    certificates.issue_demo_certificates(get_db(), Path(current_app.instance_path),
                                         current_app.config["KAMUSM_PUBLIC_URL"], current.now())
    audit.record(get_db(), current.now(), "admin.demo", "ok", holders=len(ids))
    click.echo(f"{len(ids)} demo holders loaded")


@kamusm_cli.command("outbox")
@click.option("--limit", default=10, show_default=True, help="How many of the latest messages.")
@click.option("--kind", type=click.Choice(["sms", "mail"]), default=None, help="Only SMS or only mail.")
def outbox_command(limit: int, kind: str | None) -> None:
    """Print the latest outbox SMS/mail as JSON lines, newest first."""
    for message in storage.outbox.latest_outbox(get_db(), kind, limit):
        click.echo(json.dumps({"kind": message["kind"], "to": message["recipient"], "subject": message["subject"],
                               "body": message["body"], "sent_at": message["sent_at"]}, ensure_ascii=False))


@kamusm_cli.command("settings")
def settings_command() -> None:
    """Print every setting with its default and meaning (the text of docs/settings.md)."""
    click.echo(settings_markdown(), nl=False)


@kamusm_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_command(path: str) -> None:
    """Load a card roster CSV: all rows or, if any row is bad, none (every bad line named)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException("the file is not UTF-8 text") from None
    db, now = get_db(), current.now()
    try:
        rows = roster.parse_roster(text, current_app.config["KAMUSM_EMAIL_DOMAINS"])
    except roster.RosterError as exc:
        audit.record(db, now, "admin.import", "rejected", bad_lines=len(exc.problems))
        click.echo(f"nothing imported; {len(exc.problems)} bad line(s):", err=True)
        for line, reason in exc.problems:
            click.echo(f"  line {line}: {reason}", err=True)
        sys.exit(1)
    hasher = current_app.extensions["kamusm.hasher"]
    with click.progressbar(length=len(rows), label="importing", file=sys.stderr) as bar:
        count = roster.import_rows(db, rows, vault.app_keyring(), hasher.hash, now, on_row=lambda: bar.update(1))
    audit.record(db, now, "admin.import", "ok", rows=count)
    certificates.issue_for_new_cards(db, Path(current_app.instance_path), current_app.config["KAMUSM_DEMO"],
                                     current_app.config["KAMUSM_PUBLIC_URL"], now)
    without_word = sum(1 for row in rows if not row.security_word)
    click.echo(f"{count} row(s) imported; {without_word} holder(s) without a security word "
               "(give them `kamusm holder reset-link IDENTITY`)")


@kamusm_cli.command("rotate-vault-key")
def rotate_vault_key_command() -> None:
    """Re-wrap every data key under a new key-encryption key (resumable after a crash)."""
    db, config = get_db(), current_app.config
    if config["KAMUSM_VAULT_KEY"]:
        if not config["KAMUSM_VAULT_KEY_NEXT"]:
            raise click.ClickException("with KAMUSM_VAULT_KEY set, put the new key in KAMUSM_VAULT_KEY_NEXT")
        keyring = vault.app_keyring()
        count = vault.rewrap_all(db, keyring, keyring.current)
        message = "now set KAMUSM_VAULT_KEY to the value of KAMUSM_VAULT_KEY_NEXT and remove the latter"
    else:
        count = vault.rotate_key_file(db, Path(current_app.instance_path))
        message = "instance/vault.key replaced"
    audit.record(db, current.now(), "admin.rotate_vault_key", "ok", rewrapped=count)
    click.echo(f"{count} data key(s) re-wrapped; {message}")


@kamusm_cli.command("purge")
def purge_command() -> None:
    """Delete expired sessions now (the server also does it every few minutes while it serves)."""
    config = current_app.config
    purged = housekeeping.purge_expired_sessions(get_db(), current.now(), config["KAMUSM_SESSION_IDLE_SECONDS"],
                                                 config["KAMUSM_SESSION_MAX_SECONDS"],
                                                 config["KAMUSM_ADMIN_IDLE_SECONDS"])
    audit.record(get_db(), current.now(), "admin.purge", "ok", sessions=purged)
    click.echo(f"{purged} expired session(s) deleted")


@kamusm_cli.command("helper")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True, help=helper.PORT_HELP)
@click.option("--origin", "origins", multiple=True, metavar="URL",
              help=f"{helper.ORIGIN_HELP} Default: KAMUSM_PUBLIC_URL, else {DEFAULT_PORTAL_ORIGIN}.")
@click.option("--backend", type=click.Choice(BACKENDS), default="pcsc", show_default=True, help=helper.BACKEND_HELP)
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None, help=helper.HOME_HELP)
def helper_command(port: int, origins: tuple[str, ...], backend: str, home: Path | None) -> None:
    """Run the local card helper on 127.0.0.1 for the portal's /unlock page (as kamusm-helper does)."""
    default_origin = current_app.config["KAMUSM_PUBLIC_URL"] or DEFAULT_PORTAL_ORIGIN
    try:
        helper.run(port, list(origins) or [default_origin], backend, home)
    except (HelperSetupError, OSError) as error:
        raise click.ClickException(str(error)) from error


for group in (holder_cli, mail_cli, audit_cli, certificates_cli, operator_cli, reminders_cli, db_cli):
    kamusm_cli.add_command(group)
kamusm_cli.add_command(scenario_command)


def init_app(app: Flask) -> None:
    app.cli.add_command(kamusm_cli)

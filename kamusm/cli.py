"""`flask --app app kamusm …`: the operator's commands. No secret is printed."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from kamusm import audit, certificates, helper, mail, reset, roster, storage, vault
from kamusm.config import settings_markdown
from kamusm.contact import normalize_email, normalize_phone
from kamusm.db import get_db
from kamusm.demo import load_demo_holders
from kamusm.errors import ValidationError
from kamusm.helper import BACKENDS, DEFAULT_PORT, DEFAULT_PORTAL_ORIGIN, HelperSetupError
from kamusm.identity import normalize_identity

kamusm_cli = AppGroup("kamusm", help="kamusm portal administration.")


def _now() -> float:
    return current_app.config["CLOCK"]()


@kamusm_cli.command("init")
def init_command() -> None:
    """Create or upgrade the database and the instance keys."""
    version = storage.migrations.migrate(get_db())
    vault.app_keyring()
    if current_app.config["KAMUSM_DEMO"]:
        certificates.ensure_demo_ca(get_db(), Path(current_app.instance_path), _now())
    audit.record(get_db(), _now(), "admin.init", "ok", schema=version)
    click.echo(f"database ready at schema version {version}: {current_app.config['DATABASE']}")


@kamusm_cli.command("demo")
def demo_command() -> None:
    """Load (or refresh) the demo holders of DESIGN.md."""
    ids = load_demo_holders(get_db(), current_app.extensions["kamusm.hasher"], vault.app_keyring(), _now())
    certificates.issue_demo_certificates(get_db(), Path(current_app.instance_path),
                                         current_app.config["KAMUSM_PUBLIC_URL"], _now())
    audit.record(get_db(), _now(), "admin.demo", "ok", holders=len(ids))
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
    db, now = get_db(), _now()
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
    audit.record(db, _now(), "admin.rotate_vault_key", "ok", rewrapped=count)
    click.echo(f"{count} data key(s) re-wrapped; {message}")


holder_cli = AppGroup("holder", help="Card holders.")
kamusm_cli.add_command(holder_cli)


ADMIN_LOCK_SECONDS = 100 * 365 * 24 * 3600


def _holder_or_fail(db, identity: str) -> dict:
    holder = storage.holders.find_holder(db, identity.strip().upper())
    if holder is None:
        raise click.ClickException("no holder with that identity")
    return holder


@holder_cli.command("add")
@click.option("--identity", required=True, help="T.C. Kimlik No or passport number.")
@click.option("--name", required=True)
@click.option("--phone", required=True, help="Turkish mobile, e.g. 05XX XXX XX XX.")
@click.option("--email", required=True, help="Institutional e-mail address.")
def holder_add_command(identity: str, name: str, phone: str, email: str) -> None:
    """Add a holder without a security word (then give them `holder reset-link`)."""
    db, now = get_db(), _now()
    try:
        record = {"identity": normalize_identity(identity), "name": name.strip(), "phone": normalize_phone(phone),
                  "email": normalize_email(email, current_app.config["KAMUSM_EMAIL_DOMAINS"]), "word_hash": None}
    except ValidationError as exc:
        raise click.ClickException(f"{exc.field or 'identity'}: {exc}") from None
    if not record["name"] or len(record["name"]) > 100:
        raise click.ClickException("name: 1 to 100 characters")
    if storage.holders.find_holder(db, record["identity"]) is not None:
        raise click.ClickException("a holder with that identity exists already")
    with storage.write(db):  # the holder and its audit entry land together
        holder_id = storage.holders.upsert_holder(db, record, now)
        audit.record(db, now, "admin.holder_add", "ok", holder_id)
    click.echo(f"holder {record['identity']} added; give them `kamusm holder reset-link {record['identity']}`")


@holder_cli.command("show")
@click.argument("identity")
def holder_show_command(identity: str) -> None:
    """Print what the portal knows of a holder, never a secret."""
    db, now = get_db(), _now()
    holder = _holder_or_fail(db, identity)
    click.echo(json.dumps({
        "identity": holder["identity"], "name": holder["name"], "phone": holder["phone"], "email": holder["email"],
        "security_word_set": holder["word_hash"] is not None, "failed_logins": holder["failed_logins"],
        "locked": holder["locked_until"] > now,
        "cards": [{"serial": card["serial"], "cert_issued": card["cert_issued"],
                   "secrets_stored": bool(storage.vault.card_secrets(db, holder["id"], card["serial"])),
                   "pin_replaced": card["pin_replaced_at"] is not None}
                  for card in storage.cards.holder_cards(db, holder["id"])],
    }, ensure_ascii=False, indent=2))


@holder_cli.command("lock")
@click.argument("identity")
def holder_lock_command(identity: str) -> None:
    """Lock the holder out until `holder unlock`, and end their sessions."""
    db, now = get_db(), _now()
    holder = _holder_or_fail(db, identity)
    with storage.write(db):
        storage.holders.lock_holder(db, holder["id"], now + ADMIN_LOCK_SECONDS)
        ended = storage.sessions.delete_holder_sessions(db, holder["id"])
        audit.record(db, now, "admin.holder_lock", "ok", holder["id"], sessions_ended=ended)
    click.echo(f"holder {holder['identity']} locked; {ended} session(s) ended")


@holder_cli.command("unlock")
@click.argument("identity")
def holder_unlock_command(identity: str) -> None:
    """Lift a lock (the administrator's or the failed-login lockout)."""
    db, now = get_db(), _now()
    holder = _holder_or_fail(db, identity)
    with storage.write(db):
        storage.holders.clear_login_failures(db, holder["id"])
        audit.record(db, now, "admin.holder_unlock", "ok", holder["id"])
    click.echo(f"holder {holder['identity']} unlocked")


@holder_cli.command("reset-link")
@click.argument("identity")
def holder_reset_link_command(identity: str) -> None:
    """Print a one-time link that sets the holder's security word (activation if none is set)."""
    db, now = get_db(), _now()
    holder = _holder_or_fail(db, identity)
    purpose = reset.PURPOSE_ACTIVATION if holder["word_hash"] is None else reset.PURPOSE_RESET
    token = reset.issue_link_token(db, holder["id"], purpose, now)
    audit.record(db, now, "admin.reset_link", "ok", holder["id"], purpose=purpose)
    with current_app.test_request_context():
        click.echo(reset.link_for(token))


mail_cli = AppGroup("mail", help="The mail queue.")
kamusm_cli.add_command(mail_cli)


@mail_cli.command("retry")
def mail_retry_command() -> None:
    """Deliver every queued message that has not gone out yet."""
    db, now = get_db(), _now()
    sent, failed = mail.retry_pending(db, mail.make_backend(current_app.config, db, current_app.config["CLOCK"]), now)
    click.echo(f"{sent} sent, {failed} still failing")
    if failed:
        sys.exit(1)


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


kamusm_cli.add_command(certificates.certificates_cli)


def init_app(app: Flask) -> None:
    app.cli.add_command(kamusm_cli)

"""flask kamusm holder: add, show, lock, unlock, a reset link."""
from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from kamusm import audit, reset, roster, storage
from kamusm.contact import normalize_email, normalize_phone
from kamusm.errors import ValidationError
from kamusm.identity import normalize_identity
from kamusm.web import current, rendering
from kamusm.web.db import get_db

holder_cli = AppGroup("holder", help="Card holders.")



ADMIN_LOCK_SECONDS = 100 * 365 * 24 * 3600


def _holder_or_fail(db, identity: str) -> dict:
    try:
        holder = storage.holders.find_holder(db, normalize_identity(identity))
    except ValidationError as exc:
        raise click.ClickException(f"identity: {exc}") from None
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
    db, now = get_db(), current.now()
    try:
        record = {"identity": normalize_identity(identity), "name": name.strip(), "phone": normalize_phone(phone),
                  "email": normalize_email(email, current_app.config["KAMUSM_EMAIL_DOMAINS"]), "word_hash": None}
    except ValidationError as exc:
        raise click.ClickException(f"{exc.field}: {exc}") from None
    if not record["name"] or len(record["name"]) > roster.NAME_MAX_LENGTH:
        raise click.ClickException(f"name: 1 to {roster.NAME_MAX_LENGTH} characters")
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
    db, now = get_db(), current.now()
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
    db, now = get_db(), current.now()
    holder = _holder_or_fail(db, identity)
    with storage.write(db):
        storage.holders.lock_out(db, holder["id"], storage.holders.LOGIN, now + ADMIN_LOCK_SECONDS)
        ended = storage.sessions.delete_holder_sessions(db, holder["id"])
        audit.record(db, now, "admin.holder_lock", "ok", holder["id"], sessions_ended=ended)
    click.echo(f"holder {holder['identity']} locked; {ended} session(s) ended")


@holder_cli.command("unlock")
@click.argument("identity")
def holder_unlock_command(identity: str) -> None:
    """Lift a lock (the administrator's or the failed-login lockout)."""
    db, now = get_db(), current.now()
    holder = _holder_or_fail(db, identity)
    with storage.write(db):
        storage.holders.clear_failures(db, holder["id"], storage.holders.LOGIN)
        audit.record(db, now, "admin.holder_unlock", "ok", holder["id"])
    click.echo(f"holder {holder['identity']} unlocked")


@holder_cli.command("reset-link")
@click.argument("identity")
def holder_reset_link_command(identity: str) -> None:
    """Print a one-time link that sets the holder's security word (activation if none is set)."""
    db, now = get_db(), current.now()
    holder = _holder_or_fail(db, identity)
    purpose = reset.PURPOSE_ACTIVATION if holder["word_hash"] is None else reset.PURPOSE_RESET
    token = reset.issue_link_token(db, holder["id"], purpose, now)
    audit.record(db, now, "admin.reset_link", "ok", holder["id"], purpose=purpose)
    with current_app.test_request_context():
        click.echo(rendering.link_for(token))

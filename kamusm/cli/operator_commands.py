"""flask kamusm operator: accounts of the institution console (/admin)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from kamusm import operators, storage
from kamusm.errors import ValidationError
from kamusm.web import current
from kamusm.web.db import get_db
from kamusm.web.views.admin import enrolment_link

operator_cli = AppGroup("operator", help="Operators of the institution console (/admin).")


def _enrolment_link(token: str) -> str:
    with current_app.test_request_context():
        return enrolment_link(token)


@operator_cli.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(operators.ROLES), required=True,
              help="admin: everything; operator: holders; auditor: reads only.")
def operator_add_command(name: str, role: str) -> None:
    """Add an operator and print their one-time enrolment link (24 hours)."""
    try:
        token = operators.add(get_db(), name, role, current.now())
    except ValidationError as exc:
        raise click.ClickException(f"{exc.field}: {exc}") from None
    click.echo(_enrolment_link(token))


@operator_cli.command("reenrol")
@click.argument("name")
def operator_reenrol_command(name: str) -> None:
    """Print a new enrolment link for an operator who lost the password or the app; the old ones stop."""
    try:
        token = operators.reissue(get_db(), name, current.now())
    except ValidationError as exc:
        raise click.ClickException(f"{exc.field}: {exc}") from None
    click.echo(_enrolment_link(token))


@operator_cli.command("list")
def operator_list_command() -> None:
    """Name, role and state of every operator."""
    for row in storage.operators.all_operators(get_db()):
        state = "enrolled" if row["password_hash"] else "waiting for enrolment"
        click.echo(f"{row['name']}\t{row['role']}\t{state}")

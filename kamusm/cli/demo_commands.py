"""flask kamusm scenario NAME [--holder IDENTITY], and `kamusm demo --reset`: teaching mode (docs/teaching.md).

Both change the demo holders only, and only in demo mode; nothing they print is a secret."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from kamusm import scenarios
from kamusm.web import current
from kamusm.web.db import get_db

RESET_HELP = ("Start a class afresh: the demo holders as DESIGN.md has them, no lockout, no session, new "
              "certificates, an empty outbox and the sim card of `make demo-helper` with every try.")


def _demo_only() -> None:
    if not current_app.config["KAMUSM_DEMO"]:
        raise click.ClickException("teaching mode works in demo mode only (KAMUSM_DEMO=1)")


def reset_demo() -> None:
    """`kamusm demo --reset`."""
    _demo_only()
    counts = scenarios.reset_demo(get_db(), current_app.extensions["kamusm.hasher"],
                                  scenarios.classroom_for(current_app), current.now())
    click.echo(f"{counts['holders']} demo holders reset; {counts['sessions']} session(s) ended, "
               f"{counts['certificates']} certificate(s) issued, {counts['messages']} outbox message(s) deleted, "
               "sim card renewed")


@click.command("scenario")
@click.argument("name", type=click.Choice(scenarios.SCENARIOS))
@click.option("--holder", "identity", default=scenarios.DEFAULT_IDENTITY, show_default=True, metavar="IDENTITY",
              help="The demo holder's T.C. Kimlik No.")
@with_appcontext
def scenario_command(name: str, identity: str) -> None:
    """Put a demo holder into a teaching state (docs/teaching.md)."""
    _demo_only()
    try:
        holder = scenarios.apply_scenario(get_db(), scenarios.classroom_for(current_app), name, identity.strip(),
                                          current.now())
    except scenarios.ScenarioRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{holder['name']}: {name}")

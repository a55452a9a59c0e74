"""flask kamusm audit: verify the chain."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from kamusm import audit
from kamusm.web.db import get_db

audit_cli = AppGroup("audit", help="The tamper-evident audit log.")



@audit_cli.command("verify")
def audit_verify_command() -> None:
    """Check the hash chain; exit 1 naming the first broken entry."""
    checked, broken = audit.verify(get_db())
    if broken is not None:
        click.echo(f"audit chain broken at entry {broken} (after {checked} good entries)", err=True)
        sys.exit(1)
    click.echo(f"audit chain ok: {checked} entries")

"""flask kamusm db: move an instance's database between SQLite and PostgreSQL (docs/postgresql.md)."""
from __future__ import annotations

import os
import sys

import click
from flask.cli import AppGroup

from kamusm import audit, storage
from kamusm.storage import migrations, transfer
from kamusm.storage.connection import StorageError, describe, sqlite_path
from kamusm.web import current

db_cli = AppGroup("db", help="The portal's database.")


def _open(location: str, must_exist: bool):
    path = sqlite_path(location)
    if must_exist and path is not None and not os.path.exists(path):
        raise click.ClickException(f"no database at {path}")
    try:
        return storage.connect(location)
    except StorageError as error:
        raise click.ClickException(f"cannot open {describe(location)}: {error}") from None


@db_cli.command("copy")
@click.argument("source")
@click.argument("target")
def db_copy_command(source: str, target: str) -> None:
    """Copy every row from SOURCE to the empty TARGET (sqlite:///PATH or postgresql://…), check, then verify the
    audit chain there. Stop the portal first: rows written during the copy stay behind."""
    source_db, target_db = _open(source, must_exist=True), _open(target, must_exist=False)
    try:
        latest = len(migrations.MIGRATIONS)
        if migrations.schema_version(source_db) != latest:
            raise click.ClickException(f"the source is not at schema version {latest}: run `kamusm init` on it first")
        migrations.migrate(target_db)
        counts = transfer.copy_all(source_db, target_db)
        for table, count in counts.items():
            click.echo(f"{table}: {count}")
        checked, broken = audit.verify(target_db)
        if broken is not None:
            click.echo(f"copied, but the audit chain is broken at entry {broken} (after {checked} good entries), "
                       "as it was in the source", err=True)
            sys.exit(1)
        audit.record(target_db, current.now(), "admin.db_copy", "ok", source=describe(source),
                     rows=sum(counts.values()))
        click.echo(f"{sum(counts.values())} rows copied to {describe(target)}; audit chain ok: {checked} entries")
    except transfer.CopyMismatch as error:
        raise click.ClickException(f"nothing copied: {error}") from None
    except StorageError as error:
        raise click.ClickException(f"the copy stopped, nothing of it was kept: {error}") from None
    finally:
        source_db.conn.close()
        target_db.conn.close()

"""flask kamusm certificates: the export of status changes, a certificate's PEM."""
from __future__ import annotations

import heapq
import json

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask.cli import AppGroup

from kamusm import audit, renewals, storage
from kamusm.certificates import export_lines, parse_since
from kamusm.web import current
from kamusm.web.db import get_db

certificates_cli = AppGroup("certificates", help="Certificate status: the export of changes, the demo certificates.")


@certificates_cli.command("export")
@click.option("--since", metavar="TIMESTAMP", default="0",
              help="Only changes at or after this time: UNIX seconds or ISO 8601 (UTC when no zone is given).")
def export_command(since: str) -> None:
    """Print status changes (suspend, resume, revoke) and renewal requests (kind "renewal") as JSON lines,
    oldest first."""
    try:
        start = parse_since(since)
    except ValueError:
        raise click.BadParameter("give UNIX seconds or an ISO 8601 time", param_hint="--since") from None
    db = get_db()
    count = 0
    for line in heapq.merge(export_lines(db, start), renewals.export_lines(db, start),
                            key=lambda line: json.loads(line)["at"]):
        click.echo(line)
        count += 1
    audit.record(db, current.now(), "admin.certificates_export", "ok", changes=count)


@certificates_cli.command("pem")
@click.argument("card_serial")
def pem_command(card_serial: str) -> None:
    """Print the newest certificate of a card as PEM (for `openssl ocsp -cert`); the CA's is instance/ca.pem."""
    row = storage.certificates.latest_card_certificate(get_db(), card_serial)
    if row is None or row["der"] is None:
        raise click.ClickException("no certificate issued by this portal for that card")
    cert = x509.load_der_x509_certificate(row["der"])
    click.echo(cert.public_bytes(Encoding.PEM).decode(), nl=False)

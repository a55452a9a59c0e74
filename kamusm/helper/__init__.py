"""The local card helper: a small HTTP service on 127.0.0.1 that the portal's /unlock page reaches
from the holder's browser, and that talks to the card.

Run it with ``python -m kamusm.helper`` or ``flask --app app kamusm helper`` (the click command
``helper_command``; the same options: --port, --origin (repeatable), --backend pcsc|sim, --home).
Standard library HTTP: no Flask app is created, so it runs on a holder's PC. The JSON API and its
error names are fixed by DESIGN.md ("Card and local helper"); docs/helper.md lists the statuses.

Responsibilities, from the outside in:
- ``HelperRequestHandler``: the HTTP surface. Checks Host and Origin, answers CORS preflights,
  reads and validates JSON bodies, maps errors to statuses, logs one line per request.
- ``Helper``: the domain. The X25519 key, the used seal ids, the card backend and the rule of
  one card operation at a time.
- ``UsedSeals``: seal ids already spent, in memory and in a file, until they expire.

Security assumptions:
- Binds 127.0.0.1 only. Every request, preflights included, must carry the Host
  127.0.0.1:PORT or localhost:PORT (a DNS-rebinding page sends its own name) and an Origin that
  is exactly one of the configured portal origins; anything else is refused (403
  forbidden_origin) before any card operation. Browsers cannot forge Origin; local processes
  can, and are outside what this check protects (docs/helper.md, "Threat model").
- The PUK arrives sealed for this helper's key (kamusm.sealing). It is opened for the serial read
  inside the same exclusive card connection that sends it, and its seal id is recorded (fsynced)
  before the PUK goes to the card, so a seal works once, across restarts too.
- No PIN, PUK, new PIN or seal text reaches a log line, an exception message or an answer: the log
  has method, known path, status and error name only; error messages are fixed strings that name
  fields, never values.
- One card operation at a time: a second one answers busy at once, never queues PIN tries.
- The key file is 0600 in a 0700 directory; the helper refuses to start if either is wider.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from flask import current_app, has_app_context

from kamusm.helper.server import HelperRequestHandler, HelperServer, make_server, normalize_origin, serve
from kamusm.helper.service import (
    BACKENDS,
    DEFAULT_PORT,
    DEFAULT_PORTAL_ORIGIN,
    HELPER_VERSION,
    Helper,
    HelperSetupError,
    UsedSeals,
    default_home,
    log,
    make_backend,
)

__all__ = ["BACKENDS", "DEFAULT_PORT", "HELPER_VERSION", "Helper", "HelperRequestHandler", "HelperServer",
           "HelperSetupError", "UsedSeals", "helper_command", "main", "make_backend", "make_server",
           "normalize_origin", "serve"]

def _default_origin() -> str:
    """KAMUSM_PUBLIC_URL of the current Flask app (under ``flask kamusm helper``), else the local portal."""
    if has_app_context():
        return current_app.config.get("KAMUSM_PUBLIC_URL") or DEFAULT_PORTAL_ORIGIN
    return DEFAULT_PORTAL_ORIGIN


@click.command("helper")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="TCP port on 127.0.0.1 (the portal's KAMUSM_HELPER_URL must name it).")
@click.option("--origin", "origins", multiple=True, metavar="URL",
              help="A portal origin allowed to call the helper (repeatable; exact match). "
                   "Default: KAMUSM_PUBLIC_URL under flask, else http://127.0.0.1:5000.")
@click.option("--backend", type=click.Choice(BACKENDS), default="pcsc", show_default=True,
              help="pcsc: real readers through pcscd; sim: the simulated demo card (serial 14000001).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the helper's key, used seal ids and the sim card "
                   "(default: $XDG_CONFIG_HOME/kamusm-helper or ~/.config/kamusm-helper).")
def helper_command(port: int, origins: tuple[str, ...], backend: str, home: Path | None) -> None:
    """Run the local card helper on 127.0.0.1 for the portal's /unlock page."""
    # Its own handler, not propagated: under `flask` the "kamusm" logger has Flask's handler too,
    # which would print every line twice.
    # Taken off again when the helper stops, so a process that runs the command twice (the tests)
    # neither doubles its lines nor keeps writing to a stream that has gone.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    propagate, level = log.propagate, log.level
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        serve(port, list(origins) or [_default_origin()], backend, home or default_home())
    except (HelperSetupError, OSError) as error:
        raise click.ClickException(str(error)) from error
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
        log.setLevel(level)


def main(argv: list[str] | None = None) -> None:
    """``python -m kamusm.helper [--port 8765] [--origin URL ...] [--backend pcsc|sim] [--home DIR]``.

    The same command as ``flask --app app kamusm helper``; exits the process when done.
    """
    helper_command.main(args=argv, prog_name="python -m kamusm.helper")


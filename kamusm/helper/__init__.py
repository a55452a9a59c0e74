"""The local card helper: a small HTTP service on 127.0.0.1 that the portal's /unlock page reaches
from the holder's browser, and that talks to the card.

Run it as ``kamusm-helper`` (the wheel the portal serves at /helper/, built by ``make helper-dist``),
``python -m kamusm.helper`` or ``flask --app app kamusm helper`` (kamusm.cli); the same options:
--port, --origin (repeatable), --backend pcsc|sim, --home. Standard library HTTP and argparse, no
Flask or click: the wheel ships this package with kamusm.card, kamusm.sealing and kamusm.keys only,
and needs nothing but cryptography and pyscard on a holder's PC. The JSON API and its
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

import argparse
import logging
import sys
from pathlib import Path

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

__all__ = ["BACKENDS", "DEFAULT_PORT", "DEFAULT_PORTAL_ORIGIN", "HELPER_VERSION", "Helper", "HelperRequestHandler",
           "HelperServer", "HelperSetupError", "UsedSeals", "default_home", "main", "make_backend", "make_server",
           "normalize_origin", "run", "serve"]

PORT_HELP = "TCP port on 127.0.0.1 (the portal's KAMUSM_HELPER_URL must name it)."
ORIGIN_HELP = "A portal origin allowed to call the helper (repeatable; exact match)."
BACKEND_HELP = "pcsc: real readers through pcscd; sim: the simulated demo card (serial 14000001)."
HOME_HELP = ("Folder for the helper's key, used seal ids and the sim card "
             "(default: $XDG_CONFIG_HOME/kamusm-helper or ~/.config/kamusm-helper).")


def run(port: int, origins: list[str], backend: str, home: Path | None) -> None:
    """Serve until interrupted, logging one line per request to standard error.

    Raises HelperSetupError or OSError (port taken) at start.
    """
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
        serve(port, origins, backend, home or default_home())
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
        log.setLevel(level)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not in 0..65535")
    return port


def argument_parser(prog: str = "kamusm-helper") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run the local card helper on 127.0.0.1 "
                                                            "for the portal's /unlock page.")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"{PORT_HELP} Default: {DEFAULT_PORT}.")
    parser.add_argument("--origin", dest="origins", action="append", default=[], metavar="URL",
                        help=f"{ORIGIN_HELP} Default: {DEFAULT_PORTAL_ORIGIN}.")
    parser.add_argument("--backend", choices=BACKENDS, default="pcsc", help=f"{BACKEND_HELP} Default: pcsc.")
    parser.add_argument("--home", type=Path, default=None, metavar="DIR", help=HOME_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {HELPER_VERSION}")
    return parser


def main(argv: list[str] | None = None, prog: str = "kamusm-helper") -> None:
    """``kamusm-helper`` and ``python -m kamusm.helper``: [--port 8765] [--origin URL ...]
    [--backend pcsc|sim] [--home DIR].

    Exits with status 2 for bad options, 1 when the helper cannot start (the reason on standard error).
    """
    options = argument_parser(prog).parse_args(argv)
    try:
        run(options.port, options.origins or [DEFAULT_PORTAL_ORIGIN], options.backend, options.home)
    except (HelperSetupError, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        raise SystemExit(1) from error

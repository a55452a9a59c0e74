"""A virtual card for vpcd: ``python -m kamusm.card.virtual --serial S --pin P --puk K``.

vpcd (Debian ``vsmartcard-vpcd``) is a pcscd reader driver that listens on TCP (35963 for its
first reader, "Virtual PCD 00 00"); a virtual card connects to it, and the reader shows a card
while the connection is up. Messages both ways are a 2-byte big-endian length and a payload.
From vpcd, a 1-byte payload is a control message (0x00 power off, 0x01 power on, 0x02 reset,
0x04 get ATR: only the last is answered); a longer one is a command APDU, answered with the
response APDU. The card logic is ``SimCard``, the same that the in-process ``SimBackend`` uses.

With ``--state FILE`` the card's counters and PIN survive reconnects and restarts; an existing
file wins over ``--serial/--pin/--puk``. The process reconnects whenever vpcd goes away (pcscd
restarted) and exits 0 on SIGTERM or SIGINT.

Security assumptions: this is a test and demo tool. The PIN and PUK arrive on the command line
(visible to local users in the process list) and are never printed or logged; log lines carry
connection events only. vpcd itself listens on all interfaces, so a machine running it accepts
virtual cards from its network: keep vpcd off production helpers.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

from kamusm.card.apdu import CardError
from kamusm.card.sim import SIM_ATR, SimCard

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963
# Longer than pcscd's 400 ms card-presence poll: a card that vanished and came back between two
# polls is never seen as inserted again (pcscd keeps the reader "empty" after a failed reset).
RECONNECT_DELAY_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 2.0
LENGTH_PREFIX_BYTES = 2
VPCD_CTRL_OFF = 0x00
VPCD_CTRL_ON = 0x01
VPCD_CTRL_RESET = 0x02
VPCD_CTRL_ATR = 0x04

log = logging.getLogger("kamusm.card.virtual")


def _recv_exact(sock: socket.socket, count: int) -> bytes | None:
    """Read exactly ``count`` bytes, or None when the peer closed the connection."""
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            return None
        chunks += chunk
        _ack_now(sock)
    return bytes(chunks)


def _ack_now(sock: socket.socket) -> None:
    # vpcd writes the length prefix and the payload separately; with Nagle on its side and
    # delayed ACKs on ours every APDU would stall ~40 ms. Linux clears QUICKACK after use.
    if hasattr(socket, "TCP_QUICKACK"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _send_message(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(LENGTH_PREFIX_BYTES, "big") + payload)


def serve_connection(sock: socket.socket, card: SimCard) -> None:
    """Answer vpcd on ``sock`` until it closes the connection."""
    while True:
        header = _recv_exact(sock, LENGTH_PREFIX_BYTES)
        if header is None:
            return
        payload = _recv_exact(sock, int.from_bytes(header, "big"))
        if payload is None:
            return
        if len(payload) == 1:
            control = payload[0]
            if control == VPCD_CTRL_ATR:
                _send_message(sock, SIM_ATR)
            elif control in (VPCD_CTRL_OFF, VPCD_CTRL_ON, VPCD_CTRL_RESET):
                card.reset()
            else:
                log.warning("ignoring unknown vpcd control message 0x%02X", control)
        else:
            _send_message(sock, card.process(payload))


class VirtualCard:
    """Keeps ``card`` connected to vpcd at host:port until ``stop()``."""

    def __init__(self, card: SimCard, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.card = card
        self.host = host
        self.port = port
        self._stopped = threading.Event()
        self._sock: socket.socket | None = None

    def stop(self) -> None:
        """Ask ``run`` to return; safe from a signal handler or another thread."""
        self._stopped.set()
        sock = self._sock
        if sock is not None:
            # Wakes the blocking recv() in run(); the socket is closed there.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                log.debug("socket was already closed")

    def run(self) -> None:
        """Connect, serve, and reconnect after any drop, until stopped."""
        was_refused = False
        while not self._stopped.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_SECONDS)
            except OSError:
                # vpcd is absent while pcscd is down; say so once, not every half second.
                if not was_refused:
                    log.info("vpcd not reachable at %s:%d; retrying", self.host, self.port)
                was_refused = True
                self._stopped.wait(RECONNECT_DELAY_SECONDS)
                continue
            was_refused = False
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _ack_now(sock)
            self._sock = sock
            log.info("connected to vpcd at %s:%d", self.host, self.port)
            try:
                if not self._stopped.is_set():
                    serve_connection(sock, self.card)
            except OSError as error:
                log.info("vpcd connection lost (%s)", error.strerror or type(error).__name__)
            finally:
                self._sock = None
                sock.close()
                self.card.reset()
            if not self._stopped.is_set():
                log.info("vpcd closed the connection; reconnecting")
                self._stopped.wait(RECONNECT_DELAY_SECONDS)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kamusm.card.virtual",
        description="Serve a simulated e-signature card to vpcd (vsmartcard-vpcd).",
    )
    parser.add_argument("--serial", help="card serial (for a new card)")
    parser.add_argument("--pin", help="PIN, 4-8 digits (for a new card)")
    parser.add_argument("--puk", help="PUK, 8 digits (for a new card)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="vpcd host (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="vpcd port (default %(default)s)")
    parser.add_argument("--state", type=Path, help="JSON state file; if it exists it wins over --serial/--pin/--puk")
    args = parser.parse_args(argv)
    if (args.state is None or not args.state.exists()) and None in (args.serial, args.pin, args.puk):
        parser.error("--serial, --pin and --puk are required unless --state names an existing file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        if args.state is not None:
            card = SimCard.load_or_create(args.state, args.serial, args.pin, args.puk)
        else:
            card = SimCard(args.serial, args.pin, args.puk)
    except CardError as error:
        # The message names the rule broken, never the value given.
        log.error("invalid card data: %s", error.message)
        return 2
    except (OSError, ValueError, KeyError) as error:
        log.error("cannot use state file %s: %s", args.state, type(error).__name__)
        return 2

    virtual = VirtualCard(card, args.host, args.port)

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        virtual.stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    log.info("virtual card %s ready", card.serial)
    virtual.run()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

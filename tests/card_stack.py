"""The real card stack for integration tests: pcscd, the vpcd reader driver, and a virtual card.

``card_stack`` (module scope) makes sure pcscd is running: if one already answers it is used
and left alone, else ``pcscd -f`` is started here and stopped at the end. pcscd loads vpcd from
/etc/reader.conf.d/vpcd, which listens on TCP 35963 for the reader "Virtual PCD 00 00".
``start_card`` runs ``python -m kamusm.card.virtual`` against that port with a state file in a
temporary folder and waits until pcscd reports the card present.

Missing system parts (pcscd, the vpcd driver, pyscard) skip the tests on a developer machine
and fail them when CI=true, so CI cannot pass by running nothing.

Two pcscd facts shape the waits here: pcscd polls vpcd for the card every 400 ms, and a card
that disappears during a transaction and comes back before pcscd's next poll is never seen
again (the reader stays "empty"), so a killed card is given REMOVAL_SETTLE_SECONDS before it
returns, as a person pulling and re-inserting a card always does.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
VIRTUAL_READER = "Virtual PCD 00 00"
VIRTUAL_READERS = {"Virtual PCD 00 00", "Virtual PCD 00 01"}
VPCD_PORT = 35963
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_READER_CONF = Path("/etc/reader.conf.d/vpcd")
STARTUP_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0
POLL_INTERVAL_SECONDS = 0.05
REMOVAL_SETTLE_SECONDS = 1.0

SERIAL = "14000001"
PIN = "482916"
PUK = "73910284"


def _pcscd_binary() -> str | None:
    # /usr/sbin is not on every user's PATH.
    return shutil.which("pcscd", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def require_card_stack() -> None:
    """Skip (developer machine) or fail (CI=true) when a system part is missing."""
    missing = []
    if _pcscd_binary() is None:
        missing.append("pcscd (apt package pcscd)")
    if not VPCD_DRIVER.exists() or not VPCD_READER_CONF.exists():
        missing.append(f"the vpcd reader driver {VPCD_DRIVER} / {VPCD_READER_CONF} (apt package vsmartcard-vpcd)")
    try:
        import smartcard.scard  # noqa: F401  (only whether it imports)
    except ImportError:
        missing.append("pyscard (pip package pyscard; building it needs apt swig and libpcsclite-dev)")
    if not missing:
        return
    message = "card integration tests need: " + "; ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def reader_state(reader: str = VIRTUAL_READER) -> int | None:
    """pcscd's event state of ``reader``, or None when pcscd does not answer."""
    from smartcard import scard

    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        return None
    try:
        result, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        return states[0][1] if result == scard.SCARD_S_SUCCESS else None
    finally:
        scard.SCardReleaseContext(context)


def card_present() -> bool:
    from smartcard import scard

    state = reader_state()
    return state is not None and bool(state & scard.SCARD_STATE_PRESENT)


def card_absent() -> bool:
    from smartcard import scard

    state = reader_state()
    return state is not None and bool(state & scard.SCARD_STATE_EMPTY)


def pcscd_answers() -> bool:
    from smartcard import scard

    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        return False
    scard.SCardReleaseContext(context)
    return True


def _tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class CardStack:
    """pcscd (owned or borrowed) plus at most one virtual card process."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.state_path = work_dir / "card.json"
        self.pcscd: subprocess.Popen[bytes] | None = None
        self.card: subprocess.Popen[bytes] | None = None
        self._card_killed = False

    @property
    def owns_pcscd(self) -> bool:
        return self.pcscd is not None

    def wait_until(self, condition, what: str, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"timed out waiting for {what}\n--- pcscd log ---\n{_tail(self.work_dir / 'pcscd.log')}"
                    f"\n--- virtual card log ---\n{_tail(self.work_dir / 'card.log')}",
                    pytrace=False,
                )
            time.sleep(POLL_INTERVAL_SECONDS)

    def start_pcscd(self) -> None:
        """Use the running pcscd, or start ``pcscd -f`` and own it."""
        if not pcscd_answers():
            # The child keeps its own copy of the log descriptor; ours closes at once.
            with open(self.work_dir / "pcscd.log", "ab") as log:
                self.pcscd = subprocess.Popen([_pcscd_binary(), "-f"], stdout=log, stderr=subprocess.STDOUT)
            self.wait_until(lambda: pcscd_answers() or self.pcscd.poll() is not None, "pcscd to start")
            if self.pcscd.poll() is not None:
                pytest.fail(f"pcscd exited at start:\n{_tail(self.work_dir / 'pcscd.log')}", pytrace=False)
        # pcscd answers before its drivers have registered their readers (and a pcscd still shutting
        # down from the previous module answers too), so the reader is waited for, not checked once.
        self.wait_until(lambda: reader_state() is not None,
                        f"pcscd's reader {VIRTUAL_READER!r} (is vsmartcard-vpcd installed, and was pcscd "
                        "started after it?)")

    def stop_pcscd(self) -> None:
        """Stop the pcscd this stack started (SIGTERM, so it removes its socket and pid file)."""
        if self.pcscd is None:
            return
        self.pcscd.send_signal(signal.SIGTERM)
        try:
            self.pcscd.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.pcscd.kill()
            self.pcscd.wait()
        self.pcscd = None

    def start_card(self, fresh: bool = True) -> None:
        """(Re)start the virtual card; ``fresh`` deletes its state first. Waits until it is present."""
        self.stop_card()
        if fresh:
            self.state_path.unlink(missing_ok=True)
        if self._card_killed:
            time.sleep(REMOVAL_SETTLE_SECONDS)
            self._card_killed = False
        if card_present():
            pytest.fail(f"another virtual card is already connected to vpcd port {VPCD_PORT}", pytrace=False)
        command = [
            sys.executable, "-m", "kamusm.card.virtual", "--serial", SERIAL, "--pin", PIN, "--puk", PUK,
            "--port", str(VPCD_PORT), "--state", str(self.state_path),
        ]
        with open(self.work_dir / "card.log", "ab") as log:
            self.card = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_until(lambda: card_present() or self.card.poll() is not None, "the virtual card")
        if self.card.poll() is not None:
            pytest.fail(f"the virtual card exited:\n{_tail(self.work_dir / 'card.log')}", pytrace=False)

    def stop_card(self, kill: bool = False) -> None:
        """Stop the virtual card (SIGKILL with ``kill``: a card pulled out mid-operation)."""
        if self.card is None:
            return
        if kill:
            self.card.kill()
            self._card_killed = True
        else:
            self.card.send_signal(signal.SIGTERM)
        try:
            self.card.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.card.kill()
            self.card.wait()
        self.card = None
        if pcscd_answers():
            self.wait_until(card_absent, "pcscd to see the card leave")

    def close(self) -> None:
        self.stop_card()
        self.stop_pcscd()


@pytest.fixture(scope="module", name="card_stack")
def card_stack_fixture(tmp_path_factory) -> Iterator[CardStack]:
    require_card_stack()
    stack = CardStack(tmp_path_factory.mktemp("card-stack"))
    try:
        stack.start_pcscd()
        yield stack
    finally:
        stack.close()


@pytest.fixture(name="fresh_card")
def fresh_card_fixture(card_stack) -> CardStack:
    """A new virtual card (serial 14000001, PIN 482916, PUK 73910284, 3/3 tries) in the reader."""
    card_stack.start_card(fresh=True)
    return card_stack

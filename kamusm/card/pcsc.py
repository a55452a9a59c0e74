"""PcscBackend: real readers through pcscd, with pyscard's low-level ``smartcard.scard`` API.

Rules (DESIGN.md, "Security numbers", PC/SC) and how they are met:
- One thread owns the PC/SC context: every PC/SC call runs as a job on a single worker thread
  (a one-thread executor); callers submit a job and wait for it with a timeout.
- Every operation has a timeout; a job that does not finish in time answers ``busy``. A connect
  that finishes after its caller gave up is disconnected at once, so no card stays held.
- Exclusive connection (SCARD_SHARE_EXCLUSIVE): no other application can send APDUs between our
  counter read and our VERIFY. Leaving a session disconnects with SCARD_RESET_CARD, so a PIN
  verified by us does not stay verified for the next application.
- After a service error (pcscd stopped or restarted) the context is released and rebuilt; listing
  readers and connecting are retried once on a fresh context, a transmit never is.
- Results map to DESIGN.md's names: no_reader, no_card, card_removed, busy, pcsc_unavailable.

pyscard is imported lazily (``_scard``) so the portal runs on machines without PC/SC.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from types import ModuleType
from typing import Self, TypeVar

from kamusm.card import apdu
from kamusm.card.apdu import CardError
from kamusm.card.reader import SESSION_WAIT_SECONDS, CardLink

CONTEXT_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5.0
TRANSMIT_TIMEOUT_SECONDS = 10.0
# Another application holding the card exclusively usually lets go within moments.
SHARING_RETRY_SECONDS = 2.0
SHARING_RETRY_INTERVAL_SECONDS = 0.2

log = logging.getLogger(__name__)

T = TypeVar("T")


def _scard() -> ModuleType:
    """pyscard's low-level module; CardError(pcsc_unavailable) when pyscard is not installed."""
    try:
        return importlib.import_module("smartcard.scard")
    except ImportError as error:
        raise CardError(apdu.PCSC_UNAVAILABLE, "PC/SC support (pyscard) is not installed.") from error


def _code(value: int) -> int:
    # pyscard hands back HRESULTs as unsigned ints; normalise the constants the same way.
    return value & 0xFFFFFFFF


class _ReaderInUse(CardError):
    """Another application holds the card exclusively (SCARD_E_SHARING_VIOLATION); worth a retry."""

    def __init__(self) -> None:
        super().__init__(apdu.BUSY, "The card is in use by another application.")


class _Codes:
    """HRESULT groups, read from pyscard once it is loaded."""

    def __init__(self, scard: ModuleType) -> None:
        def codes(*names: str) -> frozenset[int]:
            return frozenset(_code(getattr(scard, name)) for name in names)

        self.success = _code(scard.SCARD_S_SUCCESS)
        # The daemon is gone or restarted: the context (and every handle in it) is dead.
        self.service = codes("SCARD_E_NO_SERVICE", "SCARD_E_SERVICE_STOPPED", "SCARD_E_INVALID_HANDLE")
        self.no_readers = codes("SCARD_E_NO_READERS_AVAILABLE")
        self.reader_gone = codes("SCARD_E_UNKNOWN_READER", "SCARD_E_READER_UNAVAILABLE")
        self.no_card = codes(
            "SCARD_E_NO_SMARTCARD",
            "SCARD_W_REMOVED_CARD",
            "SCARD_W_UNPOWERED_CARD",
            "SCARD_W_UNRESPONSIVE_CARD",
            "SCARD_W_UNSUPPORTED_CARD",
        )
        # Mid-operation, any of these means the card we were talking to is no longer there
        # as we left it (pulled out, reset by someone, or the link to it broke).
        self.lost_card = self.no_card | self.reader_gone | codes(
            "SCARD_W_RESET_CARD", "SCARD_E_NOT_TRANSACTED", "SCARD_F_COMM_ERROR"
        )
        self.sharing = codes("SCARD_E_SHARING_VIOLATION")
        self.timeout = codes("SCARD_E_TIMEOUT")


class _PcscLink:
    def __init__(self, backend: PcscBackend, card: int, protocol: int, reader_name: str) -> None:
        self.reader_name = reader_name
        self._backend = backend
        self._card = card
        self._protocol = protocol

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        return self._backend._run(
            lambda: self._backend._transmit_job(self._card, self._protocol, command), TRANSMIT_TIMEOUT_SECONDS
        )


class PcscBackend:
    """Cards in PC/SC readers. ``reader`` pins one reader; else the first reader with a card is used.

    Thread-safe: any thread may call it; the PC/SC calls themselves all run on one worker
    thread. Call ``close()`` (or use it as a context manager) to release the context.
    """

    def __init__(self, reader: str | None = None) -> None:
        self.reader = reader
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kamusm-pcsc")
        self._session_lock = threading.Lock()
        # Touched by the worker thread only.
        self._context: int | None = None
        self._scard_module: ModuleType | None = None
        self._codes: _Codes | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the PC/SC context and stop the worker thread."""
        future = self._executor.submit(self._drop_context)
        try:
            future.result(timeout=CONTEXT_TIMEOUT_SECONDS)
        except FutureTimeout:
            log.warning("PC/SC worker busy at close; leaving the context to process exit")
        self._executor.shutdown(wait=False)

    def list_readers(self) -> list[str]:
        """Reader names (empty when none); raises CardError(pcsc_unavailable or busy)."""
        return self._run(self._list_readers_job, CONTEXT_TIMEOUT_SECONDS)

    @contextmanager
    def connect(self) -> Iterator[CardLink]:
        """An exclusive link to the card; raises CardError (no_reader, no_card, busy, pcsc_unavailable)."""
        if not self._session_lock.acquire(timeout=SESSION_WAIT_SECONDS):
            raise CardError(apdu.BUSY, "The card is in use by another operation.")
        try:
            card, protocol, reader_name = self._connect_waiting_for_others()
            try:
                yield _PcscLink(self, card, protocol, reader_name)
            finally:
                self._disconnect(card)
        finally:
            self._session_lock.release()

    # Caller side: submit jobs to the worker and wait with a timeout.

    def _run(self, job: Callable[[], T], timeout_seconds: float) -> T:
        future = self._executor.submit(job)
        try:
            return future.result(timeout=timeout_seconds)
        except FutureTimeout as error:
            raise CardError(apdu.BUSY, "The card reader did not answer in time.") from error

    def _connect_waiting_for_others(self) -> tuple[int, int, str]:
        deadline = time.monotonic() + SHARING_RETRY_SECONDS
        while True:
            future = self._executor.submit(self._connect_job)
            try:
                return future.result(timeout=CONNECT_TIMEOUT_SECONDS)
            except FutureTimeout as error:
                future.add_done_callback(self._release_abandoned_connection)
                raise CardError(apdu.BUSY, "The card reader did not answer in time.") from error
            except _ReaderInUse:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(SHARING_RETRY_INTERVAL_SECONDS)

    def _release_abandoned_connection(self, future: Future[tuple[int, int, str]]) -> None:
        # A connect that finished after its caller timed out would hold the card exclusively;
        # queue its disconnect (on the worker, which owns the handle).
        if future.exception() is None:
            card, _, _ = future.result()
            self._executor.submit(self._disconnect_job, card)

    def _disconnect(self, card: int) -> None:
        try:
            self._run(lambda: self._disconnect_job(card), CONNECT_TIMEOUT_SECONDS)
        except CardError as error:
            # Leaving a session must not hide the error that ended it; the handle dies with
            # the context anyway.
            log.warning("PC/SC disconnect failed: %s", error)

    # Worker side: everything below runs on the single PC/SC thread.

    def _load(self) -> tuple[ModuleType, _Codes]:
        if self._scard_module is None or self._codes is None:
            self._scard_module = _scard()
            self._codes = _Codes(self._scard_module)
        return self._scard_module, self._codes

    def _ensure_context(self) -> int:
        scard, codes = self._load()
        if self._context is None:
            result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if _code(result) != codes.success:
                raise self._service_error(result)
            self._context = context
        return self._context

    def _drop_context(self) -> None:
        if self._context is not None:
            scard, codes = self._load()
            result = scard.SCardReleaseContext(self._context)
            if _code(result) != codes.success:
                # Expected after pcscd restarted: the old context is already gone.
                log.debug("SCardReleaseContext: %s", scard.SCardGetErrorMessage(result))
            self._context = None

    def _service_error(self, result: int) -> CardError:
        scard, _ = self._load()
        self._drop_context()
        return CardError(
            apdu.PCSC_UNAVAILABLE,
            f"The smart card service is not available ({scard.SCardGetErrorMessage(result)}).",
        )

    def _with_fresh_context_retry(self, call: Callable[[int], tuple[int, T]]) -> T:
        """Run ``call(context)``; after a service error rebuild the context and try once more."""
        _, codes = self._load()
        result, value = call(self._ensure_context())
        if _code(result) in codes.service:
            self._drop_context()
            result, value = call(self._ensure_context())
            if _code(result) in codes.service:
                raise self._service_error(result)
        if _code(result) != codes.success:
            raise self._map_setup_error(result)
        return value

    def _map_setup_error(self, result: int) -> CardError:
        scard, codes = self._load()
        code = _code(result)
        if code in codes.no_readers or code in codes.reader_gone:
            return CardError(apdu.NO_READER, "No card reader found.")
        if code in codes.no_card:
            return CardError(apdu.NO_CARD, "No card in the reader.")
        if code in codes.sharing:
            return _ReaderInUse()
        if code in codes.timeout:
            return CardError(apdu.BUSY, "The card reader did not answer in time.")
        self._drop_context()
        return CardError(apdu.PCSC_UNAVAILABLE, f"PC/SC error: {scard.SCardGetErrorMessage(result)}")

    def _list_readers_job(self) -> list[str]:
        scard, codes = self._load()

        def call(context: int) -> tuple[int, list[str]]:
            result, readers = scard.SCardListReaders(context, [])
            # "No readers" is an answer, not a failure, when merely listing.
            if _code(result) in codes.no_readers:
                return codes.success, []
            return result, readers

        return list(self._with_fresh_context_retry(call))

    def _connect_job(self) -> tuple[int, int, str]:
        scard, _ = self._load()
        readers = [self.reader] if self.reader else self._list_readers_job()
        if not readers:
            raise CardError(apdu.NO_READER, "No card reader found.")
        in_use = False
        for name in readers:

            def call(context: int, name: str = name) -> tuple[int, tuple[int, int]]:
                result, card, protocol = scard.SCardConnect(
                    context, name, scard.SCARD_SHARE_EXCLUSIVE, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
                )
                return result, (card, protocol)

            try:
                card, protocol = self._with_fresh_context_retry(call)
            except _ReaderInUse:
                in_use = True
                continue
            except CardError as error:
                # With several readers, an empty one is no reason to stop looking.
                if error.error == apdu.NO_CARD:
                    continue
                raise
            log.debug("connected to %s", name)
            return card, protocol, name
        if in_use:
            raise _ReaderInUse()
        raise CardError(apdu.NO_CARD, "No card in the reader.")

    def _transmit_job(self, card: int, protocol: int, command: bytes) -> tuple[bytes, int]:
        scard, codes = self._load()
        result, response = scard.SCardTransmit(card, protocol, list(command))
        code = _code(result)
        if code == codes.success:
            return apdu.split_response(bytes(response))
        if code in codes.lost_card:
            raise CardError(apdu.CARD_REMOVED, "The card was removed during the operation.")
        if code in codes.service:
            raise self._service_error(result)
        if code in codes.timeout:
            raise CardError(apdu.BUSY, "The card reader did not answer in time.")
        raise CardError(apdu.BAD_REQUEST, f"The reader refused the command ({scard.SCardGetErrorMessage(result)}).")

    def _disconnect_job(self, card: int) -> None:
        scard, codes = self._load()
        result = scard.SCardDisconnect(card, scard.SCARD_RESET_CARD)
        if _code(result) != codes.success:
            # Normal after the card was pulled out; the handle is gone either way.
            log.debug("SCardDisconnect: %s", scard.SCardGetErrorMessage(result))

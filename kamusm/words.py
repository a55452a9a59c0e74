"""Security words: Argon2id hashing, constant-time checks, rehash when parameters rise.

An unknown identity is checked against a dummy hash made with the same
parameters, so a wrong ID costs the same time as a wrong word. What a word
may be is kamusm.policy's business; this module only hashes and checks.

Hashes run on `slots` threads of their own (per process); requests queue for
them. Argon2id is memory-hard on purpose: hashes beyond the cores do not
finish sooner, they evict each other's 19 MiB from the caches, and a burst of
logins cannot grow memory by 19 MiB per waiting request. Own threads rather
than a semaphore in the request threads: a thread that hashes again and again
reuses its 19 MiB from its malloc arena, where a different request thread each
time had the kernel fault in and zero fresh pages (bench/README.md: 23.6 ms of
server CPU per login with a semaphore, 21.5 ms with the threads).

`pause_like_check()` answers as slowly as a check without hashing: a locked
holder's refusal spends no hash but must not come back faster than a wrong ID's.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_DUMMY_WORD = "kamusm-dummy-security-word"
_CHECK_TIME_WEIGHT = 0.2  # of the newest check in the running mean: follows a burst within a few checks


@dataclass(frozen=True)
class WordCheck:
    ok: bool
    new_hash: str | None = None


class WordHasher:
    """Argon2id with the configured costs; one instance per app."""

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int, slots: int = 1):
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost,
                                      parallelism=parallelism, type=Type.ID)
        self.slots = slots
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        # Made here, not on the pool: the app is built before gunicorn forks with --preload.
        started = time.perf_counter()
        self._dummy_hash = self._hasher.hash(_DUMMY_WORD)
        self._check_seconds = time.perf_counter() - started  # until the first check is timed

    def _threads(self) -> ThreadPoolExecutor:
        """The hashing threads, started on first use in this process (a forked child has none)."""
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="argon2")
                self._pool_pid = os.getpid()
            return self._pool

    def hash(self, word: str) -> str:
        return self._threads().submit(self._hasher.hash, word).result()

    def check(self, stored_hash: str | None, word: str) -> WordCheck:
        """Check word against stored_hash (None checks against the dummy and fails).

        Returns a new hash when the stored one was made with weaker parameters.
        Argon2's verify compares in constant time.
        """
        started = time.perf_counter()
        try:
            self._threads().submit(self._hasher.verify, stored_hash or self._dummy_hash, word).result()
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return WordCheck(ok=False)
        finally:
            # Timed with the wait for a hashing thread, which is what a caller sees under load.
            self._check_seconds += (time.perf_counter() - started - self._check_seconds) * _CHECK_TIME_WEIGHT
        if stored_hash is None:
            return WordCheck(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return WordCheck(ok=True, new_hash=self.hash(word))
        return WordCheck(ok=True)

    def pause_like_check(self) -> None:
        """Wait about as long as a check takes in this process now, hashing nothing."""
        time.sleep(self._check_seconds)


"""Security words: Argon2id hashing, constant-time checks, rehash when parameters rise.

An unknown identity is checked against a dummy hash made with the same
parameters, so a wrong ID costs the same time as a wrong word.

At most `slots` hashes of one process run at once. Argon2id is memory-hard on
purpose: hashes beyond the cores do not finish sooner, they evict each other's
19 MiB from the caches and each one costs more CPU (bench/README.md: 21.7 ms
of server CPU per login with one hash per core, 27.2 ms with eight), and a
burst of logins cannot grow memory by 19 MiB per waiting request.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import lazy_gettext as _l

from kamusm.errors import ValidationError

SECURITY_WORD_MAX_LENGTH = 128
_DUMMY_WORD = "kamusm-dummy-security-word"


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
        self._slots = threading.BoundedSemaphore(slots)
        self._dummy_hash = self.hash(_DUMMY_WORD)

    def hash(self, word: str) -> str:
        with self._slots:
            return self._hasher.hash(word)

    def check(self, stored_hash: str | None, word: str) -> WordCheck:
        """Check word against stored_hash (None checks against the dummy and fails).

        Returns a new hash when the stored one was made with weaker parameters.
        Argon2's verify compares in constant time.
        """
        try:
            with self._slots:
                self._hasher.verify(stored_hash or self._dummy_hash, word)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return WordCheck(ok=False)
        if stored_hash is None:
            return WordCheck(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return WordCheck(ok=True, new_hash=self._hasher.hash(word))
        return WordCheck(ok=True)


def check_word_input(word: str) -> str:
    """Raise ValidationError for an empty or over-long security word; return it unchanged."""
    if not word:
        raise ValidationError(_l("Güvenlik sözcüğünüzü giriniz."))
    if len(word) > SECURITY_WORD_MAX_LENGTH:
        raise ValidationError(_l("Güvenlik sözcüğü en fazla %(n)d karakter olabilir.", n=SECURITY_WORD_MAX_LENGTH))
    return word

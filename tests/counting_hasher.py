"""A real WordHasher that also counts the Argon2id checks it runs and the pauses it takes instead."""
from __future__ import annotations

import threading

from kamusm.words import WordHasher


class CountingHasher(WordHasher):
    def __init__(self, memory_kib: int = 19456, time_cost: int = 2, parallelism: int = 1, slots: int = 1):
        super().__init__(memory_kib, time_cost, parallelism, slots)
        self.checks = 0
        self.pauses = 0
        self._changed = threading.Condition()

    def check(self, stored_hash, word):
        with self._changed:
            self.checks += 1
            self._changed.notify_all()
        return super().check(stored_hash, word)

    def pause_like_check(self) -> None:
        with self._changed:
            self.pauses += 1
        super().pause_like_check()

    def wait_for_checks(self, count: int, timeout: float = 30) -> bool:
        """Block until `count` checks have started (True) or the timeout passed (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.checks >= count, timeout)

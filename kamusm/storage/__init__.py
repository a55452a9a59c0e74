"""Storage: the only package that holds SQL, one module per table group.

Every function takes the sqlite-utils Database first and, where time matters, `now` as a UNIX
timestamp (float seconds), so rules can be tested with a fixed clock. Writes run inside `write(db)`.
The schema lives in migrations.py alone.
"""
from kamusm.storage import (
                            audit_log,
                            captchas,
                            cards,
                            certificates,
                            codes,
                            factors,
                            helper_keys,
                            holders,
                            mail_queue,
                            migrations,
                            operators,
                            outbox,
                            receipts,
                            reminders,
                            sessions,
                            teaching,
                            tokens,
                            vault,
)
from kamusm.storage.connection import connect, write

__all__ = ["audit_log", "captchas", "cards", "certificates", "codes", "connect", "factors", "helper_keys", "holders",
           "mail_queue", "migrations", "operators", "outbox", "receipts", "reminders", "sessions", "teaching", "tokens",
           "vault", "write"]

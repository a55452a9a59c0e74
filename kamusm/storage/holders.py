"""Holders: identity, contact, security-word hash, the login and lost-card failure counters and the lost-card code."""
from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from kamusm.storage.connection import fetch_all, fetch_one, write
from kamusm.storage.search import search_key


def find_holder(db: sqlite_utils.Database, identity: str) -> dict | None:
    return fetch_one(db, "SELECT * FROM holders WHERE identity = ?", [identity])


def get_holder(db: sqlite_utils.Database, holder_id: int) -> dict | None:
    return fetch_one(db, "SELECT * FROM holders WHERE id = ?", [holder_id])


def upsert_holder(db: sqlite_utils.Database, holder: dict, now: float) -> int:
    """Insert or update a holder by identity; return its id. A None word_hash keeps the old one."""
    with write(db):
        db.execute(
            """INSERT INTO holders (identity, name, name_key, phone, email, word_hash, created_at)
               VALUES (:identity, :name, :name_key, :phone, :email, :word_hash, :now)
               ON CONFLICT(identity) DO UPDATE SET
                 name = excluded.name, name_key = excluded.name_key, phone = excluded.phone, email = excluded.email,
                 word_hash = COALESCE(excluded.word_hash, holders.word_hash)""",
            {**holder, "name_key": search_key(holder["name"]), "now": now})
        return fetch_one(db, "SELECT id FROM holders WHERE identity = ?", [holder["identity"]])["id"]


def set_contact(db: sqlite_utils.Database, holder_id: int, field: str, value: str) -> None:
    """Set the holder's verified e-mail or phone (field "email" or "phone"; KeyError for anything else)."""
    statement = {"email": "UPDATE holders SET email = ? WHERE id = ?",
                 "phone": "UPDATE holders SET phone = ? WHERE id = ?"}[field]
    with write(db):
        db.execute(statement, [value, holder_id])


def set_word_hash(db: sqlite_utils.Database, holder_id: int, word_hash: str) -> None:
    with write(db):
        db.execute("UPDATE holders SET word_hash = ? WHERE id = ?", [word_hash, holder_id])


@dataclass(frozen=True)
class Counter:
    """One of the holder's failure counters: the column that counts failures and the one that holds the lock."""

    failures: str
    locked_until: str


# The counter statements below put column names into their SQL as text (hence the nosec B608): the names
# come from these two constants alone, which _columns enforces, and never from a caller's string, so no
# input can reach the SQL but as a bound parameter. The counters are apart so that wrong codes on /lost
# lock no one out of the login.
LOGIN = Counter("failed_logins", "locked_until")
LOST_CODE = Counter("lost_failures", "lost_locked_until")


def _columns(counter: Counter) -> tuple[str, str]:
    """The counter's two columns; ValueError for a Counter that is not LOGIN or LOST_CODE."""
    if counter not in (LOGIN, LOST_CODE):
        raise ValueError(f"not a holder counter: {counter!r}")
    return counter.failures, counter.locked_until


def count_attempt(db: sqlite_utils.Database, holder_id: int, counter: Counter, now: float) -> int | None:
    """Count one more attempt as a failure before it is checked; return the new count, or None
    (nothing counted) while the counter is locked for the holder. One conditional UPDATE, so parallel
    requests in any worker cannot all read "not locked" before one of them sets the lock."""
    failures, locked_until = _columns(counter)
    with write(db):
        row = fetch_one(db, f"""UPDATE holders SET {failures} = {failures} + 1
                                WHERE id = ? AND {locked_until} <= ? RETURNING {failures} AS failures""",  # nosec B608
                        [holder_id, now])
    return row["failures"] if row else None


def lock_out(db: sqlite_utils.Database, holder_id: int, counter: Counter, until: float) -> None:
    _, locked_until = _columns(counter)
    with write(db):
        db.execute(f"UPDATE holders SET {locked_until} = ? WHERE id = ?", [until, holder_id])  # nosec B608


def clear_failures(db: sqlite_utils.Database, holder_id: int, counter: Counter) -> None:
    failures, locked_until = _columns(counter)
    with write(db):
        # Conditional, so the common case (nothing to clear) writes no page.
        db.execute(f"""UPDATE holders SET {failures} = 0, {locked_until} = 0
                       WHERE id = ? AND ({failures} != 0 OR {locked_until} != 0)""", [holder_id])  # nosec B608


def set_sms_disabled(db: sqlite_utils.Database, holder_id: int, disabled: bool) -> None:
    with write(db):
        db.execute("UPDATE holders SET sms_disabled = ? WHERE id = ?", [int(disabled), holder_id])


def set_phone_changed_at(db: sqlite_utils.Database, holder_id: int, now: float) -> None:
    with write(db):
        db.execute("UPDATE holders SET phone_changed_at = ? WHERE id = ?", [now, holder_id])


def search_holders(db: sqlite_utils.Database, query: str, limit: int, offset: int) -> tuple[list[dict], int]:
    """Holders whose identity or a card serial starts with `query`, or whose name contains it (case and
    accents aside: search_key); one page of them by name, and how many there are in all. Empty `query`:
    every holder. The identity and serial use their indexes; the name is a scan of the short name_key."""
    if not query:
        total = fetch_one(db, "SELECT count(*) AS n FROM holders")["n"]
        rows = fetch_all(db, """SELECT id, identity, name, locked_until, failed_logins,
                                       word_hash IS NOT NULL AS word_set
                                FROM holders ORDER BY name COLLATE NOCASE, id LIMIT ? OFFSET ?""", [limit, offset])
        return rows, total
    upper = query + "\U0010ffff"
    params = [query, upper, query, upper, search_key(query)]
    total = fetch_one(db, """SELECT count(*) AS n FROM (
                               SELECT id FROM holders WHERE identity >= ? AND identity < ?
                               UNION SELECT holder_id FROM cards WHERE serial >= ? AND serial < ?
                               UNION SELECT id FROM holders WHERE instr(name_key, ?) > 0) AS matches""", params)["n"]
    rows = fetch_all(db, """SELECT id, identity, name, locked_until, failed_logins, word_hash IS NOT NULL AS word_set
                            FROM holders WHERE id IN (
                              SELECT id FROM holders WHERE identity >= ? AND identity < ?
                              UNION SELECT holder_id FROM cards WHERE serial >= ? AND serial < ?
                              UNION SELECT id FROM holders WHERE instr(name_key, ?) > 0)
                            ORDER BY name COLLATE NOCASE, id LIMIT ? OFFSET ?""", [*params, limit, offset])
    return rows, total


def set_lost_code(db: sqlite_utils.Database, holder_id: int, code_hash: str, now: float) -> None:
    """The holder's new lost-card code, one they were shown: every earlier code stops working."""
    with write(db):
        db.execute("""UPDATE holders SET lost_code_hash = ?, lost_code_issued_at = ?, lost_code_used_at = NULL
                      WHERE id = ?""", [code_hash, now, holder_id])


def set_lost_code_if_none(db: sqlite_utils.Database, holder_id: int, code_hash: str, now: float) -> bool:
    """Give the holder a lost-card code only if they have none; True when this one was stored."""
    with write(db):
        return db.execute("""UPDATE holders SET lost_code_hash = ?, lost_code_issued_at = ?, lost_code_used_at = NULL
                             WHERE id = ? AND lost_code_hash IS NULL""", [code_hash, now, holder_id]).rowcount == 1


def replace_used_lost_code(db: sqlite_utils.Database, holder_id: int, used_hash: str, unseen_hash: str,
                           now: float) -> bool:
    """Spend the code whose hash is `used_hash`, putting an unseen one in its place: True for exactly one caller."""
    with write(db):
        return db.execute("""UPDATE holders SET lost_code_hash = ?, lost_code_issued_at = ?, lost_code_used_at = ?
                             WHERE id = ? AND lost_code_hash = ?""",
                          [unseen_hash, now, now, holder_id, used_hash]).rowcount == 1

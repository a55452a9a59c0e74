"""Copying a whole instance's database to another (`kamusm db copy`), SQLite or PostgreSQL on either side.

The target is built by the same migrations and must be empty. Rows are read in one snapshot of the source and
written in one transaction on the target, which is committed only once every table holds the same rows as the
source: a digest of each table's rows, independent of their order, is compared, so a value the target's column type
would change (a fraction in an integer column) stops the copy instead of slipping through.
"""
from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from graphlib import TopologicalSorter
from itertools import islice
from typing import Any, Iterator

from kamusm.storage.connection import write
from kamusm.storage.postgres import is_postgres

BATCH_ROWS = 1000
# Table and column names go into the SQL below as text (hence the nosec B608): they come from the databases'
# own catalogs, never from a user, and _quoted refuses anything but a plain lower-case identifier.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
MIGRATION_TABLES = {"schema_version"}  # each side keeps its own record of the schema


class CopyMismatch(Exception):
    """The target does not hold what the source does; nothing was committed."""


def tables(db: Any) -> list[str]:
    """The data tables, every table after those its foreign keys point to."""
    if is_postgres(db):
        names = [row[0] for row in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE'").fetchall()]
        links = db.execute("SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
                           "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace").fetchall()
    else:
        names = [row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetchall()]
        links = [(name, row[2]) for name in names for row in db.execute(f"PRAGMA foreign_key_list({_quoted(name)})")]
    graph: dict[str, set[str]] = {name: set() for name in names if name not in MIGRATION_TABLES}
    for child, parent in links:
        if child in graph and parent != child:
            graph[child].add(parent)
    return list(TopologicalSorter(graph).static_order())


def columns(db: Any, table: str) -> list[str]:
    if is_postgres(db):
        return [row[0] for row in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
    return [row[1] for row in db.execute(f"PRAGMA table_info({_quoted(table)})")]


def _quoted(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise CopyMismatch(f"unexpected name in the schema: {name!r}")
    return f'"{name}"'


def row_counts(db: Any, names: list[str]) -> dict[str, int]:
    return {name: db.execute(f"SELECT count(*) FROM {_quoted(name)}").fetchone()[0] for name in names}  # nosec B608


def _rows(db: Any, table: str, names: list[str]) -> Iterator[tuple]:
    selected = ", ".join(map(_quoted, names))
    cursor = db.execute(f"SELECT {selected} FROM {_quoted(table)}")  # nosec B608
    while batch := cursor.fetchmany(BATCH_ROWS):
        yield from batch


def table_digest(db: Any, table: str, names: list[str]) -> str:
    """SHA-256 over the sorted digests of the rows, each row read column by column in the order of `names`."""
    digests = sorted(hashlib.sha256(repr(tuple(row)).encode()).digest() for row in _rows(db, table, names))
    return hashlib.sha256(b"".join(digests)).hexdigest()


@contextmanager
def snapshot(db: Any) -> Iterator[None]:
    """One consistent view of the source for the whole copy, without blocking its writers."""
    db.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if is_postgres(db) else "BEGIN")
    try:
        yield
    finally:
        db.conn.execute("ROLLBACK")


def _restart_identities(db: Any, table: str) -> None:
    """After rows came in with their own ids, the next id PostgreSQL hands out follows the largest."""
    for (column,) in db.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                "current_schema() AND table_name = ? AND is_identity = 'YES'", [table]).fetchall():
        db.execute(f"SELECT setval(pg_get_serial_sequence(?, ?), (SELECT COALESCE(MAX({_quoted(column)}), 0) + 1 "  # nosec B608
                   f"FROM {_quoted(table)}), false)", [table, column])


def copy_all(source: Any, target: Any) -> dict[str, int]:
    """Copy every row of `source` into the empty, migrated `target`; the rows per table.

    Raises CopyMismatch (and commits nothing) when the schemas differ, the target is not empty or a table
    does not come out identical.
    """
    names = tables(source)
    if sorted(names) != sorted(tables(target)):
        raise CopyMismatch("the two databases do not have the same tables")
    busy = [name for name, count in row_counts(target, names).items() if count]
    if busy:
        raise CopyMismatch(f"the target database is not empty ({', '.join(busy)})")
    with snapshot(source), write(target, durable=True):
        counts, digests = {}, {}
        for table in names:
            table_columns = columns(source, table)
            if sorted(table_columns) != sorted(columns(target, table)):
                raise CopyMismatch(f"table {table} has other columns in the target")
            marks = ", ".join("?" for _ in table_columns)
            selected = ", ".join(map(_quoted, table_columns))
            insert = f"INSERT INTO {_quoted(table)} ({selected}) VALUES ({marks})"  # nosec B608
            rows = _rows(source, table, table_columns)
            while batch := list(islice(rows, BATCH_ROWS)):
                target.conn.executemany(insert, batch)
            if is_postgres(target):
                _restart_identities(target, table)
            digests[table] = table_digest(source, table, table_columns)
        for table, count in row_counts(source, names).items():
            copied = row_counts(target, [table])[table]
            if copied != count or table_digest(target, table, columns(source, table)) != digests[table]:
                raise CopyMismatch(f"table {table} did not come out identical ({copied} of {count} rows)")
            counts[table] = count
    return counts

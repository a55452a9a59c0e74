"""The database connection of the current request or command.

Each thread keeps one connection for its life instead of opening one per
request: opening costs a file open and five PRAGMAs, more than the queries of
a typical page (bench/README.md). A connection goes back between requests with
no transaction open; one that met a storage fault is closed and the thread's
next request opens a fresh one. A process forked after opening connections
(gunicorn --preload) never uses its parent's: SQLite connections must not
cross fork().
"""
from __future__ import annotations

import os
import threading
import weakref

import sqlite_utils
from flask import Flask, current_app, g

from kamusm import storage
from kamusm.storage.connection import StorageError

EXTENSION = "kamusm.connections"


class _Held:
    """A thread's connection, closed when the thread ends or the pool is dropped (its thread-local slot goes,
    and this with it): a finished background job or a discarded app leaves no database connection open, which
    on PostgreSQL would be a server connection each."""

    __slots__ = ("db", "close", "__weakref__")

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.close = weakref.finalize(self, db.conn.close)


class ThreadConnections:
    """One connection per thread to one database, and a way to close them all."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._inherited: list[_Held] = []
        self._pid = os.getpid()

    def get(self) -> sqlite_utils.Database:
        if self._pid != os.getpid():
            self._forget_parent()
        held = getattr(self._local, "held", None)
        if held is None:
            held = _Held(storage.connect(self.path))
            self._local.held = held
            with self._lock:
                self._open.add(held)
        return held.db

    def release(self, db: sqlite_utils.Database, broken: bool) -> None:
        """End the request's use of db; close it when the request met a storage fault."""
        if broken:
            self.discard()
            return
        try:
            storage.connection.rollback_if_open(db)
        except StorageError:
            self.discard()

    def discard(self) -> None:
        """Close this thread's connection; the next get() opens a new one."""
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            held.close()

    def close_all(self) -> None:
        """Close every thread's connection (before the files are moved, remounted or removed)."""
        with self._lock:
            every, self._open = list(self._open), weakref.WeakSet()
        for held in every:
            held.close()
        self._local = threading.local()

    def _forget_parent(self) -> None:
        """After fork: the parent's connections are the parent's. Closing one here, or letting it be collected,
        would end it for the parent too (a PostgreSQL connection is one socket), so they are kept, unused."""
        with self._lock:
            for held in self._open:
                held.close.detach()
            self._inherited = list(self._open)
            self._open = weakref.WeakSet()
            self._local = threading.local()
            self._pid = os.getpid()


def connections(app: Flask) -> ThreadConnections:
    return app.extensions[EXTENSION]


def get_db() -> sqlite_utils.Database:
    if "db" not in g:
        g.db = connections(current_app).get()
    return g.db


def note_storage_fault() -> None:
    """The request met a storage fault that an error page handled: do not reuse its connection."""
    g.storage_fault = True


def release_db(error: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        broken = isinstance(error, StorageError) or g.pop("storage_fault", False)
        connections(current_app).release(db, broken)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = ThreadConnections(app.config["DATABASE"])
    app.teardown_appcontext(release_db)

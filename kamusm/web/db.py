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

import sqlite_utils
from flask import Flask, current_app, g

from kamusm import storage
from kamusm.storage.connection import StorageError

EXTENSION = "kamusm.connections"


class ThreadConnections:
    """One connection per thread to one database file, and a way to close them all."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set = set()
        self._pid = os.getpid()

    def get(self) -> sqlite_utils.Database:
        if self._pid != os.getpid():
            self._forget_parent()
        db = getattr(self._local, "db", None)
        if db is None:
            db = storage.connect(self.path)
            self._local.db = db
            with self._lock:
                self._open.add(db.conn)
        return db

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
        db = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            with self._lock:
                self._open.discard(db.conn)
            db.conn.close()

    def close_all(self) -> None:
        """Close every thread's connection (before the files are moved, remounted or removed)."""
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def _forget_parent(self) -> None:
        with self._lock:
            self._open = set()
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

"""One connection per thread, reused across requests; never one with a transaction left open,
never one that met a storage fault, never one inherited across fork()."""
import os
import sqlite3
import threading

import pytest

from kamusm import storage
from kamusm.web.db import ThreadConnections, connections

pytestmark = pytest.mark.sqlite_only  # SQLite's pragmas, locks and files; tests/test_postgres.py has PostgreSQL's


@pytest.fixture
def pool(app):
    pool = ThreadConnections(app.config["DATABASE"])
    yield pool
    pool.close_all()


def other_thread(function):
    result = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    thread.join()
    return result[0]


def test_a_thread_keeps_its_connection_and_threads_do_not_share(pool):
    first = pool.get()
    assert pool.get() is first
    assert other_thread(pool.get) is not first


def test_a_transaction_left_open_is_rolled_back_when_the_request_ends(pool, db):
    connection = pool.get()
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("UPDATE holders SET failed_logins = 7")
    pool.release(connection, broken=False)
    assert not connection.conn.in_transaction
    assert pool.get() is connection
    assert {row["failed_logins"] for row in db.query("SELECT failed_logins FROM holders")} == {0}


def test_a_connection_that_met_a_fault_is_replaced(pool):
    connection = pool.get()
    pool.release(connection, broken=True)
    with pytest.raises(sqlite3.ProgrammingError):
        connection.execute("SELECT 1")
    assert pool.get() is not connection


def test_close_all_closes_every_thread_connection(pool):
    mine = pool.get()
    theirs = other_thread(pool.get)
    pool.close_all()
    for connection in (mine, theirs):
        with pytest.raises(sqlite3.ProgrammingError):
            connection.execute("SELECT 1")
    assert pool.get().execute("SELECT count(*) FROM holders").fetchone()[0] == 3


def test_a_finished_threads_connection_is_closed_and_forgotten(pool):
    """A background job's thread ends: its connection goes with it, not at close_all (or never)."""
    theirs = other_thread(pool.get)
    with pytest.raises(sqlite3.ProgrammingError):
        theirs.execute("SELECT 1")
    assert len(pool._open) == 0


def test_a_forked_child_opens_its_own_connection(pool):
    parent = pool.get()
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            child = pool.get()
            ok = child is not parent and child.execute("SELECT count(*) FROM holders").fetchone()[0] == 3
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pool.get() is parent


def test_requests_of_one_thread_reuse_its_connection(app, client):
    client.get("/login")
    first = connections(app).get()
    client.get("/login")
    client.get("/login")
    assert connections(app).get() is first


def level(connection) -> int:
    return connection.execute("PRAGMA synchronous").fetchone()[0]


def test_ordinary_writes_commit_with_normal_and_durable_ones_with_full(db):
    with storage.write(db):
        assert level(db) == 1  # NORMAL
    with storage.write(db, durable=True):
        assert level(db) == 2  # FULL: fsync before COMMIT returns
        with storage.write(db, durable=True):
            assert level(db) == 2
    assert level(db) == 1


def test_a_durable_write_cannot_hide_inside_an_ordinary_one(db):
    with pytest.raises(RuntimeError, match="durable"):
        with storage.write(db):
            with storage.write(db, durable=True):
                pass
    assert not db.conn.in_transaction and level(db) == 1


def test_a_writer_waits_for_the_lock_and_gets_it_when_freed(app, db):
    holder = storage.connect(app.config["DATABASE"])
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def let_go():
        released.set()
        holder.execute("ROLLBACK")

    release = threading.Timer(0.3, let_go)
    release.start()
    try:
        with storage.write(db):
            assert released.is_set()  # the lock came only after it was let go
            db.execute("UPDATE holders SET failed_logins = 1")
    finally:
        release.join()
        holder.conn.close()
    assert db.execute("SELECT min(failed_logins) FROM holders").fetchone()[0] == 1


def test_database_runs_in_wal_with_a_busy_timeout(db):
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL; vault writes run FULL (above)

"""Counters and single use hold when requests race (separate connections, real SQLite locking)."""
import threading

from kamusm import otp, store
from kamusm.auth import check_security_word
from kamusm.errors import CodeRejected, LoginFailed
from tests.conftest import SELIN

THREADS = 20


def race(target, count=THREADS):
    barrier = threading.Barrier(count)
    results = []
    lock = threading.Lock()

    def run():
        barrier.wait()
        outcome = target()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_one_code_submitted_in_parallel_succeeds_once(app, db, clock):
    holder_id = store.find_holder(db, SELIN["identity"])["id"]
    policy = otp.CodePolicy(300, 60, 5)
    code, _ = otp.issue_code(db, app.secret_key, holder_id, "attempt-1", policy, clock())

    def submit():
        connection = store.connect(app.config["DATABASE"])
        try:
            return otp.spend_code(connection, app.secret_key, "attempt-1", code, clock())
        except CodeRejected:
            return "rejected"
        finally:
            connection.conn.close()

    results = race(submit)
    assert results.count(holder_id) == 1 and results.count("rejected") == THREADS - 1


def test_parallel_wrong_words_count_every_failure(app, db, clock):
    hasher = app.extensions["kamusm.hasher"]

    def attempt():
        connection = store.connect(app.config["DATABASE"])
        try:
            check_security_word(connection, hasher, SELIN["identity"], "wrong-word", clock(), 10)
        except LoginFailed:
            return "failed"
        finally:
            connection.conn.close()

    assert race(attempt, 8) == ["failed"] * 8
    assert store.find_holder(db, SELIN["identity"])["failed_logins"] == 8


def test_database_runs_in_wal_with_a_busy_timeout(db):
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL; vault writes run FULL (tests/test_db.py)

"""Counters and single use hold when requests race (separate connections, real locking), on SQLite and on
PostgreSQL (tests/postgres_server.py): the same rules, the same write lock discipline."""
import threading

import pytest

from kamusm import otp, reset, storage
from kamusm.auth import check_security_word
from kamusm.errors import CodeExpired, CodeRejected, LoginFailed, TooSoon
from tests.conftest import SELIN, audit_events, id_of, open_db
from tests.counting_hasher import CountingHasher

THREADS = 20


@pytest.fixture(params=["sqlite", "postgresql"])
def app_config(request, app_config):
    if request.param == "postgresql":
        return {**app_config, "KAMUSM_DATABASE_URL": request.getfixturevalue("postgres_database")}
    return app_config


BURST = 30
THRESHOLD = 5


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
    holder_id = id_of(db)
    policy = otp.CodePolicy(300, 60, 5)
    code, _ = otp.issue_code(db, app.secret_key, holder_id, "attempt-1", policy, clock())

    def submit():
        with open_db(app) as connection:
            try:
                return otp.spend_code(connection, app.secret_key, "attempt-1", code, clock())
            except CodeRejected:
                return "rejected"

    results = race(submit)
    assert results.count(holder_id) == 1 and results.count("rejected") == THREADS - 1


def test_parallel_wrong_words_count_every_failure(app, db, clock):
    hasher = app.extensions["kamusm.hasher"]

    def attempt():
        with open_db(app) as connection:
            try:
                check_security_word(connection, hasher, SELIN["identity"], "wrong-word", clock(), 10)
            except LoginFailed:
                return "failed"

    assert race(attempt, 8) == ["failed"] * 8
    assert storage.holders.find_holder(db, SELIN["identity"])["failed_logins"] == 8


def race_on_connections(app, target, count=BURST):
    """race() with target(index, connection) on a connection per thread, all opened before the start,
    so the threads reach the database together, as requests in separate workers would."""
    connections = [storage.connect(app.config["DATABASE"]) for _ in range(count)]
    indexes = iter(range(count))
    lock = threading.Lock()

    def run():
        with lock:
            index = next(indexes)
        return target(index, connections[index])

    try:
        return race(run, count)
    finally:
        for connection in connections:
            connection.conn.close()


def test_a_burst_of_wrong_words_hashes_threshold_times_locks_once_and_refuses_the_right_word(app, db, clock):
    """30 wrong words at once, and the right word once their hashes have begun (one hashing thread,
    so they queue): 5 Argon2id checks in all, one lock with one lockout entry, the right word refused."""
    hasher = CountingHasher(slots=1)
    holder_id = id_of(db)

    def attempt(index, connection):
        word = "wrong-word"
        if index == BURST:
            assert hasher.wait_for_checks(THRESHOLD), "the wrong words never reached their hashes"
            word = SELIN["security_word"]
        try:
            check_security_word(connection, hasher, SELIN["identity"], word, clock(), THRESHOLD)
        except LoginFailed:
            return "failed"
        return "accepted" if index == BURST else "a wrong word accepted"

    assert race_on_connections(app, attempt, BURST + 1) == ["failed"] * (BURST + 1)
    assert hasher.checks == THRESHOLD and hasher.pauses == BURST + 1 - THRESHOLD
    holder = storage.holders.get_holder(db, holder_id)
    assert holder["failed_logins"] == THRESHOLD and holder["locked_until"] == clock() + 30
    outcomes = audit_events(db, holder_id=holder_id)
    assert outcomes.count(("login.word", "wrong_word")) == THRESHOLD
    assert outcomes.count(("login.lockout", "locked")) == 1
    assert outcomes.count(("login.word", "locked")) == BURST + 1 - THRESHOLD
    assert ("login.word", "ok") not in outcomes


def spend(app, connection, attempt, code, now):
    try:
        return otp.spend_code(connection, app.secret_key, attempt, code, now)
    except CodeExpired:
        return "expired"
    except CodeRejected:
        return "rejected"


def test_wrong_codes_in_parallel_get_three_tries_in_all(app, db, clock):
    holder_id = id_of(db)
    code, _ = otp.issue_code(db, app.secret_key, holder_id, "attempt-1", otp.CodePolicy(300, 60, 5), clock())
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    results = race_on_connections(app, lambda _, connection: spend(app, connection, "attempt-1", wrong, clock()))
    assert sorted(results) == ["expired"] * (BURST - 2) + ["rejected"] * 2
    assert storage.codes.latest_code(db, "attempt-1")["wrong_tries"] == otp.MAX_WRONG_TRIES
    assert spend(app, db, "attempt-1", code, clock()) == "expired"


def test_parallel_sends_for_one_attempt_store_one_code(app, db, clock):
    holder_id = id_of(db)
    policy = otp.CodePolicy(300, 60, 5)

    def send(_, connection):
        try:
            otp.issue_code(connection, app.secret_key, holder_id, "attempt-1", policy, clock())
        except TooSoon:
            return "too_soon"
        return "sent"

    assert sorted(race_on_connections(app, send)) == ["sent"] + ["too_soon"] * (BURST - 1)
    assert storage.codes.count_codes_sent_since(db, holder_id, clock() - 3600) == 1


def test_parallel_sends_for_many_attempts_stop_at_the_hourly_cap(app, db, clock):
    holder_id = id_of(db)
    policy = otp.CodePolicy(300, 60, 5)

    def send(index, connection):
        try:
            otp.issue_code(connection, app.secret_key, holder_id, f"attempt-{index}", policy, clock())
        except TooSoon:
            return "too_soon"
        return "sent"

    assert sorted(race_on_connections(app, send)) == ["sent"] * 5 + ["too_soon"] * (BURST - 5)
    assert storage.codes.count_codes_sent_since(db, holder_id, clock() - 3600) == 5


def test_parallel_reset_requests_issue_no_more_links_than_the_hourly_cap(app, db, clock):
    holder_id = id_of(db)
    cap = reset.RESETS_PER_HOLDER_PER_HOUR

    def ask(_, connection):
        return "issued" if reset.request_reset(connection, SELIN["identity"], [], clock(), "127.0.0.1") else "none"

    assert sorted(race_on_connections(app, ask)) == ["issued"] * cap + ["none"] * (BURST - cap)
    assert storage.tokens.count_tokens_since(db, holder_id, reset.PURPOSE_RESET, clock() - 3600) == cap
    outcomes = audit_events(db, holder_id=holder_id)
    assert outcomes.count(("word.forgot", "link_issued")) == cap
    assert outcomes.count(("word.forgot", "capped")) == BURST - cap


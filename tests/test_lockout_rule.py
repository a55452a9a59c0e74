"""The lockout reservation rule with a fixed clock: plain functions on a real SQLite file, no Flask."""
import pytest

from kamusm import storage
from kamusm.auth import Reservation, lock_seconds, reserve_attempt

THRESHOLD = 5
NOW = 1_700_000_000.0


@pytest.fixture
def db(tmp_path):
    connection = storage.connect(tmp_path / "kamusm.db")
    storage.migrations.migrate(connection)
    yield connection
    connection.conn.close()


@pytest.fixture
def holder_id(db):
    return storage.holders.upsert_holder(db, {"identity": "LOCKRULE1", "name": "Deniz Ak", "phone": "+905430000099",
                                    "email": "deniz.ak@demo.edu.tr", "word_hash": None}, NOW)


def holder(db, holder_id):
    return storage.holders.get_holder(db, holder_id)


@pytest.mark.parametrize(("failures", "seconds"), [
    (0, 0), (4, 0), (5, 30), (6, 60), (7, 120), (11, 1920), (12, 3600), (40, 3600),
])
def test_waits_start_at_30_seconds_at_the_threshold_and_stop_at_an_hour(failures, seconds):
    assert lock_seconds(failures, THRESHOLD) == seconds


def test_attempts_below_the_threshold_are_counted_before_the_hash_and_lock_nothing(db, holder_id):
    for count in range(1, THRESHOLD):
        assert reserve_attempt(db, holder_id, NOW, THRESHOLD) == Reservation(count, 0, 0.0)
    assert (holder(db, holder_id)["failed_logins"], holder(db, holder_id)["locked_until"]) == (THRESHOLD - 1, 0)


def test_the_attempt_reaching_the_threshold_locks_at_once_and_the_next_ones_are_refused_uncounted(db, holder_id):
    for _ in range(THRESHOLD - 1):
        reserve_attempt(db, holder_id, NOW, THRESHOLD)
    assert reserve_attempt(db, holder_id, NOW, THRESHOLD) == Reservation(THRESHOLD, 30, NOW + 30)
    assert holder(db, holder_id)["locked_until"] == NOW + 30
    for moment in (NOW, NOW + 1, NOW + 29.999):
        assert reserve_attempt(db, holder_id, moment, THRESHOLD) is None
    assert holder(db, holder_id)["failed_logins"] == THRESHOLD


def test_each_lock_that_runs_out_lets_one_attempt_through_and_the_waits_grow_to_an_hour(db, holder_id):
    for _ in range(THRESHOLD):
        reserve_attempt(db, holder_id, NOW, THRESHOLD)
    now, waits = NOW + 30, []
    for failures in range(THRESHOLD + 1, THRESHOLD + 10):
        reservation = reserve_attempt(db, holder_id, now, THRESHOLD)
        assert reservation.failures == failures and reservation.locked_until == now + reservation.lock_seconds
        assert reserve_attempt(db, holder_id, now, THRESHOLD) is None  # the one behind it, same instant
        waits.append(reservation.lock_seconds)
        now = reservation.locked_until  # a lock ends at its instant: locked_until <= now lets the next in
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_a_success_clears_the_count_and_the_lock_its_own_reservation_set(db, holder_id):
    for _ in range(THRESHOLD):
        reserve_attempt(db, holder_id, NOW, THRESHOLD)  # the last one was the right word
    storage.holders.clear_failures(db, holder_id, storage.holders.LOGIN)
    assert reserve_attempt(db, holder_id, NOW, THRESHOLD) == Reservation(1, 0, 0.0)


def test_an_administrators_lock_refuses_every_attempt(db, holder_id):
    storage.holders.lock_out(db, holder_id, storage.holders.LOGIN, NOW + 10 * 365 * 24 * 3600)
    assert reserve_attempt(db, holder_id, NOW, THRESHOLD) is None
    assert holder(db, holder_id)["failed_logins"] == 0

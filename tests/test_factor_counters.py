"""Second-factor failure counters: one per holder and factor, in the database, not reset by a new SMS code."""
from __future__ import annotations

import threading

import pytest

from kamusm import factors, otp, storage
from kamusm.errors import CodeExpired, CodeRejected
from kamusm.otp import CodePolicy
from tests.conftest import audit_events, id_of, latest_code, open_db

NOW = 1_700_000_000.0
KEY = b"k" * 32
POLICY = CodePolicy(ttl_seconds=300, resend_seconds=0, sends_per_hour=1000)


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "kamusm.db"
    connection = storage.connect(path)
    storage.migrations.migrate(connection)
    connection.conn.close()
    return path


@pytest.fixture
def db(db_path):
    connection = storage.connect(db_path)
    yield connection
    connection.conn.close()


@pytest.fixture
def holder_id(db):
    return storage.holders.upsert_holder(db, {"identity": "FACTOR1", "name": "Deniz Ak", "phone": "+905430000099",
                                              "email": "deniz.ak@demo.edu.tr", "word_hash": None}, NOW)


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** 6:06d}"


def test_wrong_codes_count_across_new_codes_and_lock_sms_at_the_threshold(db, holder_id):
    wrong = 0
    while wrong < factors.FAILURE_THRESHOLD:
        code, _ = otp.issue_code(db, KEY, holder_id, "attempt", POLICY, NOW)  # a new code resets nothing
        for _try in range(otp.MAX_WRONG_TRIES):
            if wrong == factors.FAILURE_THRESHOLD:
                break
            with pytest.raises(CodeRejected):
                otp.spend_code(db, KEY, "attempt", wrong_code(code), NOW)
            wrong += 1
    code, _ = otp.issue_code(db, KEY, holder_id, "attempt", POLICY, NOW)
    with pytest.raises(factors.FactorLocked):
        otp.spend_code(db, KEY, "attempt", code, NOW)  # right, but the factor is locked
    assert storage.factors.factor_failures(db, holder_id, "sms")["locked_until"] == NOW + 30
    later = NOW + 31
    code, _ = otp.issue_code(db, KEY, holder_id, "attempt", POLICY, later)
    assert otp.spend_code(db, KEY, "attempt", code, later) == holder_id
    assert storage.factors.factor_failures(db, holder_id, "sms") == {"failures": 0, "locked_until": 0}


def test_a_right_code_clears_the_count(db, holder_id):
    code, _ = otp.issue_code(db, KEY, holder_id, "attempt", POLICY, NOW)
    with pytest.raises(CodeRejected):
        otp.spend_code(db, KEY, "attempt", wrong_code(code), NOW)
    assert storage.factors.factor_failures(db, holder_id, "sms")["failures"] == 1
    otp.spend_code(db, KEY, "attempt", code, NOW)
    assert storage.factors.factor_failures(db, holder_id, "sms")["failures"] == 0


def test_a_dead_code_is_not_counted_against_the_holder(db, holder_id):
    code, _ = otp.issue_code(db, KEY, holder_id, "attempt", POLICY, NOW)
    with pytest.raises(CodeExpired):
        otp.spend_code(db, KEY, "attempt", code, NOW + POLICY.ttl_seconds + 1)
    assert storage.factors.factor_failures(db, holder_id, "sms")["failures"] == 0


def test_counters_of_two_factors_are_apart(db, holder_id):
    for _ in range(factors.FAILURE_THRESHOLD):
        with pytest.raises(CodeRejected), factors.counted(db, holder_id, "totp", NOW):
            raise CodeRejected("wrong")
    with pytest.raises(factors.FactorLocked), factors.counted(db, holder_id, "totp", NOW):
        pytest.fail("a locked factor ran its check")
    with factors.counted(db, holder_id, "sms", NOW):
        pass
    assert storage.factors.factor_failures(db, holder_id, "totp")["failures"] == factors.FAILURE_THRESHOLD


def test_a_burst_of_parallel_wrong_entries_gets_no_more_checks_than_the_threshold(db_path, db, holder_id):
    checks, lock = [], threading.Lock()
    start = threading.Barrier(24)

    def guess() -> None:
        connection = storage.connect(db_path)
        start.wait()
        try:
            with factors.counted(connection, holder_id, "passkey", NOW):
                with lock:
                    checks.append(1)
                raise CodeRejected("wrong")
        except (CodeRejected, factors.FactorLocked):
            pass
        finally:
            connection.conn.close()

    threads = [threading.Thread(target=guess) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(checks) == factors.FAILURE_THRESHOLD
    lockouts = [row for row in storage.audit_log.audit_entries(db) if row["event"] == "factor.lockout"]
    assert len(lockouts) == 1


def test_single_use_claims_hold_in_the_database(db, holder_id):
    storage.factors.save_challenge(db, "c1", holder_id, "authenticate", NOW + 300)
    assert storage.factors.claim_challenge(db, "c1", holder_id, "authenticate", NOW)
    assert not storage.factors.claim_challenge(db, "c1", holder_id, "authenticate", NOW)  # replayed
    storage.factors.save_challenge(db, "c2", holder_id, "register", NOW + 300)
    assert not storage.factors.claim_challenge(db, "c2", holder_id, "authenticate", NOW)  # other purpose
    assert not storage.factors.claim_challenge(db, "c2", holder_id, "register", NOW + 301)  # expired
    assert storage.factors.add_totp(db, holder_id, b"sealed", "kek", "app", 100, NOW)
    assert not storage.factors.add_totp(db, holder_id, b"sealed", "kek", "app", 100, NOW)  # one app per holder
    assert storage.factors.claim_totp_step(db, holder_id, 101, NOW)
    assert not storage.factors.claim_totp_step(db, holder_id, 101, NOW)  # the same time step again
    assert not storage.factors.claim_totp_step(db, holder_id, 100, NOW)  # an older one
    passkey_id = storage.factors.add_passkey(db, holder_id, "cred", b"key", 0, "internal", "laptop", NOW)
    assert storage.factors.add_passkey(db, holder_id, "cred", b"key", 0, "internal", "again", NOW) is None
    assert storage.factors.advance_passkey(db, passkey_id, 0, 1, NOW)
    assert not storage.factors.advance_passkey(db, passkey_id, 0, 1, NOW)  # the same assertion twice
    storage.factors.replace_recovery_codes(db, holder_id, ["h1", "h2"], NOW)
    assert storage.factors.claim_recovery_code(db, holder_id, "h1", NOW)
    assert not storage.factors.claim_recovery_code(db, holder_id, "h1", NOW)
    assert storage.factors.recovery_code_counts(db, holder_id) == {"total": 2, "unused": 1, "created_at": NOW}


def test_login_refuses_even_a_right_code_once_wrong_codes_over_several_sms_reach_the_threshold(
        app, auth, client, clock):
    assert auth.word().status_code == 303
    wrong = 0
    while wrong < factors.FAILURE_THRESHOLD:
        clock.advance(61)  # past the resend cool-down: each round is a new SMS code
        assert auth.send_sms().status_code == 303
        for _try in range(min(otp.MAX_WRONG_TRIES, factors.FAILURE_THRESHOLD - wrong)):
            assert auth.code(wrong_code(latest_code(app))).status_code == 422
            wrong += 1
    refused = auth.code()  # the latest SMS's own right code
    assert refused.status_code == 429
    assert "dakika sonra yeniden deneyiniz" in refused.get_data(as_text=True)
    with open_db(app) as db:
        assert ("factor.lockout", "locked") in audit_events(db, "factor.", id_of(db))
    clock.advance(31)
    assert auth.code().headers["Location"] == "/menu"

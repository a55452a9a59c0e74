"""The audit log: append-only, hash-chained, no secrets."""
import pytest

from kamusm import audit, storage
from kamusm.storage.connection import StorageError
from kamusm.storage.postgres import is_postgres


def test_chain_verifies(db, auth, client):
    auth.login()
    checked, broken = audit.verify(db)
    assert broken is None and checked == 3  # word ok, SMS sent, login ok


def test_update_and_delete_are_refused(db):
    audit.record(db, 1.0, "test", "ok")
    with pytest.raises(StorageError, match="append-only"):
        db.execute("UPDATE audit SET outcome = 'changed'")
    with pytest.raises(StorageError, match="append-only"):
        db.execute("DELETE FROM audit")


def _tamper(db, sql, params=()):
    """Get around the triggers as an attacker with the file (or the table owner's password) would."""
    if is_postgres(db):
        db.execute("ALTER TABLE audit DISABLE TRIGGER audit_no_change")
    else:
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("DROP TRIGGER audit_no_delete")
    db.execute(sql, params)


def test_edited_entry_breaks_the_chain(db):
    for number in range(5):
        audit.record(db, float(number), "event", "ok", detail=number)
    _tamper(db, "UPDATE audit SET outcome = 'denied' WHERE id = 3")
    assert audit.verify(db) == (2, 3)


def test_deleted_entry_breaks_the_chain(db):
    for number in range(5):
        audit.record(db, float(number), "event", "ok")
    _tamper(db, "DELETE FROM audit WHERE id = 2")
    assert audit.verify(db) == (1, 3)


def test_secret_fields_are_censored(db):
    audit.record(db, 1.0, "test", "ok", code="123456", pin="1234", note="fine")
    detail = list(storage.audit_log.audit_entries(db))[-1]["detail"]
    assert "123456" not in detail and "1234" not in detail and "fine" in detail


def test_audit_verify_command(runner, db):
    audit.record(db, 1.0, "event", "ok")
    result = runner.invoke(args=["kamusm", "audit", "verify"])
    assert result.exit_code == 0 and "audit chain ok" in result.output
    _tamper(db, "UPDATE audit SET event = 'other' WHERE id = 1")
    result = runner.invoke(args=["kamusm", "audit", "verify"])
    assert result.exit_code == 1 and "broken at entry 1" in result.output

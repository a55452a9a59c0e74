"""`kamusm db copy SOURCE TARGET`: an instance moved from SQLite to PostgreSQL (and back) holds the same rows, its audit
chain verifies, and the portal then runs on the copy: the holder logs in and reads the PIN the vault sealed on SQLite.
A copy that would not come out identical, a target that is not empty or a source that is missing commits nothing."""
import sqlite3

import pytest

from kamusm import audit, storage
from kamusm.storage import transfer
from kamusm.web.db import connections
from kamusm.web.factory import create_app
from tests.conftest import KEMAL, SELIN, AuthActions, audit_events, id_of, open_db, post, with_demo_certificates

pytestmark = pytest.mark.sqlite_only  # it makes the databases on both sides itself


def copy(runner, source: str, target: str):
    return runner.invoke(args=["kamusm", "db", "copy", source, target])


def counts(location: str) -> dict[str, int]:
    database = storage.connect(location)
    try:
        return transfer.row_counts(database, transfer.tables(database))
    finally:
        database.conn.close()


@pytest.fixture
def used_app(app, client):
    """The demo instance after some use: certificates, a login with its SMS code, a revealed PIN, a lockout count."""
    with_demo_certificates(app)
    AuthActions(client, app).login()
    assert post(client, "/pin-puk/reveal").status_code == 200
    assert AuthActions(app.test_client(), app).word(KEMAL["identity"], "wrong-word").status_code == 401
    return app


def test_sqlite_to_postgresql_keeps_every_row_and_the_chain(used_app, runner, app_config, postgres_database):
    source = f"sqlite:///{used_app.config['DATABASE']}"
    before = counts(source)
    result = copy(runner, source, postgres_database)
    assert result.exit_code == 0, result.output
    after = counts(postgres_database)
    assert {table: count for table, count in after.items() if table != "audit"} == \
        {table: count for table, count in before.items() if table != "audit"}
    assert after["audit"] == before["audit"] + 1  # and the copy itself, recorded on the target
    assert before["holders"] == 3 and before["certificates"] >= 3 and before["secrets"] > 0
    assert f"audit chain ok: {before['audit']} entries" in result.output
    assert "kamusm_test" in result.output

    moved = create_app({**app_config, "KAMUSM_DATABASE_URL": postgres_database})
    try:
        with open_db(moved) as db:
            assert audit.verify(db) == (before["audit"] + 1, None)
            assert audit_events(db, "admin.db_copy") == [("admin.db_copy", "ok")]
            assert storage.holders.find_holder(db, KEMAL["identity"])["failed_logins"] == 1
        client = moved.test_client()
        AuthActions(client, moved).login()
        page = post(client, "/pin-puk/reveal").get_data(as_text=True)
        assert SELIN["pin"] in page
        with open_db(moved) as db:  # the login's rows got ids after the copied ones (else a duplicate key)
            assert audit.verify(db)[1] is None
            assert audit_events(db, "login", id_of(db)).count(("login", "ok")) == 2
    finally:
        connections(moved).close_all()


def test_postgresql_back_to_sqlite_is_the_same_database(used_app, runner, postgres_database, tmp_path):
    source = f"sqlite:///{used_app.config['DATABASE']}"
    assert copy(runner, source, postgres_database).exit_code == 0
    back = f"sqlite:///{tmp_path / 'back.db'}"
    result = copy(runner, postgres_database, back)
    assert result.exit_code == 0, result.output
    original, returned = storage.connect(source), storage.connect(back)
    try:
        for table in transfer.tables(original):
            names = transfer.columns(original, table)
            if table != "audit":
                assert transfer.table_digest(original, table, names) == transfer.table_digest(returned, table, names)
        assert audit.verify(returned)[1] is None
    finally:
        original.conn.close()
        returned.conn.close()


def test_a_target_that_is_not_empty_is_left_alone(used_app, runner, postgres_database):
    source = f"sqlite:///{used_app.config['DATABASE']}"
    assert copy(runner, source, postgres_database).exit_code == 0
    before = counts(postgres_database)
    result = copy(runner, source, postgres_database)
    assert result.exit_code == 1 and "not empty" in result.output
    assert counts(postgres_database) == before


def test_a_value_the_target_would_change_stops_the_copy_and_keeps_nothing(used_app, runner, postgres_database):
    """SQLite keeps 1.5 in an INTEGER column; PostgreSQL's BIGINT would round it. Nothing is committed."""
    path = used_app.config["DATABASE"]
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE holders SET failed_logins = 1.5 WHERE identity = ?", [SELIN["identity"]])
    raw.close()
    result = copy(runner, f"sqlite:///{path}", postgres_database)
    assert result.exit_code == 1 and "nothing" in result.output, result.output
    assert "Traceback" not in result.output
    assert not any(counts(postgres_database).values())


@pytest.mark.parametrize("source, message", [
    ("sqlite:///{tmp}/missing.db", "no database at"),
    ("{tmp}/not-a-database.db", "cannot open"),
    ("postgresql://kamusm:secret-pass@127.0.0.1:1/none", "cannot open postgresql://kamusm@127.0.0.1:1/none"),
])
def test_a_source_that_cannot_be_read_is_a_clear_error(runner, tmp_path, postgres_database, source, message):
    (tmp_path / "not-a-database.db").write_text("hello")
    result = copy(runner, source.format(tmp=tmp_path), postgres_database)
    assert result.exit_code == 1 and message in result.output, result.output
    assert "secret-pass" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "missing.db").exists()


def test_tables_come_after_the_tables_they_point_to(db):
    order = transfer.tables(db)
    assert set(order) >= {"holders", "cards", "secrets", "audit", "certificates"}
    assert order.index("holders") < order.index("sms_codes") and order.index("holders") < order.index("receipts")

"""The operator's commands."""
import json

import pytest

from kamusm import storage
from tests.conftest import SELIN


def test_init_is_idempotent(runner):
    first = runner.invoke(args=["kamusm", "init"])
    second = runner.invoke(args=["kamusm", "init"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert f"schema version {len(storage.migrations.MIGRATIONS)}" in second.output


def test_demo_loads_three_holders_and_no_secret_is_printed(runner, db):
    result = runner.invoke(args=["kamusm", "demo"])
    assert result.exit_code == 0 and "3 demo holders" in result.output
    assert SELIN["security_word"] not in result.output
    assert storage.holders.find_holder(db, SELIN["identity"])["name"] == "Selin Yılmaz"


def test_demo_twice_does_not_duplicate(runner, db):
    runner.invoke(args=["kamusm", "demo"])
    runner.invoke(args=["kamusm", "demo"])
    assert db.execute("SELECT count(*) FROM holders").fetchone()[0] == 3


def test_outbox_prints_json_lines(runner, auth):
    auth.word()
    auth.send_sms()
    result = runner.invoke(args=["kamusm", "outbox", "--kind", "sms"])
    assert result.exit_code == 0
    message = json.loads(result.output.splitlines()[0])
    assert message["to"] == SELIN["phone"] and message["kind"] == "sms"


def test_holder_add_show_lock_unlock(runner, db, app):
    from tests.conftest import AuthActions
    added = runner.invoke(args=["kamusm", "holder", "add", "--identity", "10000000450", "--name", "Deniz Aydın",
                                "--phone", "0543 111 22 33", "--email", "deniz.aydin@demo.edu.tr"])
    assert added.exit_code == 0, added.output
    shown = json.loads(runner.invoke(args=["kamusm", "holder", "show", "10000000450"]).output)
    assert shown["phone"] == "+905431112233" and shown["security_word_set"] is False and shown["cards"] == []
    assert runner.invoke(args=["kamusm", "holder", "add", "--identity", "10000000450", "--name", "X",
                               "--phone", "05431112233", "--email", "x@demo.edu.tr"]).exit_code == 1
    selin = json.loads(runner.invoke(args=["kamusm", "holder", "show", SELIN["identity"]]).output)
    assert selin["cards"][0]["secrets_stored"] is True
    assert SELIN["pin"] not in json.dumps(selin) and SELIN["security_word"] not in json.dumps(selin)
    client = app.test_client()
    AuthActions(client, app).login()
    assert runner.invoke(args=["kamusm", "holder", "lock", SELIN["identity"]]).exit_code == 0
    assert client.get("/menu").headers["Location"] == "/login"
    assert AuthActions(app.test_client(), app).word().status_code == 401
    assert runner.invoke(args=["kamusm", "holder", "unlock", SELIN["identity"]]).exit_code == 0
    assert AuthActions(app.test_client(), app).word().status_code == 303


@pytest.mark.parametrize("args", [
    ["--identity", "10000000451", "--name", "A B", "--phone", "05431112233", "--email", "a@demo.edu.tr"],
    ["--identity", "10000000450", "--name", "A B", "--phone", "12345", "--email", "a@demo.edu.tr"],
    ["--identity", "10000000450", "--name", "A B", "--phone", "05431112233", "--email", "nope"],
])
def test_holder_add_refuses_bad_input(runner, args):
    result = runner.invoke(args=["kamusm", "holder", "add", *args])
    assert result.exit_code == 1 and "Error" in result.output


def test_unknown_holder(runner):
    result = runner.invoke(args=["kamusm", "holder", "show", "10000000450"])
    assert result.exit_code == 1 and "no holder" in result.output

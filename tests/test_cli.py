"""The operator's commands."""
import json

from kamusm import store
from tests.conftest import SELIN


def test_init_is_idempotent(runner):
    first = runner.invoke(args=["kamusm", "init"])
    second = runner.invoke(args=["kamusm", "init"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert f"schema version {len(store.MIGRATIONS)}" in second.output


def test_demo_loads_three_holders_and_no_secret_is_printed(runner, db):
    result = runner.invoke(args=["kamusm", "demo"])
    assert result.exit_code == 0 and "3 demo holders" in result.output
    assert SELIN["security_word"] not in result.output
    assert store.find_holder(db, SELIN["identity"])["name"] == "Selin Yılmaz"


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

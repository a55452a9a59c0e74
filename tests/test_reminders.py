"""Expiry reminders with a fixed clock: thresholds, the tightest only, idempotent runs (twice, in threads, in two
processes), retries against a failing SMS gateway and a mail server that is down, audit entries, no secrets,
and `kamusm reminders send`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kamusm import mail, reminders, sms, storage
from kamusm.reminders import DAY_SECONDS, MAX_TRIES, RETRY_WAIT_SECONDS
from kamusm.web.factory import create_app
from tests.conftest import KEMAL, SELIN, audit_events, id_of, load_demo, open_db, with_demo_certificates
from tests.test_concurrency import race
from tests.test_forgot_mail import free_port
from tests.test_sms import Gateway

LINK = "http://portal.test/certificate"
REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(app):
    return with_demo_certificates(app)


@pytest.fixture
def gateway():
    server = Gateway()
    yield server
    server.close()


def certificate(db, holder=SELIN) -> dict:
    return storage.certificates.holder_certificates(db, id_of(db, holder))[-1]


def days_before_end(db, clock, days: float) -> None:
    """Move the clock to `days` before the end of Selin's certificate (the demo certificates end together)."""
    clock.now = certificate(db)["not_after"] - days * DAY_SECONDS


def run(app, db, clock=None):
    """One run as the command does it, on the test's own connection."""
    now = (clock or app.config["CLOCK"])()
    with app.app_context():
        senders = reminders.Senders(sms.make_backend(app.config, lambda: db, app.config["CLOCK"]),
                                    mail.make_backend(app.config, db, app.config["CLOCK"]), LINK, "tr")
        return reminders.send_reminders(db, senders, now)


def sms_to(db, holder=SELIN) -> list[str]:
    return [message["body"] for message in storage.outbox.latest_outbox(db, "sms", 100)
            if message["recipient"] == holder["phone"]]


def mail_to(db, holder=SELIN) -> list[dict]:
    return [message for message in storage.outbox.latest_outbox(db, "mail", 100)
            if message["recipient"] == holder["email"]]


def reminder_rows(db, holder=SELIN) -> list[dict]:
    return storage.reminders.holder_reminders(db, id_of(db, holder))


@pytest.mark.parametrize(("days_left", "threshold"), [
    (120, None), (90.5, None), (90, 90), (75, 90), (60, 60), (45, 60), (30, 30), (20, 30), (15, 15), (3, 15),
    (0.01, 15), (0, None), (-5, None),
])
def test_the_tightest_threshold_reached(days_left, threshold):
    assert reminders.tightest_threshold(days_left * DAY_SECONDS) == threshold


def test_a_certificate_first_seen_at_20_days_gets_the_30_day_reminder_once(app, db, clock):
    days_before_end(db, clock, 20)
    counts = run(app, db)
    assert (counts.queued, counts.sent, counts.retry_later, counts.failed) == (6, 6, 0, 0)  # 3 holders x 2
    assert [(row["days"], row["channel"], row["state"]) for row in reminder_rows(db)] == [(30, "mail", "sent"),
                                                                                           (30, "sms", "sent")]
    assert len(sms_to(db)) == 1 and "20 gün kaldı" in sms_to(db)[0]
    again = run(app, db)
    assert (again.queued, again.sent) == (0, 0)
    assert len(sms_to(db)) == 1 and len(mail_to(db)) == 1
    assert audit_events(db, "reminder.", id_of(db)) == [("reminder.sent", "ok")] * 2


def test_each_threshold_goes_out_once_as_the_end_comes_near(app, db, clock):
    sent_at = {}
    for days in (120, 95, 90, 89, 61, 60, 40, 30, 16, 15, 2, 0.5, -1):
        days_before_end(db, clock, days)
        run(app, db)
        sent_at[days] = len(sms_to(db))
    assert sent_at == {120: 0, 95: 0, 90: 1, 89: 1, 61: 1, 60: 2, 40: 2, 30: 3, 16: 3, 15: 4, 2: 4, 0.5: 4, -1: 4}
    assert sorted(row["days"] for row in reminder_rows(db) if row["channel"] == "mail") == [15, 30, 60, 90]


def test_suspended_certificates_are_reminded_revoked_ones_are_not(app, db, clock):
    storage.certificates.set_certificate_status(db, certificate(db, KEMAL)["id"], "revoke", "revoked", "", clock())
    storage.certificates.set_certificate_status(db, certificate(db)["id"], "suspend", "suspended", "", clock())
    days_before_end(db, clock, 10)
    run(app, db)
    assert len(sms_to(db)) == 1 and not sms_to(db, KEMAL) and not reminder_rows(db, KEMAL)


def test_a_renewal_request_stops_further_reminders(app, db, clock):
    days_before_end(db, clock, 80)
    run(app, db)
    storage.reminders.add_renewal_request(db, id_of(db), certificate(db)["id"], clock())
    days_before_end(db, clock, 50)
    run(app, db)
    assert len(sms_to(db)) == 1 and len(sms_to(db, KEMAL)) == 2


def test_texts_carry_no_secret_and_the_mail_says_how_to_renew(app, db, clock):
    days_before_end(db, clock, 30)
    run(app, db)
    (text,), (message,) = sms_to(db), mail_to(db)
    for secret in (SELIN["pin"], SELIN["puk"], SELIN["identity"], SELIN["card_serial"], SELIN["security_word"]):
        assert secret not in text and secret not in message["body"]
    assert not any(word.isdigit() and len(word) == 6 for word in text.replace(".", " ").split())
    assert "Yenileme Talebi" in text
    assert "Sayın Selin Yılmaz" in message["body"] and LINK in message["body"]
    assert '"Yenileme Talebi"' in message["body"] and certificate(db)["serial_hex"] in message["body"]
    assert "30 gün kaldı" in message["body"] and message["subject"].startswith("Sertifikanızın süresi")
    detail = [entry["detail"] for entry in storage.audit_log.audit_entries(db, id_of(db))
              if entry["event"] == "reminder.sent"]
    assert detail and all(SELIN["phone"] not in line and "Yenileme" not in line for line in detail)


def test_runs_in_parallel_threads_send_each_reminder_once(app, db, clock):
    days_before_end(db, clock, 14)

    def one_run():
        with open_db(app) as connection:
            return run(app, connection, clock)

    results = race(one_run, 8)
    assert sum(result.queued for result in results) == 6 and sum(result.sent for result in results) == 6
    assert len(storage.outbox.latest_outbox(db, "sms", 100)) == 3
    assert len(storage.outbox.latest_outbox(db, "mail", 100)) == 3
    assert len(audit_events(db, "reminder.sent")) == 6


def test_two_processes_at_once_send_each_reminder_once(app, db, clock):
    """The command itself, twice at the same moment, on the real clock: the certificates are made to end soon."""
    db.execute("UPDATE certificates SET not_after = ?", [clock() + 20 * DAY_SECONDS])
    env = {**os.environ, "KAMUSM_INSTANCE": app.config["KAMUSM_INSTANCE"], "KAMUSM_DEMO": "1",
           "KAMUSM_DATABASE_URL": app.config["KAMUSM_DATABASE_URL"]}
    command = [sys.executable, "-m", "flask", "--app", "app", "kamusm", "reminders", "send"]
    processes = [subprocess.Popen(command, cwd=REPOSITORY, env=env, stdout=subprocess.PIPE,  # noqa: S603
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert len(storage.outbox.latest_outbox(db, "sms", 100)) == 3
    assert len(storage.outbox.latest_outbox(db, "mail", 100)) == 3
    assert len(audit_events(db, "reminder.sent")) == 6


def gateway_app(app_config, gateway) -> object:
    app = create_app({**app_config, "KAMUSM_SMS_BACKEND": "http", "KAMUSM_SMS_HTTP_URL": gateway.url,
                      "KAMUSM_SMS_HTTP_RETRIES": 0})
    load_demo(app)
    return with_demo_certificates(app)


def test_a_failing_gateway_is_retried_later_with_growing_waits_then_failed(app_config, gateway, clock):
    gateway.statuses = [500] * 100
    failing = gateway_app(app_config, gateway)
    with open_db(failing) as db:
        days_before_end(db, clock, 20)
        first = run(failing, db)
        assert (first.sent, first.retry_later, first.failed) == (3, 3, 0)  # the mails went, the SMS did not
        row = next(row for row in reminder_rows(db) if row["channel"] == "sms")
        assert (row["state"], row["tries"], row["reason"]) == ("pending", 1, "HTTP 500")
        assert row["next_try_at"] == clock() + RETRY_WAIT_SECONDS[0]
        assert ("reminder.sent", "retry_later") in audit_events(db, "reminder.", id_of(db))
        assert run(failing, db).retry_later == 0 and len(gateway.requests) == 3  # not yet due: not tried
        for wait in RETRY_WAIT_SECONDS:
            clock.advance(wait)
            counts = run(failing, db)
        assert (counts.retry_later, counts.failed) == (0, 3)
        row = next(row for row in reminder_rows(db) if row["channel"] == "sms")
        assert (row["state"], row["tries"]) == ("failed", MAX_TRIES)
        assert len(gateway.requests) == 3 * MAX_TRIES
        clock.advance(DAY_SECONDS)
        run(failing, db)
        assert len(gateway.requests) == 3 * MAX_TRIES
        assert audit_events(db, "reminder.sent", id_of(db)).count(("reminder.sent", "failed")) == 1


def test_a_gateway_that_recovers_delivers_on_the_next_due_run(app_config, gateway, clock):
    gateway.statuses = [500, 500, 500]
    failing = gateway_app(app_config, gateway)
    with open_db(failing) as db:
        days_before_end(db, clock, 20)
        run(failing, db)
        clock.advance(RETRY_WAIT_SECONDS[0])
        counts = run(failing, db)
        assert (counts.sent, counts.retry_later) == (3, 0)
        assert [row["state"] for row in reminder_rows(db)] == ["sent", "sent"]
    assert len(gateway.requests) == 6 and "20 gün kaldı" in gateway.requests[-1]["body"]["text"]


def test_a_late_reminder_is_dropped_for_the_tighter_one(app_config, gateway, clock):
    """The gateway was down from the 30-day reminder until the 15-day one: the holder gets one SMS, not two."""
    gateway.statuses = [500] * 3
    failing = gateway_app(app_config, gateway)
    with open_db(failing) as db:
        days_before_end(db, clock, 20)
        run(failing, db)
        days_before_end(db, clock, 14)
        counts = run(failing, db)
        assert (counts.dropped, counts.sent) == (3, 6)  # the 30-day SMS dropped; the 15-day SMS and mail sent
        states = {(row["days"], row["channel"]): (row["state"], row["reason"]) for row in reminder_rows(db)}
    assert states == {(30, "sms"): ("failed", "superseded"), (30, "mail"): ("sent", ""),
                      (15, "sms"): ("sent", ""), (15, "mail"): ("sent", "")}
    assert len([request for request in gateway.requests if request["body"]["to"] == SELIN["phone"]]) == 2


def test_a_mail_server_down_keeps_one_message_per_reminder(app_config, clock):
    down = create_app({**app_config, "KAMUSM_MAIL_BACKEND": "smtp", "KAMUSM_SMTP_HOST": "127.0.0.1",
                       "KAMUSM_SMTP_PORT": free_port(), "KAMUSM_SMTP_SECURITY": "none", "KAMUSM_SMTP_TIMEOUT": 2})
    load_demo(down)
    with_demo_certificates(down)
    with open_db(down) as db:
        days_before_end(db, clock, 20)
        assert run(down, db).retry_later == 3
        clock.advance(RETRY_WAIT_SECONDS[0])
        assert run(down, db).retry_later == 3
        rows = [row for row in reminder_rows(db) if row["channel"] == "mail"]
        queued = list(db.query("SELECT id, sent_at FROM mail_queue"))
    assert len(queued) == 3 and all(row["sent_at"] is None for row in queued)
    assert rows[0]["mail_id"] in {row["id"] for row in queued} and rows[0]["tries"] == 2


def test_the_command_prints_counts_and_exits_0(app, db, clock, runner):
    days_before_end(db, clock, 20)
    result = runner.invoke(args=["kamusm", "reminders", "send"])
    assert result.exit_code == 0, result.output
    assert "6 queued, 6 sent, 0 to retry later, 0 failed, 0 dropped" in result.output
    again = runner.invoke(args=["kamusm", "reminders", "send"])
    assert "0 queued, 0 sent" in again.output
    assert ("admin.reminders", "ok") in audit_events(db, "admin.reminders")
    assert "http://127.0.0.1:5000/certificate" in mail_to(db)[0]["body"]


def test_the_command_exits_0_when_sends_fail(app_config, gateway, clock):
    gateway.statuses = [500] * 3
    failing = gateway_app(app_config, gateway)
    with open_db(failing) as db:
        days_before_end(db, clock, 20)
    result = failing.test_cli_runner().invoke(args=["kamusm", "reminders", "send"])
    assert result.exit_code == 0
    assert "6 queued, 3 sent, 3 to retry later, 0 failed, 0 dropped" in result.output
    assert "sms reminder" in result.output and "HTTP 500" in result.output


def test_the_command_refuses_a_deployment_without_a_public_url(app_config):
    deployment = create_app({**app_config, "KAMUSM_DEMO": False})
    result = deployment.test_cli_runner().invoke(args=["kamusm", "reminders", "send"])
    assert result.exit_code == 1 and "KAMUSM_PUBLIC_URL" in result.output

"""No security word or SMS code reaches a log, the session store or the audit table."""
import logging
import re

import pytest

from tests.conftest import CAPTCHA_ANSWER, SELIN, csrf_token, latest_code, post


def test_flow_logs_no_secret(app, auth, db, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    auth.word(word="a-wrong-word")
    auth.login()
    code = latest_code(app)
    logged = caplog.text + capsys.readouterr().out + capsys.readouterr().err
    for secret in (SELIN["security_word"], "a-wrong-word", code):
        assert secret not in logged
    stored = " ".join(str(row) for table in ("audit", "sessions", "sms_codes", "holders", "captchas")
                      for row in db.query(f"SELECT * FROM {table}"))
    for secret in (SELIN["security_word"], "a-wrong-word", code):
        assert secret not in stored
    assert re.search(r"\$argon2id\$v=19\$m=19456,t=2,p=1\$", stored)


def test_lost_card_codes_reach_no_log_and_no_table(app, client, auth, db, caplog, capsys):
    """The demo code and a wrong one sent to /lost, and a code made on /security, are nowhere but on the page."""
    caplog.set_level(logging.DEBUG)
    wrong = "ZZZZ-YYYY-XXXX-WWWW"
    for code in (wrong, SELIN["lost_code"]):
        token = csrf_token(client, "/lost")
        client.get("/captcha.png")
        with client.post("/lost", data={"csrf_token": token, "identity": SELIN["identity"], "lost_code": code,
                                        "captcha": CAPTCHA_ANSWER}) as response:
            assert response.status_code == 200
    auth.login()
    made = post(client, "/security", token_page="/security", action="new_lost_code").get_data(as_text=True)
    new = re.search(r"data-lost-code>([0-9A-Z-]{19})<", made).group(1)
    secrets = [form for code in (wrong, SELIN["lost_code"], new) for form in (code, code.replace("-", ""))]
    logged = caplog.text + capsys.readouterr().out + capsys.readouterr().err
    stored = " ".join(str(row) for table in ("audit", "sessions", "holders", "outbox", "mail_queue")
                      for row in db.query(f"SELECT * FROM {table}"))
    for secret in secrets:
        assert secret not in logged and secret not in stored


def test_session_cookie_holds_no_data(client, auth):
    auth.word()
    cookie = client.get_cookie("kamusm_session").value
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie)


@pytest.mark.parametrize("prefix", ["/reset/", "/profile/email/", "/admin/enrol/"])
def test_access_log_redacts_link_tokens(prefix):
    import logging

    from kamusm.redaction import RedactLinkTokens

    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '%s - - "%s" %s',
                               ("127.0.0.1", f"GET {prefix}AbC_secret-123 HTTP/1.1", "200"), None)
    assert RedactLinkTokens().filter(record)
    assert "AbC_secret-123" not in record.getMessage() and f"{prefix}[redacted]" in record.getMessage()


def test_gunicorn_style_mapping_args_are_redacted_in_place():
    import logging

    from kamusm.redaction import RedactLinkTokens

    class Atoms(dict):
        def __getitem__(self, key):
            return super().get(key, "-")

    atoms = Atoms({"r": "GET /reset/AbC_secret-123 HTTP/1.1", "s": "200"})
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s %(s)s %(missing)s", None, None)
    record.args = atoms
    assert RedactLinkTokens().filter(record)
    assert record.args is atoms
    assert record.getMessage() == "GET /reset/[redacted] HTTP/1.1 200 -"

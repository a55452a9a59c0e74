"""No security word or SMS code reaches a log, the session store or the audit table."""
import logging
import re

from kamusm import store
from tests.conftest import SELIN, latest_code


def test_flow_logs_no_secret(app, auth, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    auth.word(word="a-wrong-word")
    auth.login()
    code = latest_code(app)
    logged = caplog.text + capsys.readouterr().out + capsys.readouterr().err
    for secret in (SELIN["security_word"], "a-wrong-word", code):
        assert secret not in logged
    with app.app_context():
        from kamusm.db import get_db
        db = get_db()
        stored = " ".join(str(row) for table in ("audit", "sessions", "sms_codes", "holders", "captchas")
                          for row in db.query(f"SELECT * FROM {table}"))
    for secret in (SELIN["security_word"], "a-wrong-word", code):
        assert secret not in stored
    assert re.search(r"\$argon2id\$v=19\$m=19456,t=2,p=1\$", stored)


def test_session_cookie_holds_no_data(client, auth):
    auth.word()
    cookie = client.get_cookie("kamusm_session").value
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie)

"""SMS backends: the http webhook against a real local HTTP server, console, outbox."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kamusm.errors import SmsFailed
from kamusm.sms import ConsoleSms, HttpSms
from kamusm.web.factory import create_app
from tests.conftest import SELIN, AuthActions, audit_events, load_demo, open_db


class Gateway:
    """A tiny SMS gateway: records what it gets, answers with the status it is told."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                gateway.requests.append({"body": json.loads(self.rfile.read(length)),
                                         "authorization": self.headers.get("Authorization")})
                status = gateway.statuses.pop(0) if gateway.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    server = Gateway()
    yield server
    server.close()


def http_backend(url, retries=2):
    return HttpSms(url, "secret-token", '{"to": "{to}", "text": "{message}", "sender": "KAMUSM"}', 2, retries)


def test_http_backend_posts_the_template(gateway):
    http_backend(gateway.url).send("+905430000001", 'Kod: 123456 "quoted"')
    assert gateway.requests == [{"body": {"to": "+905430000001", "text": 'Kod: 123456 "quoted"', "sender": "KAMUSM"},
                                 "authorization": "Bearer secret-token"}]


def test_http_backend_retries_5xx(gateway):
    gateway.statuses = [503, 502, 200]
    http_backend(gateway.url).send("+905430000001", "x")
    assert len(gateway.requests) == 3


def test_http_backend_gives_up(gateway):
    gateway.statuses = [500, 500, 500]
    with pytest.raises(SmsFailed):
        http_backend(gateway.url).send("+905430000001", "x")
    assert len(gateway.requests) == 3


def test_http_backend_does_not_retry_4xx(gateway):
    gateway.statuses = [400]
    with pytest.raises(SmsFailed):
        http_backend(gateway.url).send("+905430000001", "x")
    assert len(gateway.requests) == 1


def test_http_backend_unreachable_gateway():
    with pytest.raises(SmsFailed):
        http_backend("http://127.0.0.1:9/send", retries=0).send("+905430000001", "x")


def test_console_backend_prints(capsys):
    ConsoleSms().send("+905430000001", "hello")
    assert "+905430000001" in capsys.readouterr().out


def _app_with_gateway(app_config, url):
    app = create_app({**app_config, "KAMUSM_SMS_BACKEND": "http", "KAMUSM_SMS_HTTP_URL": url,
                      "KAMUSM_SMS_HTTP_RETRIES": 1})
    load_demo(app)
    return app


def test_login_through_the_http_gateway(app_config, gateway):
    app = _app_with_gateway(app_config, gateway.url)
    auth = AuthActions(app.test_client(), app)
    auth.word()
    assert auth.send_sms().headers["Location"] == "/login/code"
    code = gateway.requests[0]["body"]["text"].split(": ")[1][:6]
    assert gateway.requests[0]["body"]["to"] == SELIN["phone"]
    assert auth.code(code).headers["Location"] == "/menu"


def test_failing_gateway_gives_a_clear_message_and_is_audited(app_config, gateway):
    gateway.statuses = [500, 500]
    app = _app_with_gateway(app_config, gateway.url)
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.word()
    response = auth.send_sms()
    assert response.status_code == 503
    assert "SMS şu anda gönderilemedi" in response.get_data(as_text=True)
    with open_db(app) as db:
        assert ("login.sms", "gateway_failed") in audit_events(db)
    # The failed code was withdrawn: no cool-down, and the next try goes through.
    assert auth.send_sms().headers["Location"] == "/login/code"

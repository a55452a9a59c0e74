"""Per-IP limits on the login POSTs: over the limit is a readable 429."""
import pytest

from kamusm.web.factory import create_app
from tests.conftest import AuthActions, csrf_token, load_demo


@pytest.fixture
def limited_app(app_config):
    return create_app({**app_config, "RATELIMIT_ENABLED": True, "KAMUSM_LOGIN_RATE": "3 per minute",
                       "KAMUSM_SMS_RATE": "2 per minute", "KAMUSM_CODE_RATE": "2 per minute"})


def test_login_post_over_the_limit_is_429(limited_app):
    client = limited_app.test_client()
    token = csrf_token(client)
    statuses = [client.post("/login", data={"csrf_token": token, "identity": "", "captcha": "",
                                            "security_word": ""}).status_code for _ in range(4)]
    assert statuses == [422, 422, 422, 429]
    response = client.post("/login", data={"csrf_token": token})
    assert response.status_code == 429
    assert "Çok fazla istek" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers


def test_limit_is_per_ip(limited_app):
    client = limited_app.test_client()
    token = csrf_token(client)
    form = {"csrf_token": token, "identity": "", "captcha": "", "security_word": ""}
    for _ in range(3):
        client.post("/login", data=form)
    assert client.post("/login", data=form).status_code == 429
    other = client.post("/login", data=form, environ_overrides={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 422


def test_code_post_over_the_limit_is_429(limited_app):
    load_demo(limited_app)
    client = limited_app.test_client()
    auth = AuthActions(client, limited_app)
    auth.word()
    auth.send_sms()
    assert [auth.code("000000").status_code for _ in range(3)][-1] == 429


def test_get_pages_are_not_limited(limited_app):
    client = limited_app.test_client()
    assert all(client.get("/login").status_code == 200 for _ in range(10))

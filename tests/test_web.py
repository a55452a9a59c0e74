"""Headers, CSRF, cross-site refusal, page-or-partial rendering, error pages."""
import re

import pytest

from kamusm import storage
from kamusm.web.factory import create_app
from tests.conftest import SELIN, csrf_token


def test_security_headers_on_every_response(client):
    for path in ("/login", "/captcha.png", "/healthz", "/nowhere"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "object-src 'none'" in csp and "base-uri 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in headers


def test_https_gets_hsts_and_host_prefixed_secure_cookie(client):
    response = client.get("/login", base_url="https://portal.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-kamusm_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


def test_session_cookie_flags_over_http(client):
    cookie = client.get("/login").headers["Set-Cookie"]
    assert cookie.startswith("kamusm_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_ids_are_long_random(client):
    client.get("/login")
    assert len(client.get_cookie("kamusm_session").value) >= 43  # 32 bytes, base64url


def test_htmx_request_gets_only_the_partial(client):
    response = client.get("/login", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert 'id="login_form"' in body
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_history_restore_gets_the_full_page(client):
    body = client.get("/login", headers={"HX-Request": "true", "HX-Request-Type": "full"}).get_data(as_text=True)
    assert "<html" in body


def test_htmx_login_error_is_a_422_partial(client):
    token = csrf_token(client)
    client.get("/captcha.png")
    response = client.post("/login", headers={"HX-Request": "true"},
                           data={"csrf_token": token, "identity": "123", "captcha": "x", "security_word": "y"})
    assert response.status_code == 422
    assert "<html" not in response.get_data(as_text=True)


def test_htmx_success_redirects_with_hx_redirect(auth):
    response = auth.word(**{"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/login/sms"


def test_missing_csrf_token_is_refused(client):
    client.get("/login")
    response = client.post("/login", data={"identity": SELIN["identity"], "captcha": "x", "security_word": "y"})
    assert response.status_code == 400
    assert "Form süresi doldu" in response.get_data(as_text=True)


def test_csrf_header_is_accepted_for_htmx(client):
    token = csrf_token(client)
    response = client.post("/login", headers={"HX-Request": "true", "X-CSRFToken": token},
                           data={"identity": "", "captcha": "", "security_word": ""})
    assert response.status_code == 422


def test_wrong_csrf_token_is_refused(client):
    client.get("/login")
    response = client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400


def test_a_sessions_signed_csrf_token_is_kept_and_accepted(client, auth):
    auth.login()
    first, second = csrf_token(client, "/menu"), csrf_token(client, "/pin-puk")
    assert first == second
    assert client.post("/logout", data={"csrf_token": second}).headers["Location"] == "/login?bye=1"


def test_a_new_secret_key_gets_a_newly_signed_csrf_token(app, client, auth):
    auth.login()
    kept = csrf_token(client, "/menu")
    app.secret_key = "another key of the server, after an operator replaced it"
    fresh = csrf_token(client, "/menu")
    assert fresh != kept
    assert client.post("/logout", data={"csrf_token": kept}).status_code == 400
    assert client.post("/logout", data={"csrf_token": fresh}).headers["Location"] == "/login?bye=1"


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "CROSS-SITE"},  # Fetch's tokens are case-insensitive
    {"Sec-Fetch-Site": "Cross-Site"},
    {"Sec-Fetch-Site": "SAME-SITE"},
    {"Sec-Fetch-Site": "Cross-Site", "Origin": "http://localhost"},
    {"Origin": "https://evil.example"},
    {"Origin": "HTTPS://EVIL.EXAMPLE"},
    {"Origin": "null"},
    {"Origin": "NULL"},
])
def test_cross_site_posts_are_refused(client, headers):
    token = csrf_token(client)
    response = client.post("/login", headers=headers, data={"csrf_token": token})
    assert response.status_code == 403


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "SAME-ORIGIN"},
    {"Sec-Fetch-Site": "None"},
    {"Origin": "HTTP://LOCALHOST"},  # scheme and host of an origin are case-insensitive
    {"Origin": "http://LocalHost"},
])
def test_same_origin_posts_pass_whatever_the_case(client, headers):
    token = csrf_token(client)
    response = client.post("/login", headers=headers,
                           data={"csrf_token": token, "identity": "", "captcha": "", "security_word": ""})
    assert response.status_code == 422


def test_browser_form_post_with_null_origin_passes(client):
    """Referrer-Policy no-referrer makes browsers send Origin: null on same-origin form posts."""
    token = csrf_token(client)
    response = client.post("/login", headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
                           data={"csrf_token": token, "identity": "", "captcha": "", "security_word": ""})
    assert response.status_code == 422


def test_favicon(client):
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200 and response.data[:4] == b"\x00\x00\x01\x00"


def test_same_origin_post_passes_the_origin_check(client):
    token = csrf_token(client)
    response = client.post("/login", headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
                           data={"csrf_token": token, "identity": "", "captcha": "", "security_word": ""})
    assert response.status_code == 422


CARRIED_TOKEN = re.compile(rb'name="csrf_token" value="[^"]+"|name="csrf-token" content="[^"]+"')


def session_rows(db) -> list[tuple]:
    return db.execute("SELECT id_hash, data, seen_at FROM sessions ORDER BY id_hash").fetchall()


@pytest.mark.parametrize("request_kwargs", [
    {"path": "/static/css/missing.css"},
    {"path": "/static/css/missing.css", "query_string": {"lang": "en"}},
    {"path": "/static/css/missing.css", "headers": {"HX-Request": "true"}},
    {"path": "/static/css/kamusm.css", "method": "POST"},  # a 405 on a static path
])
def test_a_static_error_page_opens_no_session_and_is_never_cached(client, auth, db, clock, request_kwargs):
    auth.login()
    token = csrf_token(client, "/menu")
    before = session_rows(db)
    clock.advance(60)  # a request that opened the session would mark it seen now
    response = client.open(**request_kwargs)
    assert response.status_code in {404, 405}
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data(as_text=True)
    assert token not in body and "csrf_token" not in body
    assert session_rows(db) == before


def test_a_missing_static_file_makes_no_session_for_a_new_visitor(client, db):
    response = client.get("/static/js/nowhere.js")
    assert response.status_code == 404
    assert "Set-Cookie" not in response.headers and client.get_cookie("kamusm_session") is None
    assert "Sayfa bulunamadı" in response.get_data(as_text=True)
    assert session_rows(db) == []


def test_a_static_file_is_cacheable_and_leaves_the_session_alone(client, auth, db, clock):
    auth.login()
    before = session_rows(db)
    clock.advance(60)
    with client.get("/static/css/kamusm.css") as response:
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
        assert "no-store" not in response.headers.get("Cache-Control", "")
    assert session_rows(db) == before


def test_every_response_with_a_session_cookie_or_a_csrf_token_is_no_store(client, auth):
    paths = ("/login", "/captcha.png", "/healthz", "/nowhere", "/favicon.ico", "/static/css/kamusm.css",
             "/static/nowhere.css", "/menu", "/pin-puk", "/login?lang=en")
    seen = 0
    for logged_in in (False, True):
        if logged_in:
            auth.login()
        for path in paths:
            with client.get(path) as response:
                carries = "Set-Cookie" in response.headers or CARRIED_TOKEN.search(response.data)
                if carries:
                    seen += 1
                    assert response.headers["Cache-Control"] == "no-store", path
    assert seen >= 4


def test_logout_is_post_only(client):
    assert client.get("/logout").status_code == 405


def test_unknown_page_is_a_readable_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "<h1>Sayfa bulunamadı</h1>" in page and "Bu adreste bir sayfa yok" in page
    assert "İşlem tamamlanamadı" not in page
    english = client.get("/nowhere?lang=en").get_data(as_text=True)
    assert "<title>Page not found" in english and "There is no page at this address" in english


def test_oversized_request_is_413(client):
    token = csrf_token(client)
    response = client.post("/login", data={"csrf_token": token, "identity": "1" * 100_000})
    assert response.status_code == 413


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "schema": len(storage.migrations.MIGRATIONS),
                             "translations": "ok"}


def test_demo_routes_only_in_demo_mode(app_config):
    client = create_app({**app_config, "KAMUSM_DEMO": False, "KAMUSM_CAPTCHA": "image"}).test_client()
    assert client.get("/demo/phone").status_code == 404
    assert client.get("/demo/mail").status_code == 404


def test_demo_phone_shows_sms(client, auth):
    auth.word()
    auth.send_sms()
    page = client.get("/demo/phone").get_data(as_text=True)
    assert SELIN["phone"] in page and "SMS onay kodunuz" in page


def test_behind_a_proxy_the_forwarded_scheme_counts(app_config):
    client = create_app({**app_config, "KAMUSM_PROXIES": 1}).test_client()
    response = client.get("/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert "Strict-Transport-Security" in response.headers
    assert response.headers["Set-Cookie"].startswith("__Host-kamusm_session=")


def test_without_a_proxy_forwarded_headers_are_ignored(client):
    response = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers

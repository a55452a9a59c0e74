"""The institution's name and logo: KAMUSM_LOGO_FILE checked at start-up, GET /branding/logo,
the page header, and the signature of every mail."""
import email
import email.policy
import io
import re
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from PIL import Image

from kamusm import branding, mail, storage
from kamusm.config import load_settings
from kamusm.errors import ConfigError
from kamusm.web.factory import create_app
from tests.conftest import SELIN, AuthActions, csrf_token, load_demo
from tests.test_forgot_mail import Inbox, free_port, smtp_app

NAME = "Kırıkkale & Kale Üniversitesi"
SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
       b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 100"><style>rect { fill: #8a1c24; }</style>'
       b'<rect width="300" height="100"/></svg>')
LOGO_IMG = re.compile(r'<img class="logo" src="(/branding/logo\?v=[0-9a-f]{32})" alt="([^"]*)" '
                      r'width="(\d+)" height="(\d+)">')


def picture(image_format: str, size=(200, 100)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, image_format)
    return buffer.getvalue()


def svg(body: str, root: str = 'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"') -> bytes:
    return f"<svg {root}>{body}</svg>".encode()


@pytest.fixture
def instance(app_config):
    path = Path(app_config["KAMUSM_INSTANCE"])
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def db_of():
    """A connection of the test's own to an app's database, closed at the end."""
    opened = []

    def connect(app):
        connection = storage.connect(app.config["DATABASE"])
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        connection.conn.close()


def logo_app(app_config, instance, content: bytes, name: str = "logo.png", **settings):
    (instance / name).write_bytes(content)
    app = create_app({**app_config, "KAMUSM_LOGO_FILE": name, **settings})
    load_demo(app)
    return app


@pytest.mark.parametrize(("content", "expected"), [
    (picture("PNG"), ("image/png", 96, 48)),
    (picture("JPEG", (100, 100)), ("image/jpeg", 48, 48)),
    (SVG, ("image/svg+xml", 144, 48)),
    (svg("", 'xmlns="http://www.w3.org/2000/svg" width="40px" height="80"'), ("image/svg+xml", 24, 48)),
])
def test_a_good_logo_is_read_by_its_content(tmp_path, content, expected):
    (tmp_path / "logo.bin").write_bytes(content)  # the name says nothing of the type
    logo = branding.load_logo("logo.bin", tmp_path)
    assert (logo.media_type, logo.width, logo.height) == expected
    assert logo.data == content and re.fullmatch(r"[0-9a-f]{32}", logo.etag)


def test_an_absolute_path_is_taken_as_it_is(tmp_path):
    (tmp_path / "elsewhere.png").write_bytes(picture("PNG"))
    assert branding.load_logo(str(tmp_path / "elsewhere.png"), tmp_path / "instance").media_type == "image/png"


def test_no_logo_setting_means_no_logo(tmp_path):
    assert branding.load_logo("", tmp_path) is None


@pytest.mark.parametrize(("content", "message"), [
    (b"just some text, named like a picture", "is not a PNG, JPEG or SVG image"),
    (b"<html><body><script>alert(1)</script></body></html>", "is not a PNG, JPEG or SVG image"),
    (b"<svg viewBox='0 0 1 1'></svg>", "is not a PNG, JPEG or SVG image"),  # no SVG namespace: no image
    (b"\x89PNG\r\n\x1a\n", "damaged PNG"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "damaged JPEG"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * (branding.LOGO_MAX_BYTES), "larger than 512 KiB"),
    (svg("<script>alert(1)</script>"), "<script> element"),
    (svg('<rect width="1" height="1" onclick="alert(1)"/>'), "event handler"),
    (svg('<foreignObject><p xmlns="http://www.w3.org/1999/xhtml">x</p></foreignObject>'), "<foreignObject>"),
    (svg('<image href="https://tracker.example/pixel.png" width="1" height="1"/>'), "links to another document"),
    (svg('<use xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="other.svg#a"/>'), "links to another document"),
    (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
     b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1">&b;</svg>', "DOCTYPE"),
    (svg("", 'xmlns="http://www.w3.org/2000/svg" width="50%" height="2cm"'), "without a viewBox"),
    (svg("", 'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 0 10"'), "no width or height"),
])
def test_a_bad_logo_file_is_refused(tmp_path, content, message):
    (tmp_path / "logo.png").write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        branding.load_logo("logo.png", tmp_path)
    assert str(refused.value).startswith("KAMUSM_LOGO_FILE: ")


def test_a_missing_file_or_a_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="logo.png does not exist"):
        branding.load_logo("logo.png", tmp_path)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ConfigError, match="is not a regular file"):
        branding.load_logo("folder.png", tmp_path)


def test_an_svg_may_draw_its_own_pictures_and_fragments(tmp_path):
    (tmp_path / "logo.svg").write_bytes(svg('<defs><path id="p" d="M0 0h1v1z"/></defs><use href="#p"/>'
                                            '<image href="data:image/png;base64,iVBORw0KGgo=" width="1" height="1"/>'))
    assert branding.load_logo("logo.svg", tmp_path).media_type == "image/svg+xml"


def test_the_portal_does_not_start_with_a_bad_logo(app_config, instance):
    with pytest.raises(ConfigError, match="KAMUSM_LOGO_FILE: .*missing.png does not exist"):
        create_app({**app_config, "KAMUSM_LOGO_FILE": "missing.png"})
    (instance / "logo.png").write_text("not a picture")
    with pytest.raises(ConfigError, match="is not a PNG, JPEG or SVG image"):
        create_app({**app_config, "KAMUSM_LOGO_FILE": "logo.png"})


def test_the_old_setting_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="KAMUSM_INSTITUTION is now called KAMUSM_INSTITUTION_NAME"):
        load_settings(tmp_path, {"KAMUSM_INSTITUTION": "Demo Üniversitesi"})
    (tmp_path / "kamusm.toml").write_text('KAMUSM_INSTITUTION = "Demo Üniversitesi"\n')
    with pytest.raises(ConfigError, match="KAMUSM_INSTITUTION_NAME"):
        load_settings(tmp_path, {})


@pytest.mark.parametrize("name", ["", "   ", "Demo\nBcc: someone@example.com"])
def test_the_institution_name_is_one_line(app_config, name):
    with pytest.raises(ConfigError, match="KAMUSM_INSTITUTION_NAME must be a name on one line"):
        create_app({**app_config, "KAMUSM_INSTITUTION_NAME": name})


def test_the_logo_is_served_cached_and_without_a_session(app_config, instance):
    content = picture("PNG")
    app = logo_app(app_config, instance, content)
    client = app.test_client()
    url = LOGO_IMG.search(client.get("/login").get_data(as_text=True)).group(1)
    client.delete_cookie("kamusm_session")
    response = client.get(url)
    assert response.status_code == 200 and response.data == content
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == branding.LOGO_CSP
    cache = response.cache_control
    assert cache.public and cache.max_age == 365 * 24 * 3600 and cache.immutable and not cache.no_store
    assert "Set-Cookie" not in response.headers
    etag = response.headers["ETag"]
    assert etag == f'"{url.rpartition("=")[2]}"'
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and "Set-Cookie" not in again.headers


def test_an_unversioned_logo_link_is_revalidated(app_config, instance):
    client = logo_app(app_config, instance, picture("PNG")).test_client()
    response = client.get("/branding/logo")
    assert response.status_code == 200 and response.cache_control.no_cache and not response.cache_control.max_age
    assert client.get("/branding/logo", headers={"If-None-Match": response.headers["ETag"]}).status_code == 304


def test_the_logo_opens_no_session(app_config, instance, clock, db_of):
    app = logo_app(app_config, instance, picture("PNG"))
    client = app.test_client()
    url = LOGO_IMG.search(client.get("/login").get_data(as_text=True)).group(1)
    seen = [row["seen_at"] for row in db_of(app).query("SELECT seen_at FROM sessions")]
    assert seen
    clock.advance(60)  # past the interval after which an opened session is touched
    assert client.get(url).status_code == 200
    assert [row["seen_at"] for row in db_of(app).query("SELECT seen_at FROM sessions")] == seen


def test_an_svg_logo_is_served_as_an_image_under_a_csp_that_runs_nothing(app_config, instance):
    client = logo_app(app_config, instance, SVG, name="logo.svg").test_client()
    response = client.get("/branding/logo")
    assert response.headers["Content-Type"] == "image/svg+xml" and response.data == SVG
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; " \
                                                          "frame-ancestors 'none'; sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_without_a_logo_the_route_is_404_and_the_header_shows_the_name_only(client):
    assert client.get("/branding/logo").status_code == 404
    page = client.get("/login").get_data(as_text=True)
    assert '<span class="institution">Demo Üniversitesi</span>' in page and '<img class="logo"' not in page


def test_the_header_shows_the_logo_and_the_name(app_config, instance):
    app = logo_app(app_config, instance, picture("PNG"), KAMUSM_INSTITUTION_NAME=NAME)
    page = app.test_client().get("/login").get_data(as_text=True)
    escaped = "Kırıkkale &amp; Kale Üniversitesi"
    url, alt, width, height = LOGO_IMG.search(page).groups()
    assert (alt, width, height) == (escaped, "96", "48")  # 200x100 shown 48 px high: no layout shift
    assert f'<span class="institution">{escaped}</span>' in page
    assert re.search(rf"<title>[^<]* · {re.escape(escaped)}</title>", page)


def test_an_htmx_partial_carries_no_header(app_config, instance):
    app = logo_app(app_config, instance, picture("PNG"))
    partial = app.test_client().get("/login", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial and '<img class="logo"' not in partial


def mails(app):
    with app.app_context():
        from kamusm.web.db import get_db
        return storage.outbox.latest_outbox(get_db(), "mail")


def ask_reset(client):
    token = csrf_token(client, "/forgot")
    # The mail is delivered once the answer is sent: when the response closes.
    with client.post("/forgot", data={"csrf_token": token, "identity": SELIN["identity"]}) as response:
        assert response.status_code == 200


def test_the_reset_mail_is_signed_with_the_institution(app_config):
    app = create_app({**app_config, "KAMUSM_INSTITUTION_NAME": NAME})
    load_demo(app)
    ask_reset(app.test_client())
    message = mails(app)[0]
    assert "/reset/" in message["body"] and message["body"].endswith(f"\n\n-- \n{NAME}\n")
    assert message["subject"] == "Güvenlik sözcüğü yenileme bağlantısı"


def test_the_email_confirmation_mail_is_signed_with_the_institution(app_config):
    app = create_app({**app_config, "KAMUSM_INSTITUTION_NAME": NAME})
    load_demo(app)
    client = app.test_client()
    AuthActions(client, app).login()
    client.post("/profile", data={"csrf_token": csrf_token(client, "/menu"), "email": "selin.yeni@demo.edu.tr"})
    message = mails(app)[0]
    assert "/profile/email/" in message["body"] and message["body"].endswith(f"\n\n-- \n{NAME}\n")


class FromInbox(Inbox):
    """Also keeps each message's From header, which tests.test_forgot_mail's Inbox does not."""

    def __init__(self):
        super().__init__()
        self.senders = []

    async def handle_DATA(self, server, session, envelope):
        self.senders.append(email.message_from_bytes(envelope.content, policy=email.policy.default)["From"])
        return await super().handle_DATA(server, session, envelope)


def test_over_smtp_the_institution_is_the_sender_name_and_the_signature(app_config):
    inbox, port = FromInbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        ask_reset(smtp_app(app_config, port, KAMUSM_INSTITUTION_NAME=NAME).test_client())
    finally:
        controller.stop()
    message = inbox.messages[0]
    assert message["data"].endswith(f"\n\n-- \n{NAME}\n") and "/reset/" in message["data"]
    assert message["from"] == "kamusm@demo.edu.tr"  # the envelope: the address alone
    sender = inbox.senders[0].addresses[0]
    assert (sender.display_name, sender.addr_spec) == (NAME, "kamusm@demo.edu.tr")


def test_a_sender_that_names_itself_keeps_its_name():
    settings = mail.SmtpSettings("127.0.0.1", 25, "none", "", "", 1, "Kamu SM Portalı <kamusm@demo.edu.tr>",
                                 display_name=NAME)
    message = mail.SmtpMail(settings).message("selin.yilmaz@demo.edu.tr", "Konu", "Metin")
    assert message["From"].addresses[0].display_name == "Kamu SM Portalı"
    named = mail.SmtpMail(mail.SmtpSettings("127.0.0.1", 25, "none", "", "", 1, "kamusm@demo.edu.tr",
                                            display_name=NAME)).message("x@demo.edu.tr", "Konu", "Metin")
    address = named["From"].addresses[0]
    assert (address.display_name, address.addr_spec) == (NAME, "kamusm@demo.edu.tr")
    assert named["Message-ID"].endswith("@demo.edu.tr>")

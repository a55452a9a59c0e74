"""Forgotten security word by mail, the mail queue, and SMTP against a real local server (aiosmtpd)."""
import email
import email.policy
import re
import socket

import pytest
from aiosmtpd.controller import Controller

from kamusm import mail
from kamusm.mail import MailFailed, SmtpMail, SmtpSettings
from kamusm.web.factory import create_app
from tests.conftest import SELIN, AuthActions, audit_events, csrf_token, load_demo, open_db

SENT_ANSWER = "Bu kimlik numarası kayıtlıysa"


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append({"to": envelope.rcpt_tos, "from": envelope.mail_from,
                              "subject": message["Subject"], "data": message.get_body().get_content()})
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def smtp_app(app_config, port, **extra):
    app = create_app({**app_config, "KAMUSM_MAIL_BACKEND": "smtp", "KAMUSM_SMTP_HOST": "127.0.0.1",
                      "KAMUSM_SMTP_PORT": port, "KAMUSM_SMTP_SECURITY": "none", "KAMUSM_SMTP_TIMEOUT": 2,
                      "KAMUSM_MAIL_FROM": "kamusm@demo.edu.tr", **extra})
    load_demo(app)
    return app


def ask(client, identity):
    token = csrf_token(client, "/forgot")
    with client.post("/forgot", data={"csrf_token": token, "identity": identity}) as response:
        return response.status_code, response.get_data(as_text=True)


def link_in(text):
    return re.search(r"http://127\.0\.0\.1:5000(/reset/[A-Za-z0-9_-]+)", text).group(1)


def test_forgot_page(client):
    page = client.get("/forgot").get_data(as_text=True)
    assert "Güvenlik Sözcüğümü Unuttum" in page and 'name="identity"' in page


def test_known_and_unknown_ids_get_the_same_answer(client):
    known = ask(client, SELIN["identity"])
    unknown = ask(client, "10000000450")
    assert known[0] == unknown[0] == 200
    assert SENT_ANSWER in known[1] and SENT_ANSWER in unknown[1]
    strip = lambda text: re.sub(r'value="[^"]*"', "", text)  # noqa: E731 - csrf tokens differ
    assert strip(known[1]) == strip(unknown[1])


def test_malformed_id_is_422(client):
    assert ask(client, "10000000147")[0] == 422


def test_whole_reset_through_the_demo_mailbox(app, client):
    ask(client, SELIN["identity"])
    mailbox = client.get("/demo/mail").get_data(as_text=True)
    assert SELIN["email"] in mailbox
    path = link_in(mailbox)
    token = csrf_token(client, path)
    done = client.post(path, data={"csrf_token": token, "security_word": "yeni-mavi-gokyuzu",
                                   "security_word_confirm": "yeni-mavi-gokyuzu"})
    assert done.status_code == 200
    assert AuthActions(app.test_client(), app).word(word="yeni-mavi-gokyuzu").status_code == 303
    assert client.get(path).status_code == 404


def test_foreign_domain_gets_no_mail(app_config):
    app = create_app({**app_config, "KAMUSM_EMAIL_DOMAINS": ["uni.edu.tr"]})
    load_demo(app)
    client = app.test_client()
    assert SENT_ANSWER in ask(client, SELIN["identity"])[1]
    assert "/reset/" not in client.get("/demo/mail").get_data(as_text=True)


def test_per_holder_cap(client, db):
    for _ in range(5):
        ask(client, SELIN["identity"])
    assert db.execute("SELECT count(*) FROM tokens WHERE purpose = 'reset'").fetchone()[0] == 3


def test_per_ip_limit(app_config):
    app = create_app({**app_config, "RATELIMIT_ENABLED": True, "KAMUSM_FORGOT_RATE": "2 per minute"})
    client = app.test_client()
    assert [ask(client, "10000000450")[0] for _ in range(3)] == [200, 200, 429]


def test_mail_over_real_smtp(app_config, smtp_server):
    app = smtp_app(app_config, smtp_server.port)
    client = app.test_client()
    ask(client, SELIN["identity"])
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["to"] == [SELIN["email"]] and message["from"] == "kamusm@demo.edu.tr"
    assert "/reset/" in message["data"] and "Sayın Selin Yılmaz" in message["data"]
    assert message["subject"] == "Güvenlik sözcüğü yenileme bağlantısı"
    with open_db(app) as db:
        row = next(iter(db.query("SELECT * FROM mail_queue")))
    assert row["sent_at"] is not None and row["body"] == ""


def test_smtp_down_loses_nothing(app_config, smtp_server):
    port = free_port()
    app = smtp_app(app_config, port)
    client = app.test_client()
    status, page = ask(client, SELIN["identity"])
    assert status == 200 and SENT_ANSWER in page
    with open_db(app) as db:
        row = next(iter(db.query("SELECT * FROM mail_queue")))
        events = audit_events(db)
    assert row["sent_at"] is None and row["failed_at"] is not None and "/reset/" in row["body"]
    assert ("mail.sent", "failed") in events
    up = smtp_app(app_config, smtp_server.port)
    up.config["KAMUSM_INSTANCE"] = app.config["KAMUSM_INSTANCE"]
    result = up.test_cli_runner().invoke(args=["kamusm", "mail", "retry"])
    assert result.exit_code == 0 and "1 sent, 0 still failing" in result.output
    assert len(smtp_server.messages) == 1 and "/reset/" in smtp_server.messages[0]["data"]


def test_smtp_backend_raises_a_clean_error():
    backend = SmtpMail(SmtpSettings("127.0.0.1", free_port(), "none", "", "", 1, "kamusm@demo.edu.tr"))
    with pytest.raises(MailFailed) as caught:
        backend.deliver("someone@demo.edu.tr", "subject", "secret body /reset/abc")
    assert "abc" not in str(caught.value)


def test_retry_command_reports_failures(app_config):
    app = smtp_app(app_config, free_port())
    with open_db(app) as db:
        mail.queue_mail(db, None, "x@demo.edu.tr", "s", "b", 0.0)
    result = app.test_cli_runner().invoke(args=["kamusm", "mail", "retry"])
    assert result.exit_code == 1 and "0 sent, 1 still failing" in result.output


def self_signed(tmp_path):
    """A certificate for 127.0.0.1 and its key, as PEM files; the certificate doubles as the CA bundle."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "smtp.pem", tmp_path / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_starttls_and_login_against_a_real_server(app_config, tmp_path):
    import ssl

    from aiosmtpd.smtp import AuthResult

    cert_path, key_path = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.login == b"kamusm" and auth_data.password == b"mail-secret")

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True)
    controller.start()
    try:
        settings = dict(KAMUSM_SMTP_SECURITY="starttls", KAMUSM_SMTP_USER="kamusm", KAMUSM_SMTP_PASSWORD="mail-secret",
                        KAMUSM_SMTP_CA_FILE=str(cert_path))
        app = smtp_app(app_config, port, **settings)
        ask(app.test_client(), SELIN["identity"])
        assert logins == [(b"kamusm", b"mail-secret")] and len(inbox.messages) == 1
        untrusted = smtp_app(app_config, port, **{**settings, "KAMUSM_SMTP_CA_FILE": ""})
        ask(untrusted.test_client(), SELIN["identity"])
        assert len(inbox.messages) == 1, "a server whose certificate does not verify must get nothing"
        wrong = smtp_app(app_config, port, **{**settings, "KAMUSM_SMTP_PASSWORD": "wrong"})
        ask(wrong.test_client(), SELIN["identity"])
        assert len(inbox.messages) == 1
    finally:
        controller.stop()

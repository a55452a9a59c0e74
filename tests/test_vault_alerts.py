"""The holder is told at once, by SMS and by mail, whenever the portal shows, saves, deletes or seals their PIN/PUK;
the alert carries no secret, and a failed channel never undoes what it reports."""
import pytest

from kamusm import storage
from tests.conftest import SELIN, AuthActions, audit_events, open_db, post
from tests.test_sms import Gateway, _app_with_gateway
from tests.test_unlock import ask_seal
from tests.unlock_actions import pair_helper


def messages_to_selin(app) -> list[tuple[str, str]]:
    with open_db(app) as db:
        return [(row["kind"], row["body"]) for row in storage.outbox.latest_outbox(db, None, 100)
                if row["recipient"] in (SELIN["phone"], SELIN["email"])]


def alerts(app, words: str) -> list[str]:
    return [kind for kind, body in messages_to_selin(app) if words in body]


def test_revealing_sends_an_sms_and_a_mail(client, app, auth):
    auth.login()
    assert alerts(app, "görüntülendi") == []
    response = post(client, "/pin-puk/reveal", token_page="/pin-puk")
    assert 'id="pin_puk_revealed"' in response.get_data(as_text=True)
    assert sorted(alerts(app, "PIN/PUK bilgileriniz portalda görüntülendi")) == ["mail", "sms"]


def test_saving_and_deleting_each_send_their_alert(client, app, auth):
    auth.login()
    post(client, "/pin-puk/reveal", token_page="/pin-puk")
    saved = post(client, "/pin-puk/save", token_page="/pin-puk")
    assert saved.status_code == 200
    assert sorted(alerts(app, "dosya olarak indirildi")) == ["mail", "sms"]
    deleted = post(client, "/pin-puk/delete", token_page="/pin-puk", confirm="yes")
    assert deleted.status_code == 303
    assert sorted(alerts(app, "kalıcı olarak silindi")) == ["mail", "sms"]


def test_a_refused_reveal_alerts_nobody(client, app, auth, clock):
    auth.login()
    clock.advance(301)
    post(client, "/pin-puk/reveal", token_page="/pin-puk", code="000000")
    assert alerts(app, "görüntülendi") == []


def test_sealing_the_puk_for_the_helper_alerts_the_holder(client, app, auth):
    auth.login()
    pair_helper(client, app)
    assert ask_seal(client).status_code == 200
    assert sorted(alerts(app, "kart yardımcısına şifreli gönderildi")) == ["mail", "sms"]


@pytest.mark.parametrize("path", ["/pin-puk/reveal", "/pin-puk/save"])
def test_alerts_carry_no_secret(client, app, auth, path):
    auth.login()
    post(client, "/pin-puk/reveal", token_page="/pin-puk")
    post(client, path, token_page="/pin-puk")
    bodies = " ".join(body for _kind, body in messages_to_selin(app) if "Kamu SM bireysel işlemler" in body)
    assert "bireysel işlemler" in bodies
    assert SELIN["pin"] not in bodies and SELIN["puk"] not in bodies and SELIN["security_word"] not in bodies


@pytest.fixture
def gateway():
    server = Gateway()
    yield server
    server.close()


def test_a_failed_sms_is_audited_and_the_reveal_stands(app_config, gateway):
    app = _app_with_gateway(app_config, gateway.url)
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.word()
    auth.send_sms()
    assert auth.code(gateway.requests[-1]["body"]["text"].split(": ")[1][:6]).headers["Location"] == "/menu"
    gateway.statuses = [500, 500]
    response = post(client, "/pin-puk/reveal", token_page="/pin-puk")
    assert 'id="pin_puk_revealed"' in response.get_data(as_text=True)
    with open_db(app) as db:
        events = audit_events(db)
    assert events.index(("pinpuk.reveal", "ok")) < events.index(("pinpuk.reveal_alert", "sms_failed"))
    assert ("mail.sent", "ok") in events[events.index(("pinpuk.reveal", "ok")):]

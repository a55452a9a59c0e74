"""Son İşlemlerim: the holder's own events, newest first, with time and address; nobody else's."""
from __future__ import annotations

from kamusm import activity, audit
from tests.conftest import KEMAL, id_of, open_db, post


def test_the_holder_sees_their_logins_and_reveals_with_address(app, client, auth):
    auth.login()
    post(client, "/pin-puk/reveal", token_page="/pin-puk")
    page = client.get("/activity").get_data(as_text=True)
    assert page.index("PIN/PUK görüntülendi") < page.index("Giriş yapıldı")  # newest first
    assert "127.0.0.1" in page
    assert client.get("/activity").headers["Cache-Control"] == "no-store"


def test_only_shown_events_of_the_holder_and_no_one_else(app, clock):
    with open_db(app) as db:
        selin, kemal = id_of(db), id_of(db, KEMAL)
        audit.record(db, clock(), "login", "ok", kemal, "10.0.0.9")
        audit.record(db, clock(), "stepup.sms", "sent", selin, "10.0.0.1")
        audit.record(db, clock(), "certificate.suspend", "ok", selin, "10.0.0.2")
        rows = activity.holder_activity(db, selin)
    assert [(str(row["label"]), row["ip"]) for row in rows] == [("Sertifika askıya alındı", "10.0.0.2")]


def test_the_page_needs_a_login(client):
    assert client.get("/activity").headers["Location"].startswith("/login")

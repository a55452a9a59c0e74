"""One-time links that set a security word (activation now; the forgot mail reuses them).

Which words the form refuses, and that the roster import and the command line refuse the same, is
tests/test_policy.py."""
import pytest

from kamusm import reset, storage
from tests.conftest import SELIN, AuthActions, csrf_token


@pytest.fixture
def selin(db):
    return storage.holders.find_holder(db, SELIN["identity"])


def link(db, holder, clock, purpose=reset.PURPOSE_RESET):
    return "/reset/" + reset.issue_link_token(db, holder["id"], purpose, clock())


def submit(client, path, word, confirm=None):
    token = csrf_token(client, path)
    return client.post(path, data={"csrf_token": token, "security_word": word,
                                   "security_word_confirm": word if confirm is None else confirm})


def test_good_word_works_once_and_ends_other_sessions(app, client, db, selin, clock):
    other = app.test_client()
    AuthActions(other, app).login()
    path = link(db, selin, clock)
    assert submit(client, path, "mavi-gokyuzu-kumsal").status_code == 200
    assert other.get("/menu").headers["Location"] == "/login"
    assert client.get(path).status_code == 404
    assert AuthActions(app.test_client(), app).word(word="mavi-gokyuzu-kumsal").status_code == 303


def test_expired_link(client, db, selin, clock):
    path = link(db, selin, clock)
    clock.advance(reset.RESET_TTL_SECONDS + 1)
    response = client.get(path)
    assert response.status_code == 404 and "Bu bağlantı kullanılmış" in response.get_data(as_text=True)


def test_newer_link_voids_the_older(client, db, selin, clock):
    first = link(db, selin, clock)
    second = link(db, selin, clock)
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200


def test_unknown_and_absurd_tokens(client):
    assert client.get("/reset/nope").status_code == 404
    assert client.get("/reset/" + "a" * 500).status_code == 404


def test_token_is_stored_hashed(db, selin, clock):
    token = reset.issue_link_token(db, selin["id"], reset.PURPOSE_RESET, clock())
    assert token not in str(list(db.query("SELECT * FROM tokens")))

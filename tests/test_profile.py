"""Kişisel Bilgiler over HTTP: verified e-mail and phone changes."""
import re

import pytest

from kamusm import create_app, store
from tests.conftest import SELIN, AuthActions, csrf_token, load_demo

NEW_PHONE = "+905439998877"


def post(client, **data):
    return client.post("/profile", data={"csrf_token": csrf_token(client, "/menu"), **data})


def outbox(app, kind):
    with app.app_context():
        from kamusm.db import get_db
        return store.latest_outbox(get_db(), kind)


def code_sent_to(app, phone):
    message = next(message for message in outbox(app, "sms") if message["recipient"] == phone)
    return re.search(r"\b(\d{6})\b", message["body"]).group(1)


def holder(db):
    return store.find_holder(db, SELIN["identity"])


def test_view_shows_the_current_details(client, auth):
    auth.login()
    page = client.get("/profile").get_data(as_text=True)
    assert SELIN["email"] in page and SELIN["phone"] in page and 'name="email"' in page and 'name="phone"' in page


def test_email_change_counts_only_after_the_link(client, auth, app, db):
    auth.login()
    response = post(client, email="Selin.Yeni@demo.edu.tr")
    assert response.status_code == 200 and "doğrulama bağlantısı gönderildi" in response.get_data(as_text=True)
    assert holder(db)["email"] == SELIN["email"]
    message = outbox(app, "mail")[0]
    assert message["recipient"] == "selin.yeni@demo.edu.tr"
    path = re.search(r"http://127\.0\.0\.1:5000(/profile/email/[A-Za-z0-9_-]+)", message["body"]).group(1)
    assert client.get(path).status_code == 200
    assert holder(db)["email"] == "selin.yeni@demo.edu.tr"
    assert client.get(path).status_code == 404
    events = [(row["event"], row["outcome"]) for row in store.audit_entries(db)]
    assert ("profile.email", "link_sent") in events and ("profile.email", "changed") in events


def test_change_after_five_minutes_needs_a_fresh_code(client, auth, app, clock, db):
    auth.login()
    clock.advance(301)
    asked = post(client, email="selin.yeni@demo.edu.tr")
    assert asked.status_code == 200 and 'id="profile_code"' in asked.get_data(as_text=True)
    assert not outbox(app, "mail")
    assert post(client, code="000000" if code_sent_to(app, SELIN["phone"]) != "000000" else "111111").status_code == 422
    done = post(client, code=code_sent_to(app, SELIN["phone"]))
    assert done.status_code == 200 and outbox(app, "mail")[0]["recipient"] == "selin.yeni@demo.edu.tr"


def test_phone_change_is_verified_on_the_new_number_and_announced_on_the_old(client, auth, app, db):
    auth.login()
    asked = post(client, phone="0543 999 88 77")
    assert asked.status_code == 200 and NEW_PHONE in asked.get_data(as_text=True)
    assert holder(db)["phone"] == SELIN["phone"]
    old_code = code_sent_to(app, SELIN["phone"])
    new_code = code_sent_to(app, NEW_PHONE)
    if old_code != new_code:
        assert post(client, code=old_code).status_code == 422
    done = post(client, code=new_code)
    assert done.status_code == 200 and "numaranız değiştirildi" in done.get_data(as_text=True)
    assert holder(db)["phone"] == NEW_PHONE
    notice = outbox(app, "sms")[0]
    assert notice["recipient"] == SELIN["phone"] and "değiştirildi" in notice["body"]
    assert ("profile.phone", "changed") in [(row["event"], row["outcome"]) for row in store.audit_entries(db)]


@pytest.mark.parametrize(("data", "message"), [
    ({"phone": "12345"}, "05XX XXX XX XX"),
    ({"phone": "+441234567890"}, "05XX XXX XX XX"),
    ({"email": "not-an-address"}, "Geçerli bir e-posta"),
    ({"email": "x" * 300 + "@demo.edu.tr"}, "Geçerli bir e-posta"),
    ({"email": SELIN["email"]}, "zaten kayıtlı"),
    ({}, "Değiştirilecek bilgiyi"),
])
def test_bad_input_is_422_with_a_message(client, auth, data, message):
    auth.login()
    response = post(client, **data)
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_code_without_a_pending_change_is_409(client, auth):
    auth.login()
    assert post(client, code="123456").status_code == 409


def test_foreign_domain_is_refused(app_config):
    app = create_app({**app_config, "KAMUSM_EMAIL_DOMAINS": ["demo.edu.tr"]})
    load_demo(app)
    client = app.test_client()
    AuthActions(client, app).login()
    response = post(client, email="selin@gmail.com")
    assert response.status_code == 422 and "kurumsal" in response.get_data(as_text=True)


def test_email_link_for_another_purpose_is_refused(client, db, clock):
    from kamusm import reset
    token = reset.issue_link_token(db, holder(db)["id"], reset.PURPOSE_RESET, clock())
    assert client.get(f"/profile/email/{token}").status_code == 404


def test_profile_needs_a_full_login(client, auth):
    auth.word()
    assert client.get("/profile").headers["Location"] == "/login/sms"

"""Kişisel Bilgiler over HTTP: verified e-mail and phone changes."""
import json
import re

import pytest

from kamusm import reset, storage
from kamusm.web.factory import create_app
from tests.conftest import SELIN, AuthActions, code_sent_to, csrf_token, database_snapshot, load_demo, post

NEW_PHONE = "+905439998877"
OTHER_PHONE = "+905441112233"


def outbox(db, kind):
    return storage.outbox.latest_outbox(db, kind)


def holder(db):
    return storage.holders.find_holder(db, SELIN["identity"])


def link_to(db, recipient):
    """The path of the e-mail change link in the newest mail to `recipient`."""
    message = next(message for message in outbox(db, "mail") if message["recipient"] == recipient)
    return re.search(r"http://127\.0\.0\.1:5000(/profile/email/[A-Za-z0-9_-]+)", message["body"]).group(1)


def audited(db, event):
    return [row["outcome"] for row in storage.audit_log.audit_entries(db) if row["event"] == event]


def refusals(db, event):
    return [json.loads(row["detail"])["reason"] for row in storage.audit_log.audit_entries(db)
            if row["event"] == event and row["outcome"] == "refused"]


def test_view_shows_the_current_details(client, auth):
    auth.login()
    page = client.get("/profile").get_data(as_text=True)
    assert SELIN["email"] in page and SELIN["phone"] in page and 'name="email"' in page and 'name="phone"' in page


def test_email_change_counts_only_after_the_link_is_confirmed(client, auth, db):
    auth.login()
    response = post(client, "/profile", email="Selin.Yeni@demo.edu.tr")
    assert response.status_code == 200 and "doğrulama bağlantısı gönderildi" in response.get_data(as_text=True)
    assert holder(db)["email"] == SELIN["email"]
    path = link_to(db, "selin.yeni@demo.edu.tr")
    page = client.get(path)
    assert page.status_code == 200 and 'id="profile_email_confirm"' in page.get_data(as_text=True)
    assert holder(db)["email"] == SELIN["email"]
    done = post(client, path, token_page=path)
    assert done.status_code == 200 and 'id="profile_email_confirmed"' in done.get_data(as_text=True)
    assert holder(db)["email"] == "selin.yeni@demo.edu.tr"
    assert audited(db, "profile.email") == ["requested", "link_sent", "confirmed"]


def test_change_after_five_minutes_needs_a_fresh_code(client, auth, clock, db):
    auth.login()
    clock.advance(301)
    asked = post(client, "/profile", email="selin.yeni@demo.edu.tr")
    assert asked.status_code == 200 and 'id="profile_code"' in asked.get_data(as_text=True)
    assert not outbox(db, "mail")
    assert post(client, "/profile", code=other_code(code_sent_to(db, SELIN["phone"]))).status_code == 422
    done = post(client, "/profile", code=code_sent_to(db, SELIN["phone"]))
    assert done.status_code == 200 and outbox(db, "mail")[0]["recipient"] == "selin.yeni@demo.edu.tr"


def test_phone_change_is_verified_on_the_new_number_and_announced_on_the_old(client, auth, db):
    auth.login()
    asked = post(client, "/profile", phone="0543 999 88 77")
    assert asked.status_code == 200 and NEW_PHONE in asked.get_data(as_text=True)
    assert holder(db)["phone"] == SELIN["phone"]
    old_code = code_sent_to(db, SELIN["phone"])
    new_code = code_sent_to(db, NEW_PHONE)
    if old_code != new_code:
        assert post(client, "/profile", code=old_code).status_code == 422
    done = post(client, "/profile", code=new_code)
    assert done.status_code == 200 and "numaranız değiştirildi" in done.get_data(as_text=True)
    assert holder(db)["phone"] == NEW_PHONE
    notice = outbox(db, "sms")[0]
    assert notice["recipient"] == SELIN["phone"] and "değiştirildi" in notice["body"]
    outcomes = audited(db, "profile.phone")
    assert outcomes[0] == "requested" and outcomes[-1] == "confirmed"


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
    response = post(client, "/profile", **data)
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_code_without_a_pending_change_is_409(client, auth):
    auth.login()
    assert post(client, "/profile", code="123456").status_code == 409


def test_foreign_domain_is_refused(app_config):
    app = create_app({**app_config, "KAMUSM_EMAIL_DOMAINS": ["demo.edu.tr"]})
    load_demo(app)
    client = app.test_client()
    AuthActions(client, app).login()
    response = post(client, "/profile", email="selin@gmail.com")
    assert response.status_code == 422 and "kurumsal" in response.get_data(as_text=True)


def test_email_link_for_another_purpose_is_refused(client, db, clock):
    token = reset.issue_link_token(db, holder(db)["id"], reset.PURPOSE_RESET, clock())
    assert client.get(f"/profile/email/{token}").status_code == 404
    assert post(client, f"/profile/email/{token}", token_page="/login").status_code == 404
    assert reset.find_link_token(db, token)["used_at"] is None


def test_profile_needs_a_full_login(client, auth):
    auth.word()
    assert client.get("/profile").headers["Location"] == "/login/sms"


def other_code(code):
    return "000000" if code != "000000" else "111111"


def test_phone_code_confirms_only_the_number_it_was_sent_to(client, auth, db):
    """The outside probe: ask for A, then for B, and enter A's code. B, never verified, must not be stored."""
    auth.login()
    assert post(client, "/profile", phone="0543 999 88 77").status_code == 200
    asked_b = post(client, "/profile", phone="0544 111 22 33")
    assert asked_b.status_code == 200 and OTHER_PHONE in asked_b.get_data(as_text=True)
    code_a, code_b = code_sent_to(db, NEW_PHONE), code_sent_to(db, OTHER_PHONE)  # B gets a code of its own
    if code_a == code_b:
        pytest.skip("the two random codes coincided (one in a million)")
    refused = post(client, "/profile", code=code_a)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="profile_code"' in page
    assert "geçersiz kaldı" in page and OTHER_PHONE in page
    assert holder(db)["phone"] == SELIN["phone"]
    done = post(client, "/profile", code=code_b)
    assert done.status_code == 200 and "numaranız değiştirildi" in done.get_data(as_text=True)
    assert holder(db)["phone"] == OTHER_PHONE
    assert audited(db, "profile.phone") == ["requested", "requested", "voided", "refused", "confirmed"]
    assert refusals(db, "profile.phone") == ["voided"]


def test_newer_phone_request_voids_the_older_code_for_good(client, auth, db):
    """A, B, then A again: the first code for A belongs to a voided request, so it does not confirm A either."""
    auth.login()
    post(client, "/profile", phone="0543 999 88 77")
    first_a = code_sent_to(db, NEW_PHONE)
    post(client, "/profile", phone="0544 111 22 33")
    code_b = code_sent_to(db, OTHER_PHONE)
    post(client, "/profile", phone="0543 999 88 77")
    second_a = code_sent_to(db, NEW_PHONE)
    if len({first_a, code_b, second_a}) < 3:
        pytest.skip("two random codes coincided (about three in a million)")
    for voided in (first_a, code_b):
        refused = post(client, "/profile", code=voided)
        assert refused.status_code == 422 and "geçersiz kaldı" in refused.get_data(as_text=True)
    assert holder(db)["phone"] == SELIN["phone"]
    assert post(client, "/profile", code=second_a).status_code == 200
    assert holder(db)["phone"] == NEW_PHONE
    assert refusals(db, "profile.phone") == ["voided", "voided"]


def test_asking_for_the_same_number_again_keeps_its_code(client, auth, db):
    auth.login()
    post(client, "/profile", phone="0543 999 88 77")
    again = post(client, "/profile", phone="05439998877")
    assert again.status_code == 200 and 'id="profile_code"' in again.get_data(as_text=True)
    assert [message["recipient"] for message in outbox(db, "sms")].count(NEW_PHONE) == 1
    assert post(client, "/profile", code=code_sent_to(db, NEW_PHONE)).status_code == 200
    assert holder(db)["phone"] == NEW_PHONE
    assert "voided" not in audited(db, "profile.phone")


def test_a_wrong_code_is_refused_and_audited(client, auth, db):
    auth.login()
    post(client, "/profile", phone="0543 999 88 77")
    refused = post(client, "/profile", code=other_code(code_sent_to(db, NEW_PHONE)))
    assert refused.status_code == 422 and "SMS onay kodu hatalı" in refused.get_data(as_text=True)
    assert holder(db)["phone"] == SELIN["phone"]
    assert refusals(db, "profile.phone") == ["wrong_code"]


def test_phone_race_with_a_step_up_in_between(client, auth, clock, db):
    """With the step-up asked first, the number that counts is the last one asked for, proved by its own code."""
    auth.login()
    clock.advance(301)
    post(client, "/profile", phone="0543 999 88 77")
    post(client, "/profile", phone="0544 111 22 33")
    assert post(client, "/profile", code=code_sent_to(db, SELIN["phone"])).status_code == 200  # the step-up code
    assert NEW_PHONE not in [message["recipient"] for message in outbox(db, "sms")]
    assert post(client, "/profile", code=code_sent_to(db, OTHER_PHONE)).status_code == 200
    assert holder(db)["phone"] == OTHER_PHONE


def snapshot(db):
    """Everything a confirmation could write; the session row that carries the page's CSRF token is left out."""
    return database_snapshot(db, ("holders", "tokens", "audit", "mail_queue", "outbox", "sms_codes"))


def test_opening_the_link_writes_nothing_and_the_button_confirms(client, auth, db):
    auth.login()
    post(client, "/profile", email="selin.yeni@demo.edu.tr")
    path = link_to(db, "selin.yeni@demo.edu.tr")
    before = snapshot(db)
    page = client.get(path)  # what a mail scanner or a link preview does, as often as it likes
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "<html" in page.get_data(as_text=True) and 'id="profile_email_confirm"' in page.get_data(as_text=True)
    partial = client.get(path, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.get_data(as_text=True)
    assert partial.get_data(as_text=True).lstrip().startswith('<section id="profile_email_confirm"')
    assert client.head(path).status_code == 200
    assert snapshot(db) == before
    assert "confirmed" not in audited(db, "profile.email")
    assert holder(db)["email"] == SELIN["email"]
    body = client.get(path).get_data(as_text=True)
    assert "selin.yeni@demo.edu.tr" in body  # the holder's own session sees the address in full
    assert f'action="{path}"' in body and 'name="csrf_token"' in body
    done = post(client, path, token_page=path, htmx=True)
    assert done.status_code == 200 and 'id="profile_email_confirmed"' in done.get_data(as_text=True)
    assert "<html" not in done.get_data(as_text=True) and done.headers["Cache-Control"] == "no-store"
    assert holder(db)["email"] == "selin.yeni@demo.edu.tr"


def test_the_link_works_without_a_login_and_masks_the_address(client, auth, app, db):
    auth.login()
    post(client, "/profile", email="selin.yeni@demo.edu.tr")
    path = link_to(db, "selin.yeni@demo.edu.tr")
    elsewhere = app.test_client()  # another device, not logged in
    page = elsewhere.get(path)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "s*****@demo.edu.tr" in body and "selin.yeni" not in body
    assert page.headers["Cache-Control"] == "no-store"
    assert elsewhere.post(path).status_code == 400  # no CSRF token: refused, nothing written
    assert holder(db)["email"] == SELIN["email"]
    done = post(elsewhere, path, token_page=path)
    assert done.status_code == 200 and holder(db)["email"] == "selin.yeni@demo.edu.tr"


def test_newer_email_request_voids_the_older_link(client, auth, db):
    auth.login()
    post(client, "/profile", email="selin.a@demo.edu.tr")
    link_a = link_to(db, "selin.a@demo.edu.tr")
    token_for_a = csrf_token(client, link_a)  # A's page is open in a tab when B is asked for
    post(client, "/profile", email="selin.b@demo.edu.tr")
    link_b = link_to(db, "selin.b@demo.edu.tr")
    for refused in (client.get(link_a), client.post(link_a, data={"csrf_token": token_for_a})):
        body = refused.get_data(as_text=True)
        assert refused.status_code == 410 and 'id="profile_email_invalid"' in body and "geçersiz kaldı" in body
    assert holder(db)["email"] == SELIN["email"]
    assert post(client, link_b, token_page=link_b).status_code == 200
    assert holder(db)["email"] == "selin.b@demo.edu.tr"
    assert audited(db, "profile.email") == ["requested", "link_sent", "requested", "voided", "link_sent", "refused",
                                            "confirmed"]
    assert refusals(db, "profile.email") == ["voided"]


@pytest.mark.parametrize(("kill", "status", "message", "reason"), [
    ("use", 410, "daha önce kullanıldı", "used"),
    ("expire", 410, "süresi doldu", "expired"),
    ("void", 410, "geçersiz kaldı", "voided"),
])
def test_dead_links_say_why_with_a_4xx(client, auth, clock, db, kill, status, message, reason):
    auth.login()
    post(client, "/profile", email="selin.yeni@demo.edu.tr")
    path = link_to(db, "selin.yeni@demo.edu.tr")
    token = csrf_token(client, path)
    if kill == "use":
        assert client.post(path, data={"csrf_token": token}).status_code == 200
    elif kill == "expire":
        clock.advance(reset.RESET_TTL_SECONDS + 1)
        token = csrf_token(client, "/login")  # the login session has timed out too; the link needs none
    else:
        post(client, "/profile", email="selin.baska@demo.edu.tr")
    email = holder(db)["email"]
    before = snapshot(db)
    page = client.get(path)
    assert page.status_code == status and message in page.get_data(as_text=True)
    assert f'action="{path}"' not in page.get_data(as_text=True)
    assert snapshot(db) == before  # refusing a GET writes nothing either
    refused = client.post(path, data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert refused.status_code == status and message in refused.get_data(as_text=True)
    assert holder(db)["email"] == email
    assert refusals(db, "profile.email") == [reason]


def test_made_up_link_is_404(client):
    page = client.get("/profile/email/" + "A" * 43)
    assert page.status_code == 404 and 'id="profile_email_invalid"' in page.get_data(as_text=True)

"""Passkeys, the authenticator app and recovery codes over HTTP: enrolment on /security, the login's
second step, step-up, the 72-hour rule after a phone change, and turning SMS off.

Passkeys are answered by tests/webauthn_authenticator.py (a browser plus authenticator in software),
the app by pyotp with the seed the enrolment screen showed: the portal's own modules run for real.
"""
from __future__ import annotations

import html
import re

import pyotp
import pytest

from kamusm import storage
from tests.conftest import SELIN, SMS_CODE, audit_events, id_of, latest_code, open_db, post
from tests.webauthn_authenticator import SoftAuthenticator

ORIGIN = "http://localhost:5000"
OPTIONS = re.compile(r'data-passkey-options="([^"]+)"')
SEED = re.compile(r'<code class="seed">([A-Z2-7 ]+)</code>')
RECOVERY = re.compile(r"<li><code>([A-Z2-7-]{29})</code></li>")


def page(client, path: str) -> str:
    return client.get(path).get_data(as_text=True)


def options_on(text: str) -> str:
    match = OPTIONS.search(text)
    assert match, "no passkey options on the page"
    return html.unescape(match.group(1))


def sms_count(app) -> int:
    """SMS that carried a code: the alerts of a reveal carry none and are not what these tests count."""
    with open_db(app) as db:
        return sum(bool(SMS_CODE.search(message["body"])) for message in storage.outbox.latest_outbox(db, "sms", 1000))


def enrol_passkey(client, authenticator: SoftAuthenticator, name: str = "Dizüstü") -> None:
    response = authenticator.register(options_on(page(client, "/security")), origin=ORIGIN)
    answer = post(client, "/security", token_page="/security", action="add_passkey", new_credential=response, name=name)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert name in answer.get_data(as_text=True)


def enrol_app(client, clock) -> pyotp.TOTP:
    started = post(client, "/security", token_page="/security", action="start_totp")
    seed = SEED.search(started.get_data(as_text=True)).group(1).replace(" ", "")
    app_totp = pyotp.TOTP(seed)
    answer = post(client, "/security", token_page="/security", action="confirm_totp",
                  new_totp_code=app_totp.at(clock()), name="Telefon")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return app_totp


def to_second_step(auth, client) -> str:
    post(client, "/logout")
    assert auth.word().status_code == 303
    return page(client, "/login/sms")


@pytest.fixture
def logged_in(auth):
    auth.login()


def test_a_passkey_enrolled_on_security_logs_in_without_an_sms(app, client, auth, logged_in):
    authenticator = SoftAuthenticator()
    enrol_passkey(client, authenticator)
    second_step = to_second_step(auth, client)
    sent_before = sms_count(app)
    answer = authenticator.assert_(options_on(second_step), origin=ORIGIN)
    response = post(client, "/login/sms", token_page="/login/sms", credential=answer)
    assert response.headers["Location"] == "/menu"
    assert sms_count(app) == sent_before
    with open_db(app) as db:
        holder_id = id_of(db)
        assert ("login", "ok") in audit_events(db, "login", holder_id)
        assert storage.factors.holder_passkeys(db, holder_id)[0]["last_used_at"] is not None


def test_a_replayed_assertion_is_refused(app, client, auth, logged_in):
    authenticator = SoftAuthenticator()
    enrol_passkey(client, authenticator)
    answer = authenticator.assert_(options_on(to_second_step(auth, client)), origin=ORIGIN)
    assert post(client, "/login/sms", token_page="/login/sms", credential=answer).status_code == 303
    assert to_second_step(auth, client)
    replay = post(client, "/login/sms", token_page="/login/sms", credential=answer)
    assert replay.status_code == 422
    assert "süresi doldu ya da istek kullanıldı" in replay.get_data(as_text=True)


@pytest.mark.parametrize("where", [{"origin": "http://localhost.evil.example:5000"},
                                   {"origin": ORIGIN, "rp_id": "evil.example"}])
def test_an_assertion_for_another_site_is_refused(app, client, auth, logged_in, where):
    authenticator = SoftAuthenticator()
    enrol_passkey(client, authenticator)
    answer = authenticator.assert_(options_on(to_second_step(auth, client)), **where)
    response = post(client, "/login/sms", token_page="/login/sms", credential=answer)
    assert response.status_code == 422
    assert "Geçiş anahtarı doğrulanamadı" in response.get_data(as_text=True)
    with open_db(app) as db:
        assert storage.factors.factor_failures(db, id_of(db), "passkey")["failures"] == 1


def test_a_passkey_made_for_another_site_cannot_be_enrolled(client, logged_in):
    response = SoftAuthenticator().register(options_on(page(client, "/security")), origin="http://evil.example")
    answer = post(client, "/security", token_page="/security", action="add_passkey", new_credential=response)
    assert answer.status_code == 422
    assert "Kayıtlı geçiş anahtarınız yok." in answer.get_data(as_text=True)


@pytest.mark.parametrize("junk", ["", "{", "[]", '{"id": 1}', "x" * 20000,
                                  '{"id":"AA","rawId":"AA","type":"public-key","response":{}}'])
def test_junk_instead_of_a_passkey_answer_gets_a_message(client, auth, logged_in, junk):
    enrol_passkey(client, SoftAuthenticator())
    to_second_step(auth, client)
    response = post(client, "/login/sms", token_page="/login/sms", credential=junk)
    assert response.status_code == 422
    assert 'class="alert alert-error"' in response.get_data(as_text=True)


def test_the_app_logs_in_once_per_time_step(app, client, auth, clock, logged_in):
    app_totp = enrol_app(client, clock)
    clock.advance(30)
    second_step = to_second_step(auth, client)
    assert 'name="totp_code"' in second_step
    code = app_totp.at(clock())
    assert post(client, "/login/sms", token_page="/login/sms", totp_code=code).headers["Location"] == "/menu"
    to_second_step(auth, client)
    replay = post(client, "/login/sms", token_page="/login/sms", totp_code=code)
    assert replay.status_code == 422
    assert "Bu kod az önce kullanıldı" in replay.get_data(as_text=True)
    wrong = post(client, "/login/sms", token_page="/login/sms", totp_code="12345")
    assert wrong.status_code == 422


def test_the_enrolment_code_cannot_log_in_again(client, auth, clock, logged_in):
    app_totp = enrol_app(client, clock)
    to_second_step(auth, client)
    response = post(client, "/login/sms", token_page="/login/sms", totp_code=app_totp.at(clock()))
    assert response.status_code == 422


def test_recovery_codes_are_shown_once_spent_once_and_each_use_is_told(app, client, auth, logged_in):
    made = post(client, "/security", token_page="/security", action="new_recovery_codes")
    codes = RECOVERY.findall(made.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert codes[0] not in page(client, "/security")
    to_second_step(auth, client)
    response = post(client, "/login/sms", token_page="/login/sms", recovery_code=codes[0].lower())
    assert response.headers["Location"] == "/menu"
    with open_db(app) as db:
        assert "kurtarma kodu kullanıldı (9 kod kaldı)" in storage.outbox.latest_outbox(db, "sms", 1)[0]["body"]
        assert any("kurtarma kodu" in message["body"] for message in storage.outbox.latest_outbox(db, "mail", 5)
                   if message["recipient"] == SELIN["email"])
        assert storage.factors.recovery_code_counts(db, id_of(db))["unused"] == 9
    to_second_step(auth, client)
    again = post(client, "/login/sms", token_page="/login/sms", recovery_code=codes[0])
    assert again.status_code == 422
    assert post(client, "/login/sms", token_page="/login/sms", recovery_code="not a code").status_code == 422


def test_a_stronger_method_means_no_sms_unasked_at_step_up(app, client, clock, logged_in):
    app_totp = enrol_app(client, clock)
    clock.advance(301)
    sent_before = sms_count(app)
    offered = post(client, "/pin-puk/reveal", token_page="/pin-puk")
    assert offered.status_code == 200
    assert 'name="totp_code"' in offered.get_data(as_text=True)
    assert sms_count(app) == sent_before
    revealed = post(client, "/pin-puk/reveal", token_page="/pin-puk", totp_code=app_totp.at(clock()))
    assert 'id="pin_puk_revealed"' in revealed.get_data(as_text=True)
    clock.advance(301)
    asked = post(client, "/pin-puk/reveal", token_page="/pin-puk", send_sms="1")
    assert sms_count(app) == sent_before + 1 and 'name="code"' in asked.get_data(as_text=True)
    revealed = post(client, "/pin-puk/reveal", token_page="/pin-puk", code=latest_code(app))
    assert 'id="pin_puk_revealed"' in revealed.get_data(as_text=True)


def change_phone(app, client, new_phone: str = "+905559998877") -> None:
    post(client, "/profile", token_page="/profile", phone=new_phone)
    with open_db(app) as db:
        code = next(re.search(r"\b(\d{6})\b", message["body"]).group(1)
                    for message in storage.outbox.latest_outbox(db, "sms") if message["recipient"] == new_phone)
    assert post(client, "/profile", token_page="/profile", code=code).status_code == 200


def test_for_72_hours_after_a_phone_change_sms_alone_cannot_reveal(app, client, clock, logged_in):
    app_totp = enrol_app(client, clock)
    change_phone(app, client)
    with open_db(app) as db:
        mails = [message["body"] for message in storage.outbox.latest_outbox(db, "mail", 5)
                 if message["recipient"] == SELIN["email"]]
    assert any("numaranız değiştirildi" in body and "72 saat" in body for body in mails)
    refused = post(client, "/pin-puk/reveal", token_page="/pin-puk", send_sms="1")
    assert refused.status_code == 200 and 'name="code"' not in refused.get_data(as_text=True)
    assert "yalnız SMS ile onaylanamaz" in refused.get_data(as_text=True)
    code_anyway = post(client, "/pin-puk/reveal", token_page="/pin-puk", code="123456")
    assert code_anyway.status_code == 403
    clock.advance(30)
    revealed = post(client, "/pin-puk/reveal", token_page="/pin-puk", totp_code=app_totp.at(clock()))
    assert 'id="pin_puk_revealed"' in revealed.get_data(as_text=True)


def test_an_sms_only_holder_is_told_why_after_a_phone_change(app, client, logged_in):
    change_phone(app, client)
    refused = post(client, "/pin-puk/reveal", token_page="/pin-puk")
    assert refused.status_code == 403
    assert "yalnız SMS ile onaylanamaz" in refused.get_data(as_text=True)
    assert post(client, "/pin-puk/save", token_page="/pin-puk").status_code == 403


def test_sms_off_needs_another_method_and_removing_the_last_turns_it_on(app, client, auth, clock, logged_in):
    refused = post(client, "/security", token_page="/security", action="sms_off")
    assert refused.status_code == 409
    enrol_app(client, clock)
    assert post(client, "/security", token_page="/security", action="sms_off").status_code == 200
    second_step = to_second_step(auth, client)
    assert 'name="totp_code"' in second_step and "Telefon Numaranız" not in second_step
    assert post(client, "/login/sms", token_page="/login/sms").status_code == 403
    clock.advance(30)
    post(client, "/login/sms", token_page="/login/sms", totp_code=pyotp.TOTP(
        _seed_of(app)).at(clock()))
    assert post(client, "/security", token_page="/security", action="remove_totp").status_code == 200
    with open_db(app) as db:
        holder_id = id_of(db)
        assert not storage.holders.get_holder(db, holder_id)["sms_disabled"]
        assert ("security.sms_on", "ok") in audit_events(db, "security.sms", holder_id)


def _seed_of(app) -> str:
    from kamusm import totp, vault

    with app.app_context(), open_db(app) as db:
        row = storage.factors.get_totp(db, id_of(db))
        return totp.open_seed(vault.app_keyring(), row["holder_id"], row["sealed_secret"], row["kek_id"])


def test_changes_on_security_need_a_fresh_confirmation(app, client, clock, logged_in):
    clock.advance(301)
    listing = page(client, "/security")
    assert "Kimliğimi doğrula" in listing and "data-passkey-options" not in listing
    asked = post(client, "/security", token_page="/security", action="new_recovery_codes")
    assert 'id="security_stepup"' in asked.get_data(as_text=True)
    with open_db(app) as db:
        assert storage.factors.recovery_code_counts(db, id_of(db))["total"] == 0
    confirmed = post(client, "/security", token_page="/security", action="stepup", code=latest_code(app))
    assert "Kimliğiniz doğrulandı" in confirmed.get_data(as_text=True)
    assert post(client, "/security", token_page="/security", action="bogus").status_code == 422


def test_every_change_is_audited_and_told(app, client, clock, logged_in):
    enrol_passkey(client, SoftAuthenticator())
    with open_db(app) as db:
        holder_id = id_of(db)
        passkey_id = storage.factors.holder_passkeys(db, holder_id)[0]["id"]
    assert post(client, "/security", token_page="/security", action="remove_passkey",
                passkey=str(passkey_id)).status_code == 200
    assert post(client, "/security", token_page="/security", action="remove_passkey",
                passkey="nope").status_code == 404
    with open_db(app) as db:
        events = audit_events(db, "security.", holder_id)
        texts = [message["body"] for message in storage.outbox.latest_outbox(db, "sms", 5)]
    assert ("security.passkey_added", "ok") in events and ("security.passkey_removed", "ok") in events
    assert any("güvenlik yöntemleriniz değiştirildi" in text for text in texts)


def test_the_unlock_step_up_takes_the_app_and_holds_sms_back_after_a_phone_change(app, client, clock, logged_in):
    app_totp = enrol_app(client, clock)
    change_phone(app, client)
    clock.advance(301)
    sent_before = sms_count(app)
    offered = post(client, "/unlock/stepup/send", token_page="/unlock", json_api=True)
    assert offered.status_code == 200 and 'name="totp_code"' in offered.get_data(as_text=True)
    assert sms_count(app) == sent_before
    refused = post(client, "/unlock/stepup", token_page="/unlock", json_api=True, code="123456")
    assert refused.status_code == 403 and "yalnız SMS ile onaylanamaz" in refused.get_data(as_text=True)
    confirmed = post(client, "/unlock/stepup", token_page="/unlock", json_api=True, totp_code=app_totp.at(clock()))
    assert confirmed.status_code == 200 and confirmed.get_json() == {"ok": True}


def test_no_seed_recovery_code_or_passkey_answer_reaches_a_log(app, client, auth, clock, caplog, logged_in):
    import logging

    caplog.set_level(logging.DEBUG)
    started = post(client, "/security", token_page="/security", action="start_totp")
    seed = SEED.search(started.get_data(as_text=True)).group(1).replace(" ", "")
    code = pyotp.TOTP(seed).at(clock())
    post(client, "/security", token_page="/security", action="confirm_totp", new_totp_code=code)
    codes = RECOVERY.findall(post(client, "/security", token_page="/security",
                                  action="new_recovery_codes").get_data(as_text=True))
    to_second_step(auth, client)
    post(client, "/login/sms", token_page="/login/sms", recovery_code=codes[0])
    logged = caplog.text
    with open_db(app) as db:
        stored = " ".join(entry["detail"] for entry in storage.audit_log.audit_entries(db))
    for secret in (seed, code, *codes, codes[0].replace("-", "")):
        assert secret not in logged and secret not in stored

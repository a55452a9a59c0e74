"""The portal's side of Kilit Çözme over HTTP: own card only, paired helper, fresh code,
seal, caps, outcome, and the screens' messages. The PIN rules themselves are tests/test_policy.py."""
import html
import json
import re
from pathlib import Path

import pytest

from kamusm import sealing, storage
from kamusm.unlock import MESSAGES, OPERATIONS, OUTCOMES, SEALS_PER_DAY, messages, outcome_message
from tests.conftest import KEMAL, SELIN, AuthActions
from tests.unlock_actions import HELPER_KEY, HELPER_PUBLIC, pair_helper, post


def ask_seal(client, serial=SELIN["card_serial"], new_pin="582046", confirm=None, key=HELPER_PUBLIC):
    return post(client, "/unlock", new_pin=new_pin, new_pin_confirm=new_pin if confirm is None else confirm,
                card_serial=serial, helper_key=key)


def test_page_looks_for_the_helper(client, auth):
    auth.login()
    response = client.get("/unlock")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="unlock_checking"' in page and "data-unlock-slot" in page and "Kart yardımcısı aranıyor" in page
    assert "connect-src 'self' http://127.0.0.1:8765" in response.headers["Content-Security-Policy"]
    assert SELIN["puk"] not in page


def test_old_card_gets_the_own_puk_form(client, app):
    AuthActions(client, app).login(KEMAL["identity"], KEMAL["security_word"])
    pair_helper(client, app)
    page = client.get("/unlock/state", query_string=card_facts(KEMAL["card_serial"]),
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-operation="unblock-own-puk"' in page and KEMAL["puk"] not in page


def card_facts(serial=SELIN["card_serial"], key=HELPER_PUBLIC, **more):
    return {"helper_key": key, "helper_name": "ofis-pc", "reader": "Virtual PCD 00 00", "serial": serial,
            "pin_tries_left": "3", "puk_tries_left": "3", **more}


def test_seal_opens_only_in_the_helper_for_that_card(client, app, auth, clock, db):
    auth.login()
    pair_helper(client, app)
    response = ask_seal(client)
    assert response.status_code == 200
    assert SELIN["puk"] not in response.get_data(as_text=True)
    opened = sealing.open_seal(HELPER_KEY, response.json["sealed_puk"], SELIN["card_serial"], clock())
    assert opened.secret == SELIN["puk"] and opened.seal_id == response.json["seal_id"]
    with pytest.raises(sealing.SealError):
        sealing.open_seal(HELPER_KEY, response.json["sealed_puk"], KEMAL["card_serial"], clock())
    events = [(row["event"], row["outcome"]) for row in storage.audit_log.audit_entries(db)]
    assert ("unlock.seal", "ok") in events


def test_someone_elses_card_gets_no_seal(client, app, auth, db):
    auth.login()
    pair_helper(client, app)
    response = ask_seal(client, serial=KEMAL["card_serial"])
    assert response.status_code == 403 and "size ait değil" in response.json["message"]
    assert ask_seal(client, serial="'; DROP TABLE cards; --").status_code == 403


def test_old_card_gets_no_seal(client, app):
    AuthActions(client, app).login(KEMAL["identity"], KEMAL["security_word"])
    pair_helper(client, app)
    assert ask_seal(client, serial=KEMAL["card_serial"]).status_code == 409


def test_bad_pin_is_422_with_the_field(client, auth):
    auth.login()
    response = ask_seal(client, new_pin="1111")
    assert response.status_code == 422 and "new_pin" in response.json["errors"]


def test_bad_helper_key_is_422(client, auth):
    auth.login()
    assert ask_seal(client, key="not-a-key").status_code == 422


def test_seals_are_capped_per_day(client, app, auth, clock):
    auth.login()
    pair_helper(client, app)
    for _ in range(SEALS_PER_DAY):
        assert ask_seal(client).status_code == 200
    capped = ask_seal(client)
    assert capped.status_code == 429 and "sınırına" in capped.json["message"]
    clock.advance(24 * 3600 + 1)
    auth.login()
    assert ask_seal(client).status_code == 200


def test_deleted_puk_means_no_online_unlock(client, app, auth):
    auth.login()
    pair_helper(client, app)
    post(client, "/pin-puk/delete", confirm="yes")
    response = ask_seal(client)
    assert response.status_code == 409 and "silindiği için" in response.json["message"]


def test_successful_unblock_makes_the_stored_pin_stale(client, auth, db):
    auth.login()
    response = post(client, "/unlock/result", op="unblock", outcome="ok", card_serial=SELIN["card_serial"])
    assert response.status_code == 200 and "kilidi çözüldü" in response.json["message"]
    assert storage.cards.find_card(db, SELIN["card_serial"])["pin_replaced_at"] is not None
    assert "artık geçerli değildir" in client.get("/pin-puk").get_data(as_text=True)
    assert ("unlock.unblock", "ok") in [(row["event"], row["outcome"]) for row in storage.audit_log.audit_entries(db)]


def test_failed_outcome_changes_nothing(client, auth, db):
    auth.login()
    response = post(client, "/unlock/result", op="unblock", outcome="wrong_puk", card_serial=SELIN["card_serial"])
    assert response.status_code == 200 and "PUK" in response.json["message"]
    assert storage.cards.find_card(db, SELIN["card_serial"])["pin_replaced_at"] is None


@pytest.mark.parametrize(("op", "outcome"), [("format", "ok"), ("unblock", "pwned"), ("", "")])
def test_unknown_operations_are_400(client, auth, op, outcome):
    auth.login()
    assert post(client, "/unlock/result", op=op, outcome=outcome).status_code == 400


def test_pin_operations_are_permitted_and_capped(client, auth):
    auth.login()
    assert post(client, "/unlock/op", op="verify").status_code == 200
    assert post(client, "/unlock/op", op="change", new_pin="1", new_pin_confirm="1").status_code == 422
    statuses = [post(client, "/unlock/op", op="change", new_pin="582046", new_pin_confirm="582046").status_code
                for _ in range(10)]
    assert statuses[-1] == 429 and statuses[:9] == [200] * 9


def test_unlock_needs_a_full_login(client, auth):
    auth.word()
    assert client.get("/unlock").headers["Location"] == "/login/sms"


def test_refused_seals_do_not_spend_the_daily_cap(client, app, auth):
    auth.login()
    pair_helper(client, app)
    for _ in range(SEALS_PER_DAY + 2):
        assert ask_seal(client, serial=KEMAL["card_serial"]).status_code == 403
    assert ask_seal(client).status_code == 200


ROOT = Path(__file__).resolve().parent.parent
UNLOCK_SCREENS = [*(ROOT / "templates").glob("**/*unlock*.html"), ROOT / "static" / "js" / "unlock.js"]


def test_every_helper_answer_has_its_message(app):
    with app.test_request_context():
        assert {outcome for outcome in OUTCOMES if outcome != "ok"} <= MESSAGES.keys()
        assert [outcome_message(operation, "ok") for operation in OPERATIONS] == [
            "PIN doğru.", "PIN'iniz değiştirildi.", "Kartınızın kilidi çözüldü; yeni PIN'iniz geçerli."]
        assert outcome_message("verify", "wrong_pin") == "PIN hatalı."


def test_each_message_has_one_home(app):
    """The templates and the script render kamusm.unlock.MESSAGES; none keeps a copy of its own."""
    with app.test_request_context():
        texts = messages()
    assert len(UNLOCK_SCREENS) > 5
    for path in UNLOCK_SCREENS:
        source = path.read_text(encoding="utf-8")
        assert [text for text in texts.values() if text in source] == [], path


def test_the_page_hands_the_messages_to_its_script(client, auth, app):
    auth.login()
    page = client.get("/unlock").get_data(as_text=True)
    found = re.search(r'data-messages="([^"]*)"', page)
    with app.test_request_context():
        assert found and json.loads(html.unescape(found.group(1))) == messages()


@pytest.mark.parametrize(("error", "shown"), [("no_card", "Okuyucuda kart yok."), ("busy", "meşgul"),
                                              ("bad_request", "Kart okunamadı."), ("", "Kart okunamadı.")])
def test_card_problem_says_what_the_helper_answered(client, app, auth, error, shown):
    auth.login()
    pair_helper(client, app)
    facts = {**card_facts(), "error": error} if error else {**card_facts(), "serial": ""}
    page = client.get("/unlock/state", query_string=facts, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="unlock_card_problem"' in page and shown in page

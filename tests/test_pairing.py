"""Pairing the holder's helper and the seal's new conditions, over HTTP and as plain rules.

The outside probe's PUK leak: a logged-in session without a fresh code named a key of its own and
got the PUK sealed to it. Now a seal needs a code confirmed in the last 5 minutes and a key pinned by
pairing, and pairing needs a fresh code and the code the helper showed on its own console.
"""
import hashlib
import re
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kamusm import pairing, sealing, storage
from kamusm.errors import ValidationError
from kamusm.helper.dist import wheel_filename
from kamusm.unlock import SEALS_PER_DAY, HelperFacts, holder_system, install_steps, read_facts, screen_state
from kamusm.web.sessions import COOKIE_NAME
from kamusm.web.stepup import RECENT_CODE_SECONDS
from tests.conftest import KEMAL, SELIN, AuthActions, audit_events, csrf_token, id_of, latest_code
from tests.unlock_actions import (
    HELPER_PUBLIC,
    pair_helper,
    post,
    public_of,
    shown_code,
    start_pairing,
)

ATTACKER_KEY = X25519PrivateKey.generate()


def ask_seal(client, key=HELPER_PUBLIC, serial=SELIN["card_serial"]):
    return post(client, "/unlock", new_pin="582046", new_pin_confirm="582046", card_serial=serial, helper_key=key)


def state_of(client, **facts):
    response = client.get("/unlock/state", query_string=facts, headers={"HX-Request": "true"})
    found = re.search(r'<section id="unlock_(\w+)"', response.get_data(as_text=True))
    return response.status_code, found.group(1) if found else None


def facts(serial=SELIN["card_serial"], key=HELPER_PUBLIC, **more):
    return {"helper_key": key, "helper_name": "ofis-pc", "reader": "Virtual PCD 00 00", "serial": serial,
            "pin_tries_left": "3", "puk_tries_left": "3", **more}


def burst(app, client, count: int, path: str, data: dict) -> list[int]:
    """The same POST from `count` threads of the client's session at once; their statuses."""
    token = csrf_token(client, "/menu")
    cookie = client.get_cookie(COOKIE_NAME)
    statuses = []
    start_together = threading.Barrier(count)

    def send():
        start_together.wait()
        sender = app.test_client()
        sender.set_cookie(COOKIE_NAME, cookie.value, domain=cookie.domain)
        answer = sender.post(path, data=data, headers={"X-CSRFToken": token, "Accept": "application/json"})
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_key_the_session_names_gets_no_seal(client, auth, db):
    """The probe's attack, with a fresh code even: the key is not pinned, so no seal and no PUK."""
    auth.login()
    response = ask_seal(client, key=public_of(ATTACKER_KEY))
    assert response.status_code == 409 and response.json["pair"] is True
    assert "sealed_puk" not in response.json and SELIN["puk"] not in response.get_data(as_text=True)
    assert ("unlock.seal", "unpaired_helper") in audit_events(db)


def test_a_stale_session_gets_no_seal_even_for_a_paired_helper(client, app, auth, clock, db):
    auth.login()
    pair_helper(client, app)
    clock.advance(RECENT_CODE_SECONDS + 1)
    response = ask_seal(client)
    assert response.status_code == 401 and response.json["stepup"] is True and "sealed_puk" not in response.json
    assert ("unlock.seal", "stepup") in audit_events(db)


def test_a_stale_session_cannot_start_a_pairing(client, auth, clock, db):
    auth.login()
    clock.advance(RECENT_CODE_SECONDS + 1)
    response = start_pairing(client, ATTACKER_KEY)
    assert response.status_code == 401 and "sealed_code" not in response.json
    assert ("unlock.pair_start", "stepup") in audit_events(db)


def test_stepup_on_the_unlock_page_makes_the_session_fresh(client, app, auth, clock):
    auth.login()
    pair_helper(client, app)
    clock.advance(RECENT_CODE_SECONDS + 1)
    sent = post(client, "/unlock/stepup/send")
    assert sent.status_code == 200 and 'id="unlock_stepup"' in sent.get_data(as_text=True)
    wrong = post(client, "/unlock/stepup", code="000000")
    assert wrong.status_code == 422 and 'id="unlock_stepup"' in wrong.get_data(as_text=True)
    assert post(client, "/unlock/stepup", code=latest_code(app)).status_code == 200
    assert ask_seal(client).status_code == 200


def test_pairing_pins_the_key_and_tells_the_phone(client, app, auth, db):
    auth.login()
    started = start_pairing(client)
    code = shown_code(started, app)
    assert started.status_code == 200 and code not in started.get_data(as_text=True)
    paired = post(client, "/unlock/pair", pairing_code=f"{code[:3]} {code[3:]}", helper_key=HELPER_PUBLIC)
    assert paired.status_code == 200 and paired.json["fingerprint"] == pairing.key_fingerprint(HELPER_PUBLIC)
    row = storage.helper_keys.find_helper_key(db, id_of(db), HELPER_PUBLIC)
    assert row["name"] == "ofis-pc" and row["fingerprint"] == paired.json["fingerprint"]
    notice = storage.outbox.latest_outbox(db, "sms", 1)[0]
    assert notice["recipient"] == SELIN["phone"] and paired.json["fingerprint"] in notice["body"]
    assert ("unlock.pair", "ok") in audit_events(db) and ("unlock.pair_notice", "sent") in audit_events(db)
    assert ask_seal(client).status_code == 200
    assert ("unlock.seal", "ok") in audit_events(db)
    assert not any(code in str(entry["detail"]) for entry in storage.audit_log.audit_entries(db))


def test_a_code_works_once(client, app, auth, db):
    auth.login()
    started = start_pairing(client)
    code = shown_code(started, app)
    assert post(client, "/unlock/pair", pairing_code=code, helper_key=HELPER_PUBLIC).status_code == 200
    again = post(client, "/unlock/pair", pairing_code=code, helper_key=HELPER_PUBLIC)
    assert again.status_code == 422 and 'id="unlock_pair"' in again.get_data(as_text=True)


def test_a_code_expires_after_two_minutes(client, app, auth, clock, db):
    auth.login()
    started = start_pairing(client)
    code = shown_code(started, app)
    clock.advance(pairing.PAIRING_TTL_SECONDS + 1)
    late = post(client, "/unlock/pair", pairing_code=code, helper_key=HELPER_PUBLIC)
    assert late.status_code == 422 and "süresi doldu" in late.get_data(as_text=True)
    assert ("unlock.pair", "gone") in audit_events(db)


def test_three_wrong_codes_end_the_pairing(client, app, auth, db):
    auth.login()
    started = start_pairing(client)
    code = shown_code(started, app)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    first = post(client, "/unlock/pair", pairing_code=wrong, helper_key=HELPER_PUBLIC)
    assert first.status_code == 422 and 'aria-invalid="true"' in first.get_data(as_text=True)
    assert "kalan deneme" in first.get_data(as_text=True)
    post(client, "/unlock/pair", pairing_code=wrong, helper_key=HELPER_PUBLIC)
    post(client, "/unlock/pair", pairing_code=wrong, helper_key=HELPER_PUBLIC)
    right = post(client, "/unlock/pair", pairing_code=code, helper_key=HELPER_PUBLIC)
    assert right.status_code == 422
    assert storage.helper_keys.holder_helper_keys(db, id_of(db)) == []
    assert audit_events(db).count(("unlock.pair", "wrong_code")) == 2


def test_a_code_is_bound_to_the_key_it_was_sealed_for(client, app, auth, db):
    """The holder types the code their own helper showed; a page that swaps in another key gets nothing."""
    auth.login()
    started = start_pairing(client)
    stolen = post(client, "/unlock/pair", pairing_code=shown_code(started, app), helper_key=public_of(ATTACKER_KEY))
    assert stolen.status_code == 422
    assert storage.helper_keys.holder_helper_keys(db, id_of(db)) == []


def test_a_code_is_bound_to_the_session(client, app, auth, db):
    auth.login()
    started = start_pairing(client)
    other = app.test_client()
    AuthActions(other, app).login()
    answer = post(other, "/unlock/pair", pairing_code=shown_code(started, app), helper_key=HELPER_PUBLIC)
    assert answer.status_code == 422


def test_a_newer_pairing_voids_the_older(client, app, auth):
    auth.login()
    older = shown_code(start_pairing(client), app)
    newer_started = start_pairing(client)
    assert post(client, "/unlock/pair", pairing_code=older, helper_key=HELPER_PUBLIC).status_code == 422
    newer = post(client, "/unlock/pair", pairing_code=shown_code(newer_started, app), helper_key=HELPER_PUBLIC)
    assert newer.status_code == 200


def test_a_newer_pairing_in_another_session_voids_this_one(client, app, auth):
    auth.login()
    code = shown_code(start_pairing(client), app)
    other = app.test_client()
    AuthActions(other, app).login()
    assert start_pairing(other).status_code == 200
    assert post(client, "/unlock/pair", pairing_code=code, helper_key=HELPER_PUBLIC).status_code == 422


def test_parallel_guesses_never_exceed_the_tries(app, auth, client, db):
    """Reserved before the compare: 30 guesses at once check at most PAIRING_MAX_TRIES codes."""
    auth.login()
    started = start_pairing(client)
    code = shown_code(started, app)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    statuses = burst(app, client, 30, "/unlock/pair", {"pairing_code": wrong, "helper_key": HELPER_PUBLIC})
    assert statuses == [422] * 30
    # The try that spends the last one ends the pairing ("gone"): two wrong_code answers, however they interleave.
    assert audit_events(db).count(("unlock.pair", "wrong_code")) == pairing.PAIRING_MAX_TRIES - 1
    assert post(client, "/unlock/pair", pairing_code=code, helper_key=HELPER_PUBLIC).status_code == 422
    row = db.execute("SELECT tries FROM helper_pairings").fetchone()
    assert row[0] == pairing.PAIRING_MAX_TRIES


def test_a_try_is_reserved_in_the_database(app, db, clock):
    """The guard itself: whatever a request read before, the conditional UPDATE refuses a fourth try."""
    holder_id = id_of(db)
    pairing_id = storage.helper_keys.start_pairing(db, holder_id, "attempt", HELPER_PUBLIC, "pc", "mac", clock(),
                                                   clock() + 120)
    reserved = [storage.helper_keys.reserve_pairing_try(db, pairing_id, clock(), pairing.PAIRING_MAX_TRIES)
                for _ in range(5)]
    assert reserved == [1, 2, 3, None, None]
    assert storage.helper_keys.claim_pairing(db, pairing_id, clock())
    assert not storage.helper_keys.claim_pairing(db, pairing_id, clock())


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5"])
def test_malformed_codes_are_422_and_spend_no_try(client, app, auth, db, typed):
    auth.login()
    start_pairing(client)
    answer = post(client, "/unlock/pair", pairing_code=typed, helper_key=HELPER_PUBLIC)
    assert answer.status_code == 422 and 'id="pairing_code-error"' in answer.get_data(as_text=True)
    assert db.execute("SELECT tries FROM helper_pairings").fetchone()[0] == 0


@pytest.mark.parametrize("key", ["", "not-a-key", "A" * 5000, sealing.b64encode(b"\0" * 31)])
def test_a_malformed_key_starts_no_pairing(client, auth, db, key):
    auth.login()
    answer = post(client, "/unlock/pair/start", helper_key=key)
    assert answer.status_code in (413, 422) and "sealed_code" not in (answer.json or {})
    assert db.execute("SELECT count(*) FROM helper_pairings").fetchone()[0] == 0


def test_the_holder_sees_and_removes_paired_helpers(client, app, auth, db):
    auth.login()
    pair_helper(client, app)
    page = client.get("/unlock/state", query_string=facts(), headers={"HX-Request": "true"}).get_data(as_text=True)
    fingerprint = pairing.key_fingerprint(HELPER_PUBLIC)
    assert fingerprint in page and "ofis-pc" in page
    key_id = storage.helper_keys.holder_helper_keys(db, id_of(db))[0]["id"]
    removed = post(client, f"/unlock/helpers/{key_id}/delete")
    assert removed.status_code == 303 and removed.headers["Location"] == "/unlock"
    assert ("unlock.helper_removed", "ok") in audit_events(db)
    assert ask_seal(client).status_code == 409
    assert post(client, f"/unlock/helpers/{key_id}/delete").status_code == 404


def test_a_holder_cannot_remove_someone_elses_helper(client, app, auth, db):
    auth.login()
    pair_helper(client, app)
    key_id = storage.helper_keys.holder_helper_keys(db, id_of(db))[0]["id"]
    other = app.test_client()
    AuthActions(other, app).login(KEMAL["identity"], KEMAL["security_word"])
    assert post(other, f"/unlock/helpers/{key_id}/delete").status_code == 404
    assert len(storage.helper_keys.holder_helper_keys(db, id_of(db))) == 1


def test_each_state_over_http(client, app, auth):
    auth.login()
    assert state_of(client, error="unreachable") == (200, "unreachable")
    assert state_of(client, error="forbidden_origin") == (200, "unreachable")
    assert state_of(client, **facts()) == (200, "pair")
    start_pairing(client)
    assert state_of(client, **facts()) == (200, "pair_code")
    assert state_of(client, **facts(key=public_of(ATTACKER_KEY))) == (200, "pair")
    pair_helper(client, app)
    assert state_of(client, **facts()) == (200, "forms")
    assert state_of(client, helper_key=HELPER_PUBLIC, error="no_card") == (200, "card_problem")
    assert state_of(client, **facts(serial=KEMAL["card_serial"])) == (200, "foreign_card")
    assert state_of(client, **facts(puk_tries_left="0")) == (200, "blocked")


def test_forms_ask_for_a_code_before_the_online_unblock(client, app, auth, clock):
    auth.login()
    pair_helper(client, app)
    fresh = client.get("/unlock/state", query_string=facts(), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-operation="unblock"' in fresh
    clock.advance(RECENT_CODE_SECONDS + 1)
    stale = client.get("/unlock/state", query_string=facts(), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-operation="unblock"' not in stale and 'data-unlock-action="stepup-send"' in stale
    assert 'data-operation="change"' in stale


@pytest.mark.parametrize("bad", [
    {"error": "pwned"}, {"helper_key": "x"}, {}, {"helper_key": HELPER_PUBLIC, "serial": "<script>"},
    {"helper_key": HELPER_PUBLIC, "serial": "14000001", "pin_tries_left": "-1"},
    {"helper_key": HELPER_PUBLIC, "serial": "14000001", "puk_tries_left": "99"},
])
def test_nonsense_facts_are_400_with_a_message(client, auth, bad):
    auth.login()
    response = client.get("/unlock/state", query_string=bad, headers={"HX-Request": "true"})
    assert response.status_code == 400 and "anlaşılamadı" in response.get_data(as_text=True)


def test_unreachable_state_offers_the_wheel_and_its_commands(client, app, auth):
    dist = Path(app.config["KAMUSM_HELPER_DIST_DIR"])
    dist.mkdir(parents=True, exist_ok=True)
    (dist / wheel_filename()).write_bytes(b"wheel bytes")
    auth.login()
    page = client.get("/unlock/state", query_string={"error": "unreachable"},
                      headers={"HX-Request": "true", "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}
                      ).get_data(as_text=True)
    digest = hashlib.sha256(b"wheel bytes").hexdigest()
    assert digest in page and f"/helper/{wheel_filename()}#sha256={digest}" in page
    assert page.index('data-system="windows"') < page.index('data-system="debian"')
    assert "--origin http://localhost" in page and "Yerel ağ erişimi" in page
    assert 'name="new_pin"' not in page


def test_facts_and_states_as_rules():
    key = HELPER_PUBLIC
    assert screen_state(HelperFacts(error="unreachable"), False, False, False) == "unreachable"
    assert screen_state(HelperFacts(helper_key=key, serial="1"), False, False, True) == "pair"
    assert screen_state(HelperFacts(helper_key=key, serial="1"), False, True, True) == "pair_code"
    assert screen_state(HelperFacts(helper_key=key, error="no_reader"), True, False, False) == "card_problem"
    assert screen_state(HelperFacts(helper_key=key, serial="1"), True, False, False) == "foreign_card"
    assert screen_state(HelperFacts(helper_key=key, serial="1", puk_tries_left=0), True, False, True) == "blocked"
    assert screen_state(HelperFacts(helper_key=key, serial="1", puk_tries_left=1), True, False, True) == "forms"
    assert read_facts({"helper_key": key, "pin_tries_left": "2"}).pin_tries_left == 2
    assert read_facts({"helper_key": key, "helper_name": "pc<script>\n"}).helper_name == "pcscript"


def test_systems_and_their_steps():
    assert holder_system("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)") == "macos"
    assert holder_system("Mozilla/5.0 (X11; Linux x86_64)") == "debian"
    assert holder_system("", '"Windows"') == "windows"
    steps = install_steps("https://p/helper/w.whl", "ab" * 32, "https://p", "macos")
    assert [step.system for step in steps] == ["macos", "debian", "windows"]
    assert all(f"w.whl#sha256={'ab' * 32}" in step.install and "--origin https://p" in step.start for step in steps)


def test_check_code_input_rule(app):
    with app.test_request_context():
        assert pairing.check_code_input("123 456") == "123456"
        assert pairing.check_code_input("123-456") == "123456"
        with pytest.raises(ValidationError):
            pairing.check_code_input("12345")


def test_parallel_seals_spend_the_daily_cap_once_each(app, auth, client, db):
    """The probe's burst, against the seal cap: 12 at once get exactly SEALS_PER_DAY seals."""
    auth.login()
    pair_helper(client, app)
    statuses = burst(app, client, 12, "/unlock", {"new_pin": "582046", "new_pin_confirm": "582046",
                                                  "card_serial": SELIN["card_serial"], "helper_key": HELPER_PUBLIC})
    assert sorted(statuses) == [200] * SEALS_PER_DAY + [429] * (12 - SEALS_PER_DAY)
    assert audit_events(db).count(("unlock.seal", "ok")) == SEALS_PER_DAY


def test_start_commands_name_a_port_other_than_the_default():
    steps = install_steps("https://p/helper/w.whl", "ab" * 32, "https://p", "debian", port=9000)
    assert all(step.start.endswith("--port 9000 --origin https://p") for step in steps)

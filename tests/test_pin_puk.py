"""PIN ve PUK Bilgileri over HTTP: masked, reveal, step-up, save, delete (also behind a step-up)."""

import pytest

from kamusm import storage
from tests.conftest import KEMAL, SELIN, AuthActions, audit_events, id_of, latest_code, post


def test_masked_screen_shows_warnings_and_no_secret(client, auth):
    auth.login()
    page = client.get("/pin-puk").get_data(as_text=True)
    for text in ("Önemli Uyarı", "KALICI OLARAK KİLİTLENECEK", "ÜCRET KARŞILIĞINDA", "2011 yılı ve sonrasında",
                 "Kart Seri Numarası", "14*****", "0*****", "Parolalarımı Sil", "Göster"):
        assert text in page
    for secret in (SELIN["pin"], SELIN["puk"], SELIN["card_serial"]):
        assert secret not in page
    assert "PUK</td>" not in page  # a 2014 card: unlocked online, its PUK is never shown


def test_reveal_right_after_login_needs_no_new_code(client, auth):
    auth.login()
    response = post(client, "/pin-puk/reveal")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert SELIN["pin"] in page and SELIN["card_serial"] in page
    assert SELIN["puk"] not in page
    assert response.headers["Cache-Control"] == "no-store"


def test_2009_card_shows_its_puk(client, app):
    AuthActions(client, app).login(KEMAL["identity"], KEMAL["security_word"])
    page = post(client, "/pin-puk/reveal").get_data(as_text=True)
    assert KEMAL["pin"] in page and KEMAL["puk"] in page


def test_reveal_later_asks_for_a_fresh_code(client, auth, clock, app):
    auth.login()
    clock.advance(301)
    stepup = post(client, "/pin-puk/reveal")
    page = stepup.get_data(as_text=True)
    assert stepup.status_code == 200 and 'id="pin_puk_stepup"' in page and SELIN["pin"] not in page
    wrong = post(client, "/pin-puk/reveal", code="000000" if latest_code(app) != "000000" else "111111")
    assert wrong.status_code == 422 and SELIN["pin"] not in wrong.get_data(as_text=True)
    right = post(client, "/pin-puk/reveal", code=latest_code(app))
    assert right.status_code == 200 and SELIN["pin"] in right.get_data(as_text=True)


def test_login_code_cannot_be_replayed_for_step_up(client, auth, clock, app):
    auth.login()
    login_code = latest_code(app)
    clock.advance(301)
    post(client, "/pin-puk/reveal")
    fresh = latest_code(app)
    if fresh != login_code:
        assert post(client, "/pin-puk/reveal", code=login_code).status_code == 422


def test_save_downloads_a_text_file(client, auth):
    auth.login()
    response = post(client, "/pin-puk/save")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "text/plain"
    body = response.get_data(as_text=True)
    assert SELIN["pin"] in body and SELIN["card_serial"] in body and SELIN["puk"] not in body


def test_save_needs_a_recent_code(client, auth, clock):
    auth.login()
    clock.advance(301)
    response = post(client, "/pin-puk/save")
    assert response.status_code == 403
    assert SELIN["pin"] not in response.get_data(as_text=True)


def test_delete_needs_confirmation(client, auth, db):
    auth.login()
    response = post(client, "/pin-puk/delete")
    assert response.status_code == 422
    assert "kutuyu işaretleyerek" in response.get_data(as_text=True)
    holder_id = id_of(db)
    assert len(storage.vault.card_secrets(db, holder_id, SELIN["card_serial"])) == 2


def test_delete_is_for_good(client, auth, db, app):
    auth.login()
    response = post(client, "/pin-puk/delete", confirm="yes")
    assert response.status_code == 303 and response.headers["Location"] == "/pin-puk"
    page = client.get("/pin-puk").get_data(as_text=True)
    assert "kalıcı olarak silindi" in page and "Parolalarımı Sil" not in page
    holder_id = id_of(db)
    assert storage.vault.card_secrets(db, holder_id, SELIN["card_serial"]) == []
    assert storage.vault.get_data_key(db, holder_id) is None
    revealed = post(client, "/pin-puk/reveal").get_data(as_text=True)
    assert SELIN["pin"] not in revealed
    assert post(client, "/pin-puk/save").status_code == 409
    assert ("pinpuk.delete", "ok") in audit_events(db)


def secrets_left(db) -> int:
    holder_id = id_of(db)
    return len(storage.vault.card_secrets(db, holder_id, SELIN["card_serial"]))


def sms_sent(db) -> int:
    return len(storage.outbox.latest_outbox(db, "sms", 100))


def test_delete_later_asks_for_a_fresh_code_first(client, auth, clock, app, db):
    auth.login()
    clock.advance(301)  # a session left open, or stolen, with no recent code
    sent = sms_sent(db)
    stepup = post(client, "/pin-puk/delete", confirm="yes")
    page = stepup.get_data(as_text=True)
    assert stepup.status_code == 200 and 'id="pin_puk_stepup"' in page
    assert 'action="/pin-puk/delete"' in page and "silmek için" in page
    assert '<input type="hidden" name="confirm" value="yes">' in page  # the box the holder ticked goes along
    assert sms_sent(db) == sent + 1 and secrets_left(db) == 2
    deleted = post(client, "/pin-puk/delete", code=latest_code(app), confirm="yes")
    assert deleted.status_code == 303 and deleted.headers["Location"] == "/pin-puk"
    holder_id = id_of(db)
    assert secrets_left(db) == 0 and storage.vault.get_data_key(db, holder_id) is None
    events = audit_events(db)
    stepped = events.index(("pinpuk.delete", "stepup"))
    assert events[stepped:] == [("pinpuk.delete", "stepup"), ("stepup.sms", "sent"), ("stepup.code", "ok"),
                                ("pinpuk.delete", "ok"), ("receipt.issue", "ok"),
                                ("mail.sent", "ok")]  # the signed receipt, then the alert of the delete


def test_stale_delete_without_the_box_sends_no_code(client, auth, clock, db):
    auth.login()
    clock.advance(301)
    sent = sms_sent(db)
    response = post(client, "/pin-puk/delete")
    assert response.status_code == 422 and "kutuyu işaretleyerek" in response.get_data(as_text=True)
    assert sms_sent(db) == sent and secrets_left(db) == 2


def test_a_code_alone_deletes_nothing(client, auth, clock, app, db):
    auth.login()
    clock.advance(301)
    post(client, "/pin-puk/delete", confirm="yes")
    unticked = post(client, "/pin-puk/delete", code=latest_code(app))
    page = unticked.get_data(as_text=True)
    assert unticked.status_code == 422 and "kutuyu işaretleyerek" in page and 'id="pin_puk_masked"' in page
    assert secrets_left(db) == 2
    assert post(client, "/pin-puk/delete", confirm="yes").status_code == 303  # the code stays recent
    assert secrets_left(db) == 0


def test_a_wrong_code_deletes_nothing(client, auth, clock, app, db):
    auth.login()
    clock.advance(301)
    post(client, "/pin-puk/delete", confirm="yes")
    wrong = post(client, "/pin-puk/delete", code="000000" if latest_code(app) != "000000" else "111111",
                 confirm="yes")
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 422 and 'id="pin_puk_stepup"' in page and 'action="/pin-puk/delete"' in page
    assert secrets_left(db) == 2
    rejected = [row for row in storage.audit_log.audit_entries(db) if row["event"] == "stepup.code"]
    assert rejected[-1]["outcome"] == "rejected" and "pinpuk.delete" in rejected[-1]["detail"]
    assert post(client, "/pin-puk/delete", code="12345", confirm="yes").status_code == 422  # malformed
    assert secrets_left(db) == 2


def test_stale_htmx_delete_swaps_in_the_code_form_then_the_deleted_partial(client, auth, clock, app, db):
    auth.login()
    clock.advance(301)
    stepup = post(client, "/pin-puk/delete", htmx=True, confirm="yes")
    body = stepup.get_data(as_text=True)
    assert stepup.status_code == 200 and "<html" not in body and 'id="pin_puk_stepup"' in body
    deleted = post(client, "/pin-puk/delete", htmx=True, confirm="yes", code=latest_code(app))
    body = deleted.get_data(as_text=True)
    assert deleted.status_code == 200 and 'id="pin_puk_deleted"' in body and secrets_left(db) == 0


def test_htmx_delete_returns_the_deleted_partial(client, auth):
    auth.login()
    response = post(client, "/pin-puk/delete", htmx=True, confirm="yes")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body and 'id="pin_puk_deleted"' in body


def test_reveal_and_save_are_audited_without_secrets(client, auth, db):
    auth.login()
    post(client, "/pin-puk/reveal")
    post(client, "/pin-puk/save")
    rows = list(storage.audit_log.audit_entries(db))
    assert {"pinpuk.reveal", "pinpuk.save"} <= {row["event"] for row in rows}
    assert not any(SELIN["pin"] in str(row) for row in rows)


def test_stale_pin_notice(client, auth, db, clock):
    storage.cards.mark_pin_replaced(db, SELIN["card_serial"], clock())
    auth.login()
    page = client.get("/pin-puk").get_data(as_text=True)
    assert "artık geçerli değildir" in page


@pytest.mark.parametrize("path", ["/pin-puk/reveal", "/pin-puk/save", "/pin-puk/delete"])
def test_secret_routes_need_a_full_login(client, auth, path):
    auth.word()
    response = post(client, path, token_page="/login/sms", confirm="yes")
    assert response.status_code == 303 and response.headers["Location"] == "/login/sms"

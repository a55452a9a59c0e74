"""The login steps over HTTP: every step, every bad input, every skipped step."""
import re
import threading

import pytest

from kamusm import storage
from tests.conftest import CAPTCHA_ANSWER, KEMAL, SELIN, audit_events, csrf_token, latest_code

LOGIN_FAILED = "Kimlik numarası ya da güvenlik sözcüğü hatalı"


def login_form(client, identity, word):
    """The login form with the client's token and a fresh captcha, ready to post."""
    form = {"csrf_token": csrf_token(client), "identity": identity, "captcha": CAPTCHA_ANSWER, "security_word": word}
    client.get("/captcha.png")
    return form


def test_login_page_shows_the_seed_labels(client):
    page = client.get("/login").get_data(as_text=True)
    for label in ("Şifreli Giriş Ekranı", "Kimlik No", "T.C. Kimlik Numarası ya da Pasaport Numarası Giriniz",
                  "Resimdeki Yazı", "Güvenlik Sözcüğü", "Giriş", "Güvenlik Sözcüğümü Unuttum",
                  'name="identity"', 'name="captcha"', 'name="security_word"', "/captcha.png", "/captcha.wav"):
        assert label in page


def test_whole_flow_reaches_the_menu(client, auth, db):
    response = auth.word()
    assert response.status_code == 303 and response.headers["Location"] == "/login/sms"
    sms_page = client.get("/login/sms").get_data(as_text=True)
    assert "54* *** ** **" in sms_page and "444 5 576" in sms_page and "ücretsizdir" in sms_page
    assert auth.send_sms().headers["Location"] == "/login/code"
    code_page = client.get("/login/code").get_data(as_text=True)
    assert 'data-seconds-left="300"' in code_page and "Kalan Süre" in code_page
    assert auth.code().headers["Location"] == "/menu"
    menu = client.get("/menu").get_data(as_text=True)
    assert "Sayın S***** Y*****" in menu
    for label in ("PIN/PUK Bilgisi", "Kilit Çözme", "Sertifika Durumu", "Kişisel Bilgiler", "Çıkış"):
        assert label in menu
    assert ("login", "ok") in audit_events(db)


def test_the_menu_greets_from_the_session_and_from_the_holder_without_it(client, auth, db):
    auth.login()
    db.execute("UPDATE holders SET name = 'Kemal Demir' WHERE identity = ?", [SELIN["identity"]])
    assert "Sayın S***** Y*****" in client.get("/menu").get_data(as_text=True)  # the name as of login
    with client.session_transaction() as kept:
        del kept["masked_name"]  # a session saved before the name was kept in it
    assert "Sayın K***** D*****" in client.get("/menu").get_data(as_text=True)


def test_sms_goes_to_the_holders_phone_only(auth, db):
    auth.word()
    auth.send_sms()
    message = storage.outbox.latest_outbox(db, "sms", 1)[0]
    assert message["recipient"] == SELIN["phone"]
    assert re.search(r"\b\d{6}\b", message["body"])


@pytest.mark.parametrize(("identity", "word"), [
    (SELIN["identity"], "wrong-word"),
    ("10000000450", SELIN["security_word"]),  # valid checksum, no such holder
    ("U12345678", "whatever-word"),
])
def test_wrong_word_and_unknown_id_look_the_same(auth, identity, word):
    response = auth.word(identity, word)
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert LOGIN_FAILED in page
    assert identity not in page.replace(f'value="{identity}"', "")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("identity", "10000000147", "Bu geçerli bir T.C. Kimlik Numarası değil."),
    ("identity", "١٠٠٠٠٠٠٠١٤٦", "yalnızca 0-9"),
    ("identity", "1" * 300, "en fazla 20 karakter"),
    ("identity", "", "Kimlik numaranızı giriniz."),
    ("security_word", "", "Güvenlik sözcüğünüzü giriniz."),
    ("security_word", "x" * 129, "en fazla 128 karakter"),
    ("captcha", "WRONG", "Resimdeki yazı hatalı"),
    ("captcha", "K" * 500, "Resimdeki yazı hatalı"),
])
def test_bad_input_gets_a_message_and_422(auth, field, value, message):
    values = {"identity": SELIN["identity"], "word": SELIN["security_word"], "captcha": CAPTCHA_ANSWER}
    values["word" if field == "security_word" else field] = value
    response = auth.word(**values)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_captcha_is_case_insensitive(auth):
    assert auth.word(captcha=CAPTCHA_ANSWER.lower()).status_code == 303


def test_captcha_is_single_use(client):
    token = csrf_token(client)
    client.get("/captcha.png")
    form = {"csrf_token": token, "identity": SELIN["identity"], "captcha": CAPTCHA_ANSWER, "security_word": "wrong"}
    assert client.post("/login", data=form).status_code == 401
    form["security_word"] = SELIN["security_word"]
    response = client.post("/login", data=form)
    assert response.status_code == 422
    assert "Resimdeki yazı hatalı" in response.get_data(as_text=True)


def test_captcha_expires(client, clock):
    token = csrf_token(client)
    client.get("/captcha.png")
    clock.advance(301)
    response = client.post("/login", data={"csrf_token": token, "identity": SELIN["identity"],
                                           "captcha": CAPTCHA_ANSWER, "security_word": SELIN["security_word"]})
    assert response.status_code == 422


def test_captcha_image_and_audio_are_served_fresh(client):
    image = client.get("/captcha.png")
    assert image.status_code == 200 and image.mimetype == "image/png" and image.data[:4] == b"\x89PNG"
    assert image.headers["Cache-Control"] == "no-store"
    audio = client.get("/captcha.wav")
    assert audio.status_code == 200 and audio.mimetype == "audio/wav" and audio.data[:4] == b"RIFF"


def test_wrong_captcha_spends_no_hash_and_touches_no_counter(auth, db):
    auth.word(word="wrong-word", captcha="NOPE1")
    assert storage.holders.find_holder(db, SELIN["identity"])["failed_logins"] == 0


@pytest.mark.parametrize(("path", "expected"), [
    ("/login/sms", "/login"),
    ("/login/code", "/login"),
    ("/menu", "/login"),
    ("/pin-puk", "/login"),
])
def test_skipped_steps_go_back_to_login(client, path, expected):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"] == expected


def test_code_screen_before_sms_goes_back_to_sms(client, auth):
    auth.word()
    assert client.get("/login/code").headers["Location"] == "/login/sms"
    assert client.get("/menu").headers["Location"] == "/login/sms"
    token = csrf_token(client, "/login/sms")
    response = client.post("/login/code", data={"csrf_token": token, "code": "123456"})
    assert response.headers["Location"] == "/login/sms"


def test_session_id_changes_at_login(client, auth):
    client.get("/login")
    before = client.get_cookie("kamusm_session").value
    auth.word()
    after_word = client.get_cookie("kamusm_session").value
    auth.send_sms()
    auth.code()
    after_code = client.get_cookie("kamusm_session").value
    assert len({before, after_word, after_code}) == 3


def test_csrf_token_changes_at_each_login_step_and_the_old_one_is_refused(client, auth):
    anonymous = csrf_token(client)
    auth.word()
    after_word = csrf_token(client, "/login/sms")
    auth.send_sms()
    auth.code()
    after_code = csrf_token(client, "/menu")
    assert len({anonymous, after_word, after_code}) == 3
    assert client.post("/logout", data={"csrf_token": anonymous}).status_code == 400
    assert client.post("/logout", data={"csrf_token": after_word}).status_code == 400
    assert client.post("/logout", data={"csrf_token": after_code}).headers["Location"] == "/login?bye=1"


def test_logout_ends_the_session_server_side(client, auth, db):
    auth.login()
    cookie = client.get_cookie("kamusm_session").value
    token = csrf_token(client, "/menu")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.headers["Location"] == "/login?bye=1"
    assert ("logout", "ok") in audit_events(db)
    client.set_cookie("kamusm_session", cookie)
    assert client.get("/menu").headers["Location"] == "/login"


def test_idle_session_expires(client, auth, clock):
    auth.login()
    clock.advance(599)
    assert client.get("/menu").status_code == 200
    clock.advance(599)
    assert client.get("/menu").status_code == 200
    clock.advance(601)
    response = client.get("/menu")
    assert response.status_code == 303 and response.headers["Location"] == "/login?expired=1"
    assert "Oturumunuzun süresi doldu" in client.get("/login?expired=1").get_data(as_text=True)


def test_absolute_session_lifetime(client, auth, clock):
    auth.login()
    for _ in range(73):  # 73 x 590 s < 12 h, never idle for 10 minutes
        clock.advance(590)
        assert client.get("/menu").status_code == 200
    clock.advance(590)
    assert client.get("/menu").headers["Location"] == "/login?expired=1"


def test_expired_code(client, auth, clock):
    auth.word()
    auth.send_sms()
    code = latest_code(client.application)
    clock.advance(301)
    response = auth.code(code)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "süresi doldu" in page and 'id="login_code_expired"' in page


def test_code_from_another_session_is_useless(app):
    from tests.conftest import AuthActions
    first, second = app.test_client(), app.test_client()
    first_auth, second_auth = AuthActions(first, app), AuthActions(second, app)
    first_auth.word()
    first_auth.send_sms()
    first_code = latest_code(app)
    second_auth.word(KEMAL["identity"], KEMAL["security_word"])
    second_auth.send_sms()
    response = second_auth.code(first_code)
    assert response.status_code == 422
    assert first_auth.code(first_code).headers["Location"] == "/menu"


def test_code_works_once(client, auth, app, db):
    auth.word()
    auth.send_sms()
    code = latest_code(app)
    token = csrf_token(client, "/login/code")
    assert client.post("/login/code", data={"csrf_token": token, "code": code}).headers["Location"] == "/menu"
    # Replaying the same POST after login: the attempt is over, the code is spent.
    from kamusm import otp
    from kamusm.errors import CodeExpired

    attempt = next(iter(db.query("SELECT attempt FROM sms_codes ORDER BY id DESC LIMIT 1")))["attempt"]
    with pytest.raises(CodeExpired):
        otp.spend_code(db, app.secret_key, attempt, code, app.config["CLOCK"]())


def test_three_wrong_codes_kill_the_code(client, auth, app):
    auth.word()
    auth.send_sms()
    good = latest_code(app)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    first = auth.code(wrong)
    assert first.status_code == 422 and "Kalan deneme hakkı: 2" in first.get_data(as_text=True)
    auth.code(wrong)
    third = auth.code(wrong)
    assert "üç kez hatalı" in third.get_data(as_text=True)
    assert auth.code(good).status_code == 422


def test_the_right_code_after_two_wrong_ones_still_opens(auth, app):
    """Each entry takes its try before it is compared; the right one's try is its own, not a third wrong one."""
    auth.word()
    auth.send_sms()
    good = latest_code(app)
    for step in (1, 2):
        assert f"Kalan deneme hakkı: {3 - step}" in auth.code(f"{(int(good) + step) % 1_000_000:06d}").get_data(
            as_text=True)
    assert auth.code(good).headers["Location"] == "/menu"


@pytest.mark.parametrize(("code", "message"), [
    ("", "SMS onay kodunu giriniz."),
    ("12345", "6 rakamdan"),
    ("١٢٣٤٥٦", "6 rakamdan"),
    ("1234567", "6 rakamdan"),
    ("abcdef", "6 rakamdan"),
])
def test_bad_code_input(auth, code, message):
    auth.word()
    auth.send_sms()
    response = auth.code(code)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_resend_waits_for_the_cool_down(client, auth, clock, app):
    auth.word()
    auth.send_sms()
    first = latest_code(app)
    too_soon = auth.send_sms()
    assert too_soon.status_code == 429
    assert "saniye bekleyiniz" in too_soon.get_data(as_text=True)
    clock.advance(61)
    assert auth.send_sms().headers["Location"] == "/login/code"
    second = latest_code(app)
    if first != second:
        assert auth.code(first).status_code == 422
    assert auth.code(second).headers["Location"] == "/menu"


def test_sends_per_hour_are_capped(client, auth, clock):
    auth.word()
    for _ in range(5):
        assert auth.send_sms().status_code == 303
        clock.advance(61)
    response = auth.send_sms()
    assert response.status_code == 429
    assert "Bir saat içinde" in response.get_data(as_text=True)


def test_lockout_after_consecutive_failures(auth, db, clock):
    for _ in range(5):
        assert auth.word(word="wrong-word").status_code == 401
    locked = auth.word()
    assert locked.status_code == 401
    assert LOGIN_FAILED in locked.get_data(as_text=True)
    assert ("login.lockout", "locked") in audit_events(db)
    assert ("login.word", "locked") in audit_events(db)
    clock.advance(31)
    assert auth.word().status_code == 303


def test_lockout_grows(auth, clock):
    for _ in range(5):
        auth.word(word="wrong-word")
    clock.advance(31)
    auth.word(word="wrong-word")
    clock.advance(31)
    assert auth.word().status_code == 401
    clock.advance(30)
    assert auth.word().status_code == 303


def test_a_burst_of_wrong_words_over_http_is_hashed_threshold_times_and_the_right_word_behind_it_refused(app, db):
    """40 clients post a wrong word at once, a 41st the right word once their hashes have begun:
    5 Argon2id checks in all (the threshold), one lockout entry, 41 identical refusals."""
    from tests.counting_hasher import CountingHasher

    burst, threshold = 40, app.config["KAMUSM_LOCKOUT_THRESHOLD"]
    hasher = app.extensions["kamusm.hasher"] = CountingHasher(slots=1)  # one hashing thread: the burst queues
    clients = [app.test_client() for _ in range(burst + 1)]
    forms = [login_form(client, SELIN["identity"], "wrong-word") for client in clients]
    forms[-1]["security_word"] = SELIN["security_word"]
    barrier = threading.Barrier(burst + 1)
    responses = [None] * (burst + 1)

    def post(index):
        barrier.wait(30)
        if index == burst:
            assert hasher.wait_for_checks(threshold), "the wrong words never reached their hashes"
        responses[index] = clients[index].post("/login", data=forms[index])

    threads = [threading.Thread(target=post, args=(index,)) for index in range(burst + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [response.status_code for response in responses] == [401] * (burst + 1)
    assert all(LOGIN_FAILED in response.get_data(as_text=True) for response in responses)
    assert hasher.checks == threshold
    assert audit_events(db, "login.lockout") == [("login.lockout", "locked")]
    words = audit_events(db, "login.word")
    assert words.count(("login.word", "wrong_word")) == threshold and ("login.word", "ok") not in words
    assert words.count(("login.word", "locked")) == burst + 1 - threshold


def test_a_locked_holder_answers_as_slowly_as_an_unknown_id(auth, client):
    """No hash for a locked holder, but no quicker answer either: it waits as long as a check takes."""
    import statistics
    import time

    for _ in range(5):
        auth.word(word="wrong-word")
    locked, unknown = [], []
    for _ in range(8):
        for identity, times in ((SELIN["identity"], locked), ("10000000450", unknown)):
            form = login_form(client, identity, "wrong-word")
            started = time.perf_counter()
            assert client.post("/login", data=form).status_code == 401
            times.append(time.perf_counter() - started)
    assert statistics.median(locked) > 0.6 * statistics.median(unknown)


def test_success_resets_the_failure_count(auth, db):
    for _ in range(4):
        auth.word(word="wrong-word")
    assert auth.word().status_code == 303
    assert storage.holders.find_holder(db, SELIN["identity"])["failed_logins"] == 0


def test_login_while_logged_in_goes_to_menu(client, auth):
    auth.login()
    assert client.get("/login").headers["Location"] == "/menu"


def test_language_can_be_switched_and_is_remembered(client):
    english = client.get("/login?lang=en").get_data(as_text=True)
    assert "Password login" in english and 'lang="en"' in english
    assert "Password login" in client.get("/login").get_data(as_text=True)
    assert "Şifreli Giriş" in client.get("/login?lang=tr").get_data(as_text=True)


def test_accept_language_picks_english(app):
    page = app.test_client().get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Password login" in page.get_data(as_text=True)


def test_turkish_is_the_default(app):
    page = app.test_client().get("/login", headers={"Accept-Language": "de"})
    assert "Şifreli Giriş Ekranı" in page.get_data(as_text=True)


def test_unknown_identity_still_costs_one_hash(db):
    """The dummy hash is what keeps an unknown ID as slow as a wrong word (bench/login_timing.py measures it)."""
    from kamusm.auth import check_security_word
    from kamusm.errors import LoginFailed
    from kamusm.words import WordHasher

    class CountingHasher(WordHasher):
        checks = 0

        def check(self, stored_hash, word):
            CountingHasher.checks += 1
            return super().check(stored_hash, word)

    hasher = CountingHasher(19456, 2, 1)
    for identity in ("10000000450", SELIN["identity"]):
        with pytest.raises(LoginFailed):
            check_security_word(db, hasher, identity, "wrong-word", 0.0, 5)
    assert CountingHasher.checks == 2


def test_hash_slots_bound_how_many_checks_run_at_once():
    from argon2 import PasswordHasher, Type

    from kamusm.words import WordHasher

    running, most = 0, 0
    lock = threading.Lock()

    class CountingPasswordHasher(PasswordHasher):
        def verify(self, stored, word):
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            try:
                return super().verify(stored, word)
            finally:
                with lock:
                    running -= 1

    hasher = WordHasher(19456, 2, 1, slots=2)
    hasher._hasher = CountingPasswordHasher(memory_cost=19456, time_cost=2, parallelism=1, type=Type.ID)
    word_hash = hasher.hash("a-security-word")
    threads = [threading.Thread(target=hasher.check, args=(word_hash, "a-security-word")) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2


def test_a_forked_child_hashes_on_threads_of_its_own():
    import os
    import signal

    from kamusm.words import WordHasher

    hasher = WordHasher(19456, 2, 1, slots=1)
    word_hash = hasher.hash("a-security-word")  # the parent's hashing thread is running now
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # a child waiting on a thread it did not inherit would hang: die instead
        ok = False
        try:
            ok = hasher.check(word_hash, "a-security-word").ok
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert hasher.check(word_hash, "a-security-word").ok

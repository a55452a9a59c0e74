"""The rules of the second factors (authenticator app, recovery codes, passkeys, SMS during a phone change),
called as plain functions on a real database with a fixed clock; races run on separate connections."""
from __future__ import annotations

import base64
import json
import re
import threading

import pyotp
import pytest

from kamusm import factors, passkeys, recovery, storage, totp, vault
from kamusm.errors import CodeRejected, ValidationError
from kamusm.storage.connection import fetch_all
from tests.webauthn_authenticator import SoftAuthenticator, _client_data, to_base64url

NOW = 1_700_000_010.0  # inside a 30 s step, not at its edge
STEP = int(NOW // totp.STEP_SECONDS)
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
KEYRING = vault.Keyring(current=b"c" * 32)
HANDLE_KEY = b"h" * 32
RP = passkeys.RelyingParty("localhost", "http://localhost:5000", "Demo")
ORIGIN = RP.origin
RACERS = 16


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "kamusm.db"
    connection = storage.connect(path)
    storage.migrations.migrate(connection)
    connection.conn.close()
    return path


@pytest.fixture
def db(db_path):
    connection = storage.connect(db_path)
    yield connection
    connection.conn.close()


def make_holder(db, identity: str) -> dict:
    holder_id = storage.holders.upsert_holder(db, {"identity": identity, "name": "Deniz Ak", "phone": "+905430000099",
                                                   "email": f"{identity.lower()}@demo.edu.tr", "word_hash": None}, NOW)
    return storage.holders.get_holder(db, holder_id)


@pytest.fixture
def holder(db):
    return make_holder(db, "RULES1")


@pytest.fixture
def other(db):
    return make_holder(db, "RULES2")


def code_at(step: int, seed: str = SEED) -> str:
    return pyotp.TOTP(seed, interval=totp.STEP_SECONDS).at(step * totp.STEP_SECONDS)


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** 6:06d}"


def race(db_path, attempt) -> tuple[list, list]:
    """Run attempt(connection) in RACERS threads released at once; (results, exceptions)."""
    results, errors, lock = [], [], threading.Lock()
    start = threading.Barrier(RACERS)

    def run() -> None:
        connection = storage.connect(db_path)
        start.wait()
        try:
            outcome = attempt(connection)
            with lock:
                results.append(outcome)
        except Exception as error:  # sorted by the caller
            with lock:
                errors.append(error)
        finally:
            connection.conn.close()

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


# --- authenticator app (TOTP) ---

def test_a_new_seed_is_160_random_bits_of_base32():
    seeds = {totp.new_seed() for _ in range(20)}
    assert len(seeds) == 20
    for seed in seeds:
        assert re.fullmatch(r"[A-Z2-7]{32}", seed)
        assert len(base64.b32decode(seed)) * 8 == 160


def test_a_code_matches_its_step_within_one_step_of_drift_and_not_beyond():
    for offset in (-1, 0, 1):
        assert totp.matching_step(SEED, code_at(STEP + offset), NOW) == STEP + offset
    for offset in (-3, -2, 2, 3):
        assert totp.matching_step(SEED, code_at(STEP + offset), NOW) is None
    assert totp.matching_step(SEED, wrong_code(code_at(STEP)), NOW) is None
    assert totp.matching_step(totp.new_seed(), code_at(STEP), NOW) is None


@pytest.mark.parametrize(("raw", "code"), [("123456", "123456"), ("123 456", "123456"), (" 12 34 56\n", "123456"),
                                           ("\t000001", "000001")])
def test_code_input_strips_spaces(raw, code):
    assert totp.check_code_input(raw) == code


@pytest.mark.parametrize("raw", ["", None, "12345", "1234567", "12345a", "abcdef", "12-345", "١٢٣٤٥٦", "12345６"])
def test_code_input_other_than_six_ascii_digits_is_refused(raw):
    with pytest.raises(ValidationError, match="6 rakam"):
        totp.check_code_input(raw)


def test_the_seed_seals_under_the_kek_bound_to_its_holder(holder, other):
    sealed = totp.seal_seed(KEYRING, holder["id"], SEED)
    assert SEED.encode() not in sealed
    assert sealed != totp.seal_seed(KEYRING, holder["id"], SEED)  # a fresh nonce each time
    assert totp.open_seed(KEYRING, holder["id"], sealed, KEYRING.current_id) == SEED
    with pytest.raises(vault.VaultError):
        totp.open_seed(KEYRING, other["id"], sealed, KEYRING.current_id)  # moved to another holder's row
    with pytest.raises(vault.VaultError):
        totp.open_seed(vault.Keyring(b"x" * 32), holder["id"], sealed, vault.key_id(b"x" * 32))
    with pytest.raises(vault.VaultError):
        totp.open_seed(KEYRING, holder["id"], sealed, "unknown-kek")


def test_enrolment_keeps_the_app_only_with_a_right_code_and_only_once(db, holder):
    with pytest.raises(CodeRejected):
        totp.enrol(db, KEYRING, holder["id"], SEED, wrong_code(code_at(STEP)), "Telefon", NOW)
    assert storage.factors.get_totp(db, holder["id"]) is None
    with pytest.raises(ValidationError):
        totp.enrol(db, KEYRING, holder["id"], SEED, "12345", "Telefon", NOW)
    totp.enrol(db, KEYRING, holder["id"], SEED, code_at(STEP), "Telefon", NOW)
    row = storage.factors.get_totp(db, holder["id"])
    assert (row["name"], row["kek_id"], row["last_step"]) == ("Telefon", KEYRING.current_id, STEP)
    assert totp.open_seed(KEYRING, holder["id"], row["sealed_secret"], row["kek_id"]) == SEED
    second = totp.new_seed()
    with pytest.raises(ValidationError, match="zaten var"):
        totp.enrol(db, KEYRING, holder["id"], second, code_at(STEP, second), "Tablet", NOW)
    assert storage.factors.get_totp(db, holder["id"]) == row


@pytest.fixture
def enrolled(db, holder):
    totp.enrol(db, KEYRING, holder["id"], SEED, code_at(STEP), "Telefon", NOW)
    return holder


def test_a_right_code_is_accepted_once(db, enrolled):
    later = NOW + totp.STEP_SECONDS
    totp.verify(db, KEYRING, enrolled["id"], code_at(STEP + 1), later)
    with pytest.raises(CodeRejected, match="az önce kullanıldı"):
        totp.verify(db, KEYRING, enrolled["id"], code_at(STEP + 1), later)
    assert storage.factors.get_totp(db, enrolled["id"])["last_step"] == STEP + 1


def test_the_enrolment_code_cannot_be_used_again(db, enrolled):
    with pytest.raises(CodeRejected, match="az önce kullanıldı"):
        totp.verify(db, KEYRING, enrolled["id"], code_at(STEP), NOW)


def test_an_older_step_is_refused_after_a_newer_one(db, enrolled):
    later = NOW + totp.STEP_SECONDS
    totp.verify(db, KEYRING, enrolled["id"], code_at(STEP + 2), later)  # the app runs one step ahead
    with pytest.raises(CodeRejected, match="az önce kullanıldı"):
        totp.verify(db, KEYRING, enrolled["id"], code_at(STEP + 1), later)  # still inside the drift window


def test_verify_without_an_app_is_refused(db, holder):
    with pytest.raises(CodeRejected, match="uygulamanız yok"):
        totp.verify(db, KEYRING, holder["id"], "123456", NOW)


def test_wrong_app_codes_count_on_their_own_counter_and_lock_it(db, enrolled):
    later = NOW + totp.STEP_SECONDS
    for count in range(1, factors.FAILURE_THRESHOLD + 1):
        with pytest.raises(CodeRejected, match="hatalı"):
            totp.verify(db, KEYRING, enrolled["id"], wrong_code(code_at(STEP + 1)), later)
        assert storage.factors.factor_failures(db, enrolled["id"], "totp")["failures"] == count
    with pytest.raises(factors.FactorLocked):
        totp.verify(db, KEYRING, enrolled["id"], code_at(STEP + 1), later)  # right, but locked
    assert storage.factors.factor_failures(db, enrolled["id"], "totp")["locked_until"] == later + 30
    assert storage.factors.factor_failures(db, enrolled["id"], "sms") == {"failures": 0, "locked_until": 0.0}
    assert storage.factors.get_totp(db, enrolled["id"])["last_step"] == STEP  # the locked try spent nothing
    unlocked = later + 31
    totp.verify(db, KEYRING, enrolled["id"], code_at(int(unlocked // totp.STEP_SECONDS)), unlocked)
    assert storage.factors.factor_failures(db, enrolled["id"], "totp") == {"failures": 0, "locked_until": 0}


def test_rewrap_all_reseals_app_seeds_under_the_new_key(db, enrolled, other):
    seed = totp.new_seed()
    totp.enrol(db, KEYRING, other["id"], seed, code_at(STEP, seed), "Tablet", NOW)
    before = {holder_id: storage.factors.get_totp(db, holder_id) for holder_id in (enrolled["id"], other["id"])}
    new_kek = b"n" * 32
    assert vault.rewrap_all(db, KEYRING, new_kek) == 2
    after_ring = vault.Keyring(new_kek)  # the old key is no longer needed
    for holder_id, expected in ((enrolled["id"], SEED), (other["id"], seed)):
        row = storage.factors.get_totp(db, holder_id)
        assert row["kek_id"] == vault.key_id(new_kek)
        assert row["sealed_secret"] != before[holder_id]["sealed_secret"]
        assert totp.open_seed(after_ring, holder_id, row["sealed_secret"], row["kek_id"]) == expected
        with pytest.raises(vault.VaultError):
            totp.open_seed(KEYRING, holder_id, row["sealed_secret"], row["kek_id"])
    assert vault.rewrap_all(db, vault.Keyring(new_kek, (KEYRING.current,)), new_kek) == 0  # nothing left to do
    later = NOW + totp.STEP_SECONDS
    totp.verify(db, after_ring, enrolled["id"], code_at(STEP + 1), later)


# --- recovery codes ---

def test_a_recovery_code_is_six_groups_of_four_base32_characters():
    codes = {recovery.new_code() for _ in range(20)}
    assert len(codes) == 20
    for code in codes:
        assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){5}", code)


def test_issue_gives_ten_distinct_codes_stored_only_as_hashes(db, holder):
    codes = recovery.issue(db, holder["id"], NOW)
    assert len(codes) == len(set(codes)) == recovery.CODE_COUNT
    rows = fetch_all(db, "SELECT * FROM recovery_codes WHERE holder_id = ?", [holder["id"]])
    assert sorted(row["code_hash"] for row in rows) == sorted(recovery.code_hash(holder["id"], code) for code in codes)
    dump = "\n".join(db.conn.iterdump())
    for code in codes:
        assert code not in dump and code.replace("-", "") not in dump
    assert storage.factors.recovery_code_counts(db, holder["id"]) == {"total": 10, "unused": 10, "created_at": NOW}


@pytest.mark.parametrize("shape", [str.lower, lambda code: code.replace("-", " "), lambda code: code.replace("-", ""),
                                   lambda code: f"  {code.lower().replace('-', ' - ')}\n"])
def test_normalize_accepts_case_spaces_and_dashes(shape):
    code = "ABCD-EFGH-IJKL-MNOP-QRST-UV23"
    assert recovery.normalize(shape(code)) == code.replace("-", "")


@pytest.mark.parametrize("raw", ["", None, "ABCD-EFGH", "ABCD-EFGH-IJKL-MNOP-QRST-UV230",
                                 "ABCD-EFGH-IJKL-MNOP-QRST-UV01", "ABCD_EFGH_IJKL_MNOP_QRST_UV23",
                                 "ABCD-EFGH-IJKL-MNOP-QRST-UVİ2", "' OR 1=1 --"])
def test_normalize_refuses_junk(raw):
    with pytest.raises(ValidationError):
        recovery.normalize(raw)


def test_a_code_is_spent_once(db, holder):
    codes = recovery.issue(db, holder["id"], NOW)
    assert recovery.spend(db, holder["id"], codes[3].lower(), NOW) == 9
    with pytest.raises(CodeRejected):
        recovery.spend(db, holder["id"], codes[3], NOW)
    assert recovery.spend(db, holder["id"], codes[4], NOW) == 8
    assert storage.factors.factor_failures(db, holder["id"], "recovery")["failures"] == 0  # a right one clears


def test_a_new_set_voids_the_old_one(db, holder):
    old = recovery.issue(db, holder["id"], NOW)
    new = recovery.issue(db, holder["id"], NOW + 1)
    assert not set(old) & set(new)
    for code in old[:3]:
        with pytest.raises(CodeRejected):
            recovery.spend(db, holder["id"], code, NOW + 2)
    assert recovery.spend(db, holder["id"], new[0], NOW + 2) == 9


def test_codes_of_one_holder_do_not_work_for_another(db, holder, other):
    codes = recovery.issue(db, holder["id"], NOW)
    assert recovery.code_hash(holder["id"], codes[0]) != recovery.code_hash(other["id"], codes[0])
    recovery.issue(db, other["id"], NOW)
    with pytest.raises(CodeRejected):
        recovery.spend(db, other["id"], codes[0], NOW)
    assert storage.factors.factor_failures(db, other["id"], "recovery")["failures"] == 1
    assert recovery.spend(db, holder["id"], codes[0], NOW) == 9  # still unspent for its holder


def test_wrong_recovery_codes_lock_the_recovery_factor(db, holder):
    codes = recovery.issue(db, holder["id"], NOW)
    for _ in range(factors.FAILURE_THRESHOLD):
        with pytest.raises(CodeRejected):
            recovery.spend(db, holder["id"], recovery.new_code(), NOW)
    with pytest.raises(factors.FactorLocked):
        recovery.spend(db, holder["id"], codes[0], NOW)
    assert storage.factors.recovery_code_counts(db, holder["id"])["unused"] == 10


# --- passkeys ---

@pytest.mark.parametrize(("url", "rp_id", "origin", "usable"), [
    ("https://imza.example.edu.tr", "imza.example.edu.tr", "https://imza.example.edu.tr", True),
    ("https://imza.example.edu.tr/", "imza.example.edu.tr", "https://imza.example.edu.tr", True),
    ("https://imza.example.edu.tr:8443/portal", "imza.example.edu.tr", "https://imza.example.edu.tr:8443", True),
    ("", "localhost", "http://localhost:5000", True),
    ("http://127.0.0.1:5000", "127.0.0.1", "http://127.0.0.1:5000", False),
    ("http://[::1]:5000", "::1", "http://[::1]:5000", False),
])
def test_the_relying_party_comes_from_the_public_url(url, rp_id, origin, usable):
    rp = passkeys.relying_party(url, "Demo")
    assert (rp.rp_id, rp.origin, rp.name, rp.usable) == (rp_id, origin, "Demo", usable)


def test_passkey_names_are_tidied_and_bounded():
    assert passkeys.check_name("  İş   dizüstü \n", "Geçiş anahtarı") == "İş dizüstü"
    assert passkeys.check_name("", "Geçiş anahtarı") == "Geçiş anahtarı"
    assert passkeys.check_name(None, "Geçiş anahtarı") == "Geçiş anahtarı"
    assert passkeys.check_name("a" * passkeys.NAME_MAX, "x") == "a" * passkeys.NAME_MAX
    for bad in ("a" * (passkeys.NAME_MAX + 1), "key\x00", "evil\u202egnp"):
        with pytest.raises(ValidationError):
            passkeys.check_name(bad, "x")


def register(db, authenticator: SoftAuthenticator, holder: dict, now: float = NOW) -> dict:
    options = passkeys.registration_options(db, RP, HANDLE_KEY, holder, "deniz", now)
    return passkeys.register(db, RP, holder["id"], authenticator.register(options, origin=ORIGIN), "Dizüstü", now)


def login_response(db, authenticator: SoftAuthenticator, holder_id: int, now: float = NOW, **where) -> str:
    options = passkeys.authentication_options(db, RP, holder_id, now)
    return authenticator.assert_(options, origin=ORIGIN, **where)


def test_a_passkey_registers_and_authenticates(db, holder):
    authenticator = SoftAuthenticator()
    row = register(db, authenticator, holder)
    (credential_id,) = authenticator.credentials
    assert (row["holder_id"], row["credential_id"], row["sign_count"], row["name"], row["transports"]) == (
        holder["id"], to_base64url(credential_id), 0, "Dizüstü", "internal")
    assert authenticator.credentials[credential_id].user_handle == passkeys.user_handle(HANDLE_KEY, holder["id"])
    for count in (1, 2):
        used = passkeys.authenticate(db, RP, holder["id"], login_response(db, authenticator, holder["id"]), NOW)
        assert used["id"] == row["id"]
        assert storage.factors.find_passkey(db, holder["id"], row["credential_id"])["sign_count"] == count
    assert storage.factors.factor_failures(db, holder["id"], "passkey")["failures"] == 0


def test_the_registration_options_exclude_the_holders_passkeys(db, holder):
    row = register(db, SoftAuthenticator(), holder)
    options = json.loads(passkeys.registration_options(db, RP, HANDLE_KEY, holder, "deniz", NOW))
    assert [entry["id"] for entry in options["excludeCredentials"]] == [row["credential_id"]]
    assert (options["rp"]["id"], options["authenticatorSelection"]["userVerification"]) == ("localhost", "required")


def test_an_assertion_is_accepted_once(db, holder):
    authenticator = SoftAuthenticator()
    register(db, authenticator, holder)
    response = login_response(db, authenticator, holder["id"])
    passkeys.authenticate(db, RP, holder["id"], response, NOW)
    with pytest.raises(passkeys.PasskeyRejected):
        passkeys.authenticate(db, RP, holder["id"], response, NOW)


def test_a_registration_response_is_accepted_once(db, holder):
    authenticator = SoftAuthenticator()
    options = passkeys.registration_options(db, RP, HANDLE_KEY, holder, "deniz", NOW)
    response = authenticator.register(options, origin=ORIGIN)
    passkeys.register(db, RP, holder["id"], response, "Dizüstü", NOW)
    with pytest.raises(passkeys.PasskeyRejected):
        passkeys.register(db, RP, holder["id"], response, "Dizüstü", NOW)
    assert len(storage.factors.holder_passkeys(db, holder["id"])) == 1


def test_an_expired_challenge_is_refused(db, holder):
    authenticator = SoftAuthenticator()
    options = passkeys.registration_options(db, RP, HANDLE_KEY, holder, "deniz", NOW)
    with pytest.raises(passkeys.PasskeyRejected):
        passkeys.register(db, RP, holder["id"], authenticator.register(options, origin=ORIGIN), "x", NOW + 301)
    assert storage.factors.holder_passkeys(db, holder["id"]) == []
    register(db, authenticator, holder)
    response = login_response(db, authenticator, holder["id"])
    with pytest.raises(passkeys.PasskeyRejected):
        passkeys.authenticate(db, RP, holder["id"], response, NOW + passkeys.CHALLENGE_SECONDS + 1)


def test_a_passkey_of_another_holder_is_refused(db, holder, other):
    authenticator = SoftAuthenticator()
    register(db, authenticator, holder)
    # the other holder has no passkeys, so the options name none and the authenticator offers the holder's
    with pytest.raises(passkeys.PasskeyRejected):
        passkeys.authenticate(db, RP, other["id"], login_response(db, authenticator, other["id"]), NOW)
    # the holder's own challenge, sent in the other holder's name
    with pytest.raises(passkeys.PasskeyRejected):
        passkeys.authenticate(db, RP, other["id"], login_response(db, authenticator, holder["id"]), NOW)


def test_user_verification_is_required_at_registration_and_use(db, holder):
    with pytest.raises(passkeys.PasskeyRejected):
        register(db, SoftAuthenticator(user_verified=False), holder)
    assert storage.factors.holder_passkeys(db, holder["id"]) == []
    authenticator = SoftAuthenticator()
    register(db, authenticator, holder)
    authenticator.user_verified = False
    with pytest.raises(passkeys.PasskeyRejected):
        passkeys.authenticate(db, RP, holder["id"], login_response(db, authenticator, holder["id"]), NOW)


def test_an_assertion_for_another_site_is_refused(db, holder):
    authenticator = SoftAuthenticator()
    register(db, authenticator, holder)
    for where in ({"origin": "http://evil.example:5000"}, {"rp_id": "evil.example"}):
        options = passkeys.authentication_options(db, RP, holder["id"], NOW)
        response = authenticator.assert_(options, **{"origin": ORIGIN, **where})
        with pytest.raises(passkeys.PasskeyRejected):
            passkeys.authenticate(db, RP, holder["id"], response, NOW)


def test_a_credential_already_registered_is_refused(db, holder, other):
    authenticator = SoftAuthenticator()
    first = json.loads(authenticator.register(passkeys.registration_options(db, RP, HANDLE_KEY, holder, "deniz", NOW),
                                              origin=ORIGIN))
    passkeys.register(db, RP, holder["id"], json.dumps(first), "Dizüstü", NOW)
    # "none" attestation signs nothing over clientDataJSON, so the same credential can answer a new challenge
    for who in (holder, other):
        options = json.loads(passkeys.registration_options(db, RP, HANDLE_KEY, who, "deniz", NOW))
        again = {**first, "response": {**first["response"], "clientDataJSON": to_base64url(
            _client_data("webauthn.create", options["challenge"], ORIGIN))}}
        with pytest.raises(passkeys.PasskeyRejected, match="zaten kayıtlı"):
            passkeys.register(db, RP, who["id"], json.dumps(again), "Yine", NOW)
    assert len(storage.factors.holder_passkeys(db, holder["id"])) == 1
    assert storage.factors.holder_passkeys(db, other["id"]) == []


@pytest.mark.parametrize("response", ["", "not json", "{}", "x" * (passkeys.MAX_RESPONSE_BYTES + 1)])
def test_a_malformed_assertion_is_refused(db, holder, response):
    with pytest.raises((ValidationError, passkeys.PasskeyRejected)):
        passkeys.authenticate(db, RP, holder["id"], response, NOW)


# --- which factors, and SMS while a new phone number is bound ---

def test_methods_lists_what_the_holder_can_use(db, holder):
    assert factors.methods(db, holder) == factors.Methods(passkeys=0, totp=False, recovery_left=0, sms=True)
    assert not factors.methods(db, holder).strong
    recovery.issue(db, holder["id"], NOW)
    assert factors.methods(db, holder).recovery_left == 10
    assert not factors.methods(db, holder).strong  # recovery codes are a last resort
    totp.enrol(db, KEYRING, holder["id"], SEED, code_at(STEP), "Telefon", NOW)
    assert factors.methods(db, holder).totp and factors.methods(db, holder).strong
    register(db, SoftAuthenticator(), holder)
    storage.holders.set_sms_disabled(db, holder["id"], True)
    assert factors.methods(db, storage.holders.get_holder(db, holder["id"])) == factors.Methods(
        passkeys=1, totp=True, recovery_left=10, sms=False)


def test_sms_alone_may_not_authorise_bound_actions_for_72_hours_after_a_phone_change(db, holder):
    assert holder["phone_changed_at"] is None
    assert not factors.phone_binding(holder, NOW)
    storage.holders.set_phone_changed_at(db, holder["id"], NOW)
    changed = storage.holders.get_holder(db, holder["id"])
    end = NOW + 72 * 3600
    for now in (NOW, NOW + 3600, end - 1):
        assert factors.phone_binding(changed, now)
        for action in factors.BOUND_ACTIONS:
            assert not factors.sms_may_authorise(changed, action, now)
        for action in ("login", "certificates", "profile.email"):
            assert factors.sms_may_authorise(changed, action, now)
    for now in (end, end + 1, NOW - 1):  # NOW - 1: a clock behind the change binds nothing
        assert not factors.phone_binding(changed, now)
        for action in factors.BOUND_ACTIONS:
            assert factors.sms_may_authorise(changed, action, now)


# --- races: one right entry sent many times at once is accepted once ---

def refused(errors) -> bool:
    return all(isinstance(error, (CodeRejected, passkeys.PasskeyRejected, factors.FactorLocked)) for error in errors)


def test_one_app_code_sent_at_once_is_accepted_once(db_path, db, enrolled):
    later = NOW + totp.STEP_SECONDS
    results, errors = race(db_path, lambda connection: totp.verify(connection, KEYRING, enrolled["id"],
                                                                   code_at(STEP + 1), later))
    assert (len(results), len(errors)) == (1, RACERS - 1)
    assert refused(errors), errors
    assert storage.factors.get_totp(db, enrolled["id"])["last_step"] == STEP + 1


def test_one_recovery_code_sent_at_once_is_spent_once(db_path, db, holder):
    code = recovery.issue(db, holder["id"], NOW)[0]
    results, errors = race(db_path, lambda connection: recovery.spend(connection, holder["id"], code, NOW))
    assert (results, len(errors)) == ([9], RACERS - 1)
    assert refused(errors), errors
    assert storage.factors.recovery_code_counts(db, holder["id"])["unused"] == 9


def test_one_assertion_sent_at_once_is_accepted_once(db_path, db, holder):
    authenticator = SoftAuthenticator()
    row = register(db, authenticator, holder)
    response = login_response(db, authenticator, holder["id"])
    results, errors = race(db_path, lambda connection: passkeys.authenticate(connection, RP, holder["id"], response,
                                                                             NOW))
    assert (len(results), len(errors)) == (1, RACERS - 1)
    assert refused(errors), errors
    assert storage.factors.find_passkey(db, holder["id"], row["credential_id"])["sign_count"] == 1


"""kamusm.policy: one table per rule, and the ways in (roster import, /reset, the command line) agree."""
import html

import pytest

from kamusm import policy, roster, unlock
from kamusm.card.profile import DEFAULT_PROFILE
from kamusm.errors import ValidationError
from tests.conftest import SELIN, csrf_token

TOO_SHORT = "Güvenlik sözcüğü en az 10 karakter olmalıdır."
TOO_LONG = "Güvenlik sözcüğü en fazla 128 karakter olabilir."
OWN = "Güvenlik sözcüğü kimlik numaranızı ya da adınızı içeremez."
COMMON = "Bu sözcük çok yaygın ya da tahmin edilmesi kolay. Lütfen başka bir sözcük seçiniz."
MISMATCH = "İki güvenlik sözcüğü birbirinin aynı değil."
PIN_DIGITS = "PIN 4-8 rakamdan oluşmalıdır."
PUK_DIGITS = "PUK 8 rakamdan oluşmalıdır."
SERIAL = "Kart seri numarası 4-32 harf ve rakamdan oluşmalıdır."

# Refused for Selin (her identity and name), with no second copy to compare: every way in refuses these.
REFUSED_WORDS = [
    ("", TOO_SHORT),
    ("short", TOO_SHORT),
    ("password", TOO_SHORT),
    ("x" * 129, TOO_LONG),
    (SELIN["identity"], OWN),
    ("benim-10000000146-sozum", OWN),
    ("selin-guzel-sozcuk", OWN),
    ("SELIN-guzel-sozcuk", OWN),
    ("galatasaray1905", COMMON),
    ("GALATASARAY1905", COMMON),
    ("password1234", COMMON),
    ("aaaaaaaaaaaa", COMMON),
    ("abababababab", COMMON),
]


def refusal(call, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize(("word", "message"), REFUSED_WORDS)
def test_security_word_rules(app, word, message):
    with app.test_request_context():
        refused = refusal(policy.check_security_word, word, identity=SELIN["identity"], name=SELIN["name"])
        assert (str(refused), refused.field) == (message, "security_word")


def test_security_word_confirm_must_match(app):
    with app.test_request_context():
        refused = refusal(policy.check_security_word, "mavi-gokyuzu-kumsal", "mavi-gokyuzu-kumsaL")
        assert (str(refused), refused.field) == (MISMATCH, "security_word_confirm")


@pytest.mark.parametrize(("word", "confirm", "identity", "name"), [
    ("mavi-gokyuzu-kumsal", "mavi-gokyuzu-kumsal", SELIN["identity"], SELIN["name"]),
    ("mavi-gokyuzu-kumsal", None, None, None),
    ("abcd" * 32, None, None, None),
    ("selin-guzel-sozcuk", None, None, None),
    ("su-ay-yildiz-gunes", None, None, "Su Ay"),
    (SELIN["security_word"], None, SELIN["identity"], SELIN["name"]),
])
def test_security_word_accepts(word, confirm, identity, name):
    assert policy.check_security_word(word, confirm, identity, name) == word


@pytest.mark.parametrize(("word", "message"), [("", "Güvenlik sözcüğünüzü giriniz."), ("x" * 129, TOO_LONG)])
def test_login_only_bounds_the_word_typed(app, word, message):
    with app.test_request_context():
        refused = refusal(policy.check_word_input, word)
        assert (str(refused), refused.field) == (message, "security_word")
    assert policy.check_word_input("short") == "short"


@pytest.mark.parametrize("pin", ["", "123", "123456789", "12a456", "١٢٣٤٥٦", "１２３４", " 1234", "12 34"])
def test_pin_the_card_would_not_take(app, pin):
    with app.test_request_context():
        refused = refusal(policy.check_pin, pin)
        assert (str(refused), refused.field) == (PIN_DIGITS, "pin")


@pytest.mark.parametrize("pin", ["1234", "0123", "12345678", "123456", "111111"])
def test_pin_the_card_takes(pin):
    assert policy.check_pin(pin) == pin


@pytest.mark.parametrize(("new_pin", "confirm", "field", "message"), [
    ("", "", "new_pin", "Yeni PIN'i giriniz."),
    ("123", "123", "new_pin", PIN_DIGITS),
    ("123456789", "123456789", "new_pin", PIN_DIGITS),
    ("12a456", "12a456", "new_pin", PIN_DIGITS),
    ("١٢٣٤٥٦", "١٢٣٤٥٦", "new_pin", PIN_DIGITS),
    ("111111", "111111", "new_pin", "Tek rakamın tekrarı ya da ardışık rakamlar PIN olamaz."),
    ("123456", "123456", "new_pin", "Tek rakamın tekrarı ya da ardışık rakamlar PIN olamaz."),
    ("654321", "654321", "new_pin", "Tek rakamın tekrarı ya da ardışık rakamlar PIN olamaz."),
    ("582046", "582047", "new_pin_confirm", "İki PIN birbirinin aynı değil."),
])
def test_new_pin_rules(app, new_pin, confirm, field, message):
    with app.test_request_context():
        refused = refusal(policy.check_new_pin, new_pin, confirm)
        assert (str(refused), refused.field) == (message, field)


def test_new_pin_accepted():
    assert policy.check_new_pin("582046", "582046") == "582046"


@pytest.mark.parametrize("puk", ["", "1234567", "123456789", "1234567a", "١٢٣٤٥٦٧٨", "1234 5678"])
def test_puk_rules(app, puk):
    with app.test_request_context():
        refused = refusal(policy.check_puk, puk)
        assert (str(refused), refused.field) == (PUK_DIGITS, "puk")
    assert policy.check_puk("00000000") == "00000000"


@pytest.mark.parametrize(("raw", "expected"), [("14000001", "14000001"), (" 14000001 ", "14000001"),
                                               ("AbC1", "AbC1"), ("Z" * 32, "Z" * 32)])
def test_serial_is_kept_as_the_card_reports_it(raw, expected):
    assert policy.normalize_serial(raw) == expected


@pytest.mark.parametrize("raw", ["", "abc", "Z" * 33, "14-000001", "'; DROP TABLE cards; --", "١٤٠٠٠٠٠١", "1400 0001"])
def test_serial_rules(app, raw):
    with app.test_request_context():
        refused = refusal(policy.normalize_serial, raw)
        assert (str(refused), refused.field) == (SERIAL, "card_serial")


def test_numbers_come_from_the_card_profile_and_are_used_once():
    assert (policy.PIN_MIN_DIGITS, policy.PIN_MAX_DIGITS, policy.PUK_DIGITS) == (
        DEFAULT_PROFILE.pin_min_digits, DEFAULT_PROFILE.pin_max_digits, DEFAULT_PROFILE.puk_digits)
    assert unlock.SERIAL_PATTERN is policy.SERIAL_PATTERN
    for name in ("PIN_MIN_DIGITS", "PIN_MAX_DIGITS", "check_new_pin", "_SERIAL"):
        assert not hasattr(unlock, name) and not hasattr(roster, name), name


def roster_text(word: str) -> str:
    return ("identity,name,phone,email,card_serial,cert_issued,pin,puk,security_word\n"
            f"{SELIN['identity']},{SELIN['name']},{SELIN['phone']},{SELIN['email']},15000099,2015-01-20,"
            f"482916,73910284,{word}\n")


@pytest.mark.parametrize(("word", "message"), [row for row in REFUSED_WORDS if row[0]])
def test_roster_import_reset_and_the_command_line_refuse_the_same_words(app, runner, tmp_path, word, message):
    with app.test_request_context():
        refused = refusal(policy.check_security_word, word, identity=SELIN["identity"], name=SELIN["name"])
        assert str(refused) == message
    with app.app_context():  # the command line's language
        said_by_the_command_line = f"security_word: {refused}"
        with pytest.raises(roster.RosterError) as whole_file:
            roster.parse_roster(roster_text(word), [])
    assert whole_file.value.problems == [(2, said_by_the_command_line)]

    path = tmp_path / "roster.csv"
    path.write_text(roster_text(word), encoding="utf-8")
    imported = runner.invoke(args=["kamusm", "import", str(path)])
    assert imported.exit_code == 1 and f"line 2: {said_by_the_command_line}" in imported.output

    link = runner.invoke(args=["kamusm", "holder", "reset-link", SELIN["identity"]]).output.strip()
    response = submit(app.test_client(), link.removeprefix("http://127.0.0.1:5000"), word)
    assert response.status_code == 422 and message in html.unescape(response.get_data(as_text=True))


def test_reset_form_refuses_a_mismatch_with_the_rule_message(app, runner):
    link = runner.invoke(args=["kamusm", "holder", "reset-link", SELIN["identity"]]).output.strip()
    response = submit(app.test_client(), link.removeprefix("http://127.0.0.1:5000"), "mavi-gokyuzu-kumsal",
                      "mavi-gokyuzu-kumsaL")
    assert response.status_code == 422 and MISMATCH in html.unescape(response.get_data(as_text=True))


def submit(client, path, word, confirm=None):
    token = csrf_token(client, path)
    return client.post(path, data={"csrf_token": token, "security_word": word,
                                   "security_word_confirm": word if confirm is None else confirm})

"""APDU bytes, PIN blocks, status-word mapping and the 61xx/6Cxx exchange (pure; the simulated card in process)."""
from __future__ import annotations

import pytest

from kamusm.card import apdu
from kamusm.card.apdu import CardError, LastTryRefused
from kamusm.card.profile import DEFAULT_PROFILE, CardProfile
from kamusm.card.sim import SimCard

P = DEFAULT_PROFILE
SECRET_PIN = "482916"
SECRET_PUK = "73910284"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_pin_block_is_ascii_padded_with_ff_to_8_bytes():
    assert apdu.encode_pin(SECRET_PIN, P) == h("343832393136FFFF")
    assert apdu.encode_pin("1234", P) == h("31323334FFFFFFFF")
    assert apdu.encode_pin("12345678", P) == h("3132333435363738")
    assert apdu.encode_puk(SECRET_PUK, P) == h("3733393130323834")


@pytest.mark.parametrize(
    ("pin", "rule"),
    [
        ("", "4 to 8 digits"),
        ("123", "4 to 8 digits"),
        ("123456789", "4 to 8 digits"),
        ("12a4", "4 to 8 digits"),
        (" 1234", "4 to 8 digits"),
        ("١٢٣٤", "4 to 8 digits"),  # Arabic-Indic digits pass str.isdigit() but not the card
    ],
)
def test_malformed_pin_is_bad_request_without_echoing_it(pin, rule):
    with pytest.raises(CardError) as caught:
        apdu.encode_pin(pin, P)
    error = caught.value
    assert error.error == "bad_request"
    assert rule in error.message
    if pin.strip():
        assert pin not in str(error) and pin not in repr(error)


@pytest.mark.parametrize("puk", ["1234567", "123456789", "1234567a"])
def test_puk_must_be_exactly_8_digits(puk):
    with pytest.raises(CardError) as caught:
        apdu.encode_puk(puk, P)
    assert caught.value.error == "bad_request"
    assert "exactly 8 digits" in caught.value.message
    assert puk not in repr(caught.value)


def test_command_apdus_exact_bytes():
    pin = apdu.encode_pin(SECRET_PIN, P)
    new = apdu.encode_pin("1357", P)
    puk = apdu.encode_puk(SECRET_PUK, P)
    assert apdu.build_verify(0x81, pin) == h("0020008108343832393136FFFF")
    assert apdu.build_verify_status(0x81) == h("00200081")
    assert apdu.build_verify_status(0x82) == h("00200082")
    assert apdu.build_change_reference_data(0x81, pin, new) == h("0024008110343832393136FFFF31333537FFFFFFFF")
    assert apdu.build_reset_retry_counter(0x81, puk, new) == h("002C008110373339313032383431333537FFFFFFFF")
    assert apdu.build_get_response(0x10) == h("00C0000010")
    assert apdu.build_select_ef(0x2F02) == h("00A4020C022F02")
    assert apdu.build_read_binary() == h("00B0000000")
    assert apdu.build_read_binary(offset=0x0102, le=4) == h("00B0010204")


@pytest.mark.parametrize(
    ("command", "le", "expected"),
    [
        ("00B00000", 8, "00B0000008"),  # case 1: Le appended
        ("00B0000000", 8, "00B0000008"),  # case 2: Le replaced
        ("00A4020C022F02", 4, "00A4020C022F0204"),  # case 3: Le appended
        ("00A4020C022F0200", 4, "00A4020C022F0204"),  # case 4: Le replaced
    ],
)
def test_with_le_sets_le_for_each_apdu_case(command, le, expected):
    assert apdu.with_le(h(command), le) == h(expected)


def test_with_le_rejects_malformed_apdu():
    with pytest.raises(ValueError):
        apdu.with_le(h("00A4020C052F02"), 1)


@pytest.mark.parametrize(
    ("sw", "secret", "error", "tries_left"),
    [
        (0x63C2, "pin", "wrong_pin", 2),
        (0x63C1, "pin", "wrong_pin", 1),
        (0x63C0, "pin", "wrong_pin", 0),
        (0x63C2, "puk", "wrong_puk", 2),
        (0x63C0, "puk", "wrong_puk", 0),
        (0x6983, "pin", "pin_blocked", 0),
        (0x6983, "puk", "puk_blocked", 0),
        (0x6A88, "pin", "bad_request", None),
        (0x6700, "pin", "bad_request", None),
        (0x6A80, "puk", "bad_request", None),
        (0x6D00, None, "bad_request", None),
        (0x6E00, None, "bad_request", None),
        (0x6A82, None, "bad_request", None),
        (0x6F00, None, "bad_request", None),
        (0x63C2, None, "bad_request", None),  # a counter answer to a command that checks no secret
        (0x6108, None, "bad_request", None),  # must have been consumed by transceive
    ],
)
def test_status_word_mapping(sw, secret, error, tries_left):
    with pytest.raises(CardError) as caught:
        apdu.check_status(sw, secret)
    assert caught.value.error == error
    assert caught.value.tries_left == tries_left


def test_unknown_status_names_its_code():
    with pytest.raises(CardError) as caught:
        apdu.check_status(0x6F00)
    assert "6F00" in caught.value.message


def test_status_9000_is_ok():
    assert apdu.check_status(0x9000, "pin") is None


def test_last_wrong_try_says_now_blocked():
    with pytest.raises(CardError) as caught:
        apdu.check_status(0x63C0, "pin")
    assert "now blocked" in caught.value.message


@pytest.mark.parametrize(
    ("sw", "tries"),
    [(0x63C3, 3), (0x63C1, 1), (0x63C0, 0), (0x6983, 0), (0x9000, P.pin_max_tries)],
)
def test_counter_from_empty_verify(sw, tries):
    assert apdu.parse_counter(sw, "pin", P.pin_max_tries) == tries


def test_counter_refuses_unknown_status():
    with pytest.raises(CardError) as caught:
        apdu.parse_counter(0x6A88, "puk", P.puk_max_tries)
    assert caught.value.error == "bad_request"


def test_split_response():
    assert apdu.split_response(h("01029000")) == (h("0102"), 0x9000)
    assert apdu.split_response(h("6983")) == (b"", 0x6983)
    with pytest.raises(CardError):
        apdu.split_response(h("90"))


class ScriptedCard:
    """Answers from a script and records what it was sent."""

    def __init__(self, answers: list[tuple[str, int]]):
        self.answers = [(h(data), sw) for data, sw in answers]
        self.sent: list[bytes] = []

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        self.sent.append(command)
        return self.answers.pop(0)


def test_transceive_collects_61xx_with_get_response():
    card = ScriptedCard([("", 0x6104), ("5A02", 0x6102), ("3132", 0x9000)])
    data, sw = apdu.transceive(card.transmit, h("00A4020C022F02"))
    assert (data, sw) == (h("5A023132"), 0x9000)
    assert card.sent == [h("00A4020C022F02"), h("00C0000004"), h("00C0000002")]


def test_transceive_resends_with_le_after_6cxx():
    card = ScriptedCard([("", 0x6C0A), ("5A083134303030303031", 0x9000)])
    data, sw = apdu.transceive(card.transmit, apdu.build_read_binary())
    assert sw == 0x9000 and apdu.parse_serial(data, P) == "14000001"
    assert card.sent == [h("00B0000000"), h("00B000000A")]


def test_transceive_honours_6cxx_once():
    card = ScriptedCard([("", 0x6C0A), ("", 0x6C0B)])
    assert apdu.transceive(card.transmit, apdu.build_read_binary()) == (b"", 0x6C0B)
    assert len(card.sent) == 2


def test_transceive_does_not_resend_a_6cxx_naming_the_same_le():
    """6C00 to an Le=00 command asks for what was asked: resending would get 6C00 again, for ever."""
    card = ScriptedCard([("", 0x6C00)])
    assert apdu.transceive(card.transmit, apdu.build_read_binary(offset=10)) == (b"", 0x6C00)
    assert card.sent == [h("00B0000A00")]


def test_transceive_reads_the_sim_card_to_its_end_in_one_exchange_each():
    card = SimCard("14000001", SECRET_PIN, SECRET_PUK)
    sent: list[bytes] = []

    def transmit(command: bytes) -> tuple[bytes, int]:
        sent.append(command)
        return apdu.split_response(card.process(command))

    assert apdu.transceive(transmit, apdu.build_select_ef(P.serial_file_id))[1] == 0x9000
    data, sw = apdu.transceive(transmit, apdu.build_read_binary())
    assert sw == 0x9000 and apdu.parse_serial(data, P) == "14000001"
    assert apdu.transceive(transmit, apdu.build_read_binary(offset=len(data))) == (b"", apdu.SW_WRONG_OFFSET)
    assert apdu.transceive(transmit, apdu.build_read_binary(offset=8, le=5)) == (h("3031"), apdu.SW_END_OF_FILE)
    assert len(sent) == 4  # no 6Cxx, so no command was sent twice
    with pytest.raises(CardError) as caught:
        apdu.check_status(apdu.SW_WRONG_OFFSET)
    assert caught.value.error == "bad_request"


def test_transceive_stops_a_card_that_never_stops_announcing_data():
    card = ScriptedCard([("", 0x6101)] * (apdu.GET_RESPONSE_MAX_ROUNDS + 2))
    with pytest.raises(CardError) as caught:
        apdu.transceive(card.transmit, h("00B0000000"))
    assert caught.value.error == "bad_request"


def test_serial_tlv_round_trip_and_rejection():
    assert apdu.encode_serial("14000001", P) == h("5A083134303030303031")
    assert apdu.parse_serial(h("5A083134303030303031"), P) == "14000001"
    for bad in ["", "5A", "4F0131", "5A053131", "5A020A0D"]:
        with pytest.raises(CardError) as caught:
            apdu.parse_serial(h(bad), P)
        assert caught.value.error == "bad_request"


def test_card_error_json_body():
    assert CardError("wrong_pin", "Wrong PIN.", tries_left=2).as_dict() == {
        "error": "wrong_pin",
        "message": "Wrong PIN.",
        "tries_left": 2,
    }
    assert CardError("no_card", "No card in the reader.").as_dict() == {
        "error": "no_card",
        "message": "No card in the reader.",
    }
    refusal = LastTryRefused("pin")
    assert refusal.error == "bad_request" and refusal.tries_left == 1
    assert "last try" in refusal.message


@pytest.mark.parametrize(
    "changes",
    [
        {"pin_min_digits": 9},
        {"pin_min_digits": 0},
        {"puk_digits": 9},
        {"puk_reference": 0x81},
        {"pad_byte": 0x30},
    ],
)
def test_inconsistent_profile_is_refused(changes):
    fields = {name: getattr(P, name) for name in P.__dataclass_fields__}
    fields.update(changes)
    with pytest.raises(ValueError):
        CardProfile(**fields)

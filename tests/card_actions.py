"""Steps the card tests share, whichever backend (the simulated card or the real PC/SC stack) they drive."""
from __future__ import annotations

import pytest

from kamusm.card.apdu import CardError
from kamusm.card.reader import read_card, verify_pin

NEW_PIN = "135790"
WRONG_PIN = "000000"
WRONG_PUK = "11111111"


def error_of(call, *args, **kwargs) -> CardError:
    with pytest.raises(CardError) as caught:
        call(*args, **kwargs)
    return caught.value


def counters(backend) -> tuple[int, int]:
    info = read_card(backend)
    return info["pin_tries_left"], info["puk_tries_left"]


def block_pin(backend) -> None:
    error_of(verify_pin, backend, WRONG_PIN)
    error_of(verify_pin, backend, WRONG_PIN)
    error_of(verify_pin, backend, WRONG_PIN, confirm_last_try=True)

"""Sealing the PUK for one helper and one card."""
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kamusm.sealing import (
    SEAL_TTL_SECONDS,
    SealError,
    b64encode,
    fingerprint,
    open_pairing_code,
    open_seal,
    public_key_bytes,
    seal_pairing_code,
    seal_puk,
)

NOW = 1_800_000_000.0


@pytest.fixture
def helper_key():
    return X25519PrivateKey.generate()


def public(key):
    return b64encode(public_key_bytes(key))


def test_round_trip(helper_key):
    seal, seal_id = seal_puk(public(helper_key), "14000001", "73910284", NOW)
    opened = open_seal(helper_key, seal, "14000001", NOW + 10)
    assert (opened.secret, opened.binding, opened.seal_id) == ("73910284", "14000001", seal_id)
    assert "73910284" not in seal and "73910284" not in repr(opened)


def test_other_card_is_refused(helper_key):
    seal, _ = seal_puk(public(helper_key), "14000001", "73910284", NOW)
    with pytest.raises(SealError, match="another card"):
        open_seal(helper_key, seal, "14000003", NOW)


def test_other_helper_is_refused(helper_key):
    seal, _ = seal_puk(public(helper_key), "14000001", "73910284", NOW)
    with pytest.raises(SealError):
        open_seal(X25519PrivateKey.generate(), seal, "14000001", NOW)


def test_expired_is_refused(helper_key):
    seal, _ = seal_puk(public(helper_key), "14000001", "73910284", NOW)
    with pytest.raises(SealError, match="expired"):
        open_seal(helper_key, seal, "14000001", NOW + SEAL_TTL_SECONDS + 1)


def test_tampered_is_refused(helper_key):
    seal = json.loads(seal_puk(public(helper_key), "14000001", "73910284", NOW)[0])
    seal["ct"] = ("A" if seal["ct"][0] != "A" else "B") + seal["ct"][1:]
    with pytest.raises(SealError):
        open_seal(helper_key, json.dumps(seal), "14000001", NOW)


@pytest.mark.parametrize("bad", ["", "{", "[]", '{"v": 2}', '{"v": 1, "epk": "!!", "nonce": "", "ct": ""}',
                                 "x" * 10_000])
def test_malformed_is_refused(helper_key, bad):
    with pytest.raises(SealError):
        open_seal(helper_key, bad, "14000001", NOW)


def test_bad_public_key_is_refused():
    with pytest.raises(SealError):
        seal_puk(b64encode(b"short"), "14000001", "73910284", NOW)


@pytest.mark.parametrize("content", [b"[]", b"{}", b'{"secret": 1, "bind": "14000001", "exp": 0, "id": "x"}',
                                     b'{"secret": "1", "bind": "14000001", "exp": "soon", "id": "x"}', b"not json"])
def test_well_sealed_nonsense_is_refused(helper_key, content):
    """Anyone with the helper's public key can seal; the content must still be checked."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from kamusm import sealing

    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = public_key_bytes(ephemeral)
    shared = ephemeral.exchange(helper_key.public_key())
    key = sealing._key(sealing.PUK_PURPOSE, shared, ephemeral_public, public_key_bytes(helper_key))
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, content, sealing._aad(sealing.PUK_PURPOSE, "14000001"))
    seal = json.dumps({"v": 1, "epk": b64encode(ephemeral_public), "nonce": b64encode(nonce),
                       "ct": b64encode(ciphertext)})
    with pytest.raises(SealError):
        open_seal(helper_key, seal, "14000001", NOW)


def test_pairing_code_opens_only_for_its_origin(helper_key):
    sealed, _ = seal_pairing_code(public(helper_key), "https://portal.example", "482913", NOW)
    assert open_pairing_code(helper_key, sealed, "https://portal.example", NOW).secret == "482913"
    with pytest.raises(SealError, match="another portal"):
        open_pairing_code(helper_key, sealed, "https://evil.example", NOW)


def test_a_seal_of_one_purpose_never_opens_as_the_other(helper_key):
    """A pairing seal bound to "14000001" is not a PUK seal for card 14000001, nor the reverse."""
    pairing, _ = seal_pairing_code(public(helper_key), "14000001", "482913", NOW)
    with pytest.raises(SealError):
        open_seal(helper_key, pairing, "14000001", NOW)
    puk, _ = seal_puk(public(helper_key), "14000001", "73910284", NOW)
    with pytest.raises(SealError):
        open_pairing_code(helper_key, puk, "14000001", NOW)


def test_fingerprint_is_grouped_and_key_specific(helper_key):
    print_ = fingerprint(public_key_bytes(helper_key))
    assert len(print_.split(" ")) == 5 and all(len(group) == 4 for group in print_.split(" "))
    assert print_ != fingerprint(public_key_bytes(X25519PrivateKey.generate()))

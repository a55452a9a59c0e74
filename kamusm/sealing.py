"""Sealing a PUK for one local helper: X25519 + HKDF-SHA256 + AES-GCM.

The portal seals the vaulted PUK to the public key the helper reported, so the
browser that carries it between them never sees it in clear. The seal is
bound to the card serial (associated data: the helper must read that serial
from the card to open it), expires after SEAL_TTL_SECONDS, and carries an id
the helper remembers, so each seal works once.

Wire format (a JSON object, every bytes field base64url without padding):
    {"v": 1, "epk": <ephemeral X25519 public key>, "nonce": <12 bytes>, "ct": <AES-GCM ciphertext>}
The plaintext is JSON {"puk", "serial", "exp", "id"}; the associated data is
b"kamusm-puk-seal-v1:" + serial.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEAL_VERSION = 1
SEAL_TTL_SECONDS = 120
SEAL_MAX_BYTES = 4096
_INFO = b"kamusm-puk-seal-v1"


class SealError(Exception):
    """A seal could not be opened: malformed, for another card or key, tampered, or expired."""


@dataclass(frozen=True)
class OpenedSeal:
    puk: str
    serial: str
    expires_at: float
    seal_id: str

    def __repr__(self) -> str:
        return f"OpenedSeal(serial={self.serial!r}, seal_id={self.seal_id!r}, puk=[censored])"


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    if not isinstance(text, str) or len(text) > SEAL_MAX_BYTES:
        raise SealError("malformed seal")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise SealError("malformed seal") from None


def public_key_bytes(private_key: X25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _exchange(private_key: X25519PrivateKey, peer_public: bytes) -> bytes:
    """X25519 with the peer's raw key; a low-order point (an all-zero shared secret) is a SealError."""
    try:
        return private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        raise SealError("the key is not a usable X25519 public key") from None


def _key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_INFO + ephemeral_public + recipient_public).derive(shared)


def _aad(serial: str) -> bytes:
    return _INFO + b":" + serial.encode()


def seal_puk(recipient_public_b64: str, serial: str, puk: str, now: float) -> tuple[str, str]:
    """Seal puk for the helper whose public key is given; return (seal as JSON text, seal id).

    Raises SealError for a public key that is not 32 bytes of X25519.
    """
    recipient_public = b64decode(recipient_public_b64)
    if len(recipient_public) != 32:
        raise SealError("the helper's public key is not an X25519 key")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = public_key_bytes(ephemeral)
    shared = _exchange(ephemeral, recipient_public)
    seal_id = secrets.token_urlsafe(16)
    plaintext = json.dumps({"puk": puk, "serial": serial, "exp": now + SEAL_TTL_SECONDS, "id": seal_id}).encode()
    nonce = os.urandom(12)
    ciphertext = AESGCM(_key(shared, ephemeral_public, recipient_public)).encrypt(nonce, plaintext, _aad(serial))
    seal = {"v": SEAL_VERSION, "epk": b64encode(ephemeral_public), "nonce": b64encode(nonce),
            "ct": b64encode(ciphertext)}
    return json.dumps(seal, separators=(",", ":")), seal_id


def open_seal(private_key: X25519PrivateKey, seal_text: str, card_serial: str, now: float) -> OpenedSeal:
    """Open a seal made for this key and this card; raise SealError otherwise or when expired."""
    if not isinstance(seal_text, str) or len(seal_text) > SEAL_MAX_BYTES:
        raise SealError("malformed seal")
    try:
        seal = json.loads(seal_text)
    except ValueError:
        raise SealError("malformed seal") from None
    if not isinstance(seal, dict) or seal.get("v") != SEAL_VERSION:
        raise SealError("unknown seal version")
    ephemeral_public = b64decode(seal.get("epk", ""))
    nonce = b64decode(seal.get("nonce", ""))
    ciphertext = b64decode(seal.get("ct", ""))
    if len(ephemeral_public) != 32 or len(nonce) != 12:
        raise SealError("malformed seal")
    own_public = public_key_bytes(private_key)
    shared = _exchange(private_key, ephemeral_public)
    try:
        plaintext = AESGCM(_key(shared, ephemeral_public, own_public)).decrypt(nonce, ciphertext, _aad(card_serial))
    except InvalidTag:
        raise SealError("the seal was made for another card or another helper, or was altered") from None
    try:
        content = json.loads(plaintext)
        puk, serial, expires_at, seal_id = content["puk"], content["serial"], float(content["exp"]), content["id"]
    except (ValueError, TypeError, KeyError):
        raise SealError("malformed seal") from None
    if not all(isinstance(value, str) for value in (puk, serial, seal_id)):
        raise SealError("malformed seal")
    if serial != card_serial:
        raise SealError("the seal was made for another card")
    if expires_at < now:
        raise SealError("the seal has expired")
    return OpenedSeal(puk=puk, serial=serial, expires_at=expires_at, seal_id=seal_id)

"""Sealing a secret for one local helper: X25519 + HKDF-SHA256 + AES-GCM.

Two secrets travel from the portal to the holder's helper through the browser,
which must not read them: the vaulted PUK (bound to the card serial: the helper
must read that serial from the card to open it) and a pairing code (bound to the
portal's origin: the helper shows it on its own console, for the holder to type
back on /unlock). Each purpose has its own key derivation and associated data,
so a seal made for one purpose never opens as the other. A seal expires after
SEAL_TTL_SECONDS and carries an id the helper remembers, so each works once.

This module is shared by the portal and the helper wheel: standard library and
cryptography only.

Wire format (a JSON object, every bytes field base64url without padding):
    {"v": 1, "epk": <ephemeral X25519 public key>, "nonce": <12 bytes>, "ct": <AES-GCM ciphertext>}
The plaintext is JSON {"secret", "bind", "exp", "id"}; the associated data is
the purpose, b":", and the binding (card serial or origin).
"""
from __future__ import annotations

import base64
import hashlib
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
X25519_KEY_BYTES = 32
PUK_PURPOSE = b"kamusm-puk-seal-v1"
PAIRING_PURPOSE = b"kamusm-pairing-v1"
# 80 bits of SHA-256, in groups of four hex digits: enough to compare by eye, too many to grind a look-alike.
FINGERPRINT_BYTES = 10
# What a refusal names as the thing the seal was bound to.
_BINDING_NAMES = {PUK_PURPOSE: "card", PAIRING_PURPOSE: "portal"}


class SealError(Exception):
    """A seal could not be opened: malformed, for another card or key, tampered, or expired."""


@dataclass(frozen=True)
class OpenedSeal:
    secret: str
    binding: str
    expires_at: float
    seal_id: str

    def __repr__(self) -> str:
        return f"OpenedSeal(binding={self.binding!r}, seal_id={self.seal_id!r}, secret=[censored])"


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


def decode_public_key(public_b64: str) -> bytes:
    """The raw 32 bytes of an X25519 public key given in base64url; raises SealError otherwise."""
    raw = b64decode(public_b64)
    if len(raw) != X25519_KEY_BYTES:
        raise SealError("the helper's public key is not an X25519 key")
    return raw


def fingerprint(public_key: bytes) -> str:
    """What the helper's console and the portal's pages show of a key, for the holder to compare."""
    digest = hashlib.sha256(public_key).hexdigest()[:FINGERPRINT_BYTES * 2].upper()
    return " ".join(digest[start:start + 4] for start in range(0, len(digest), 4))


def _exchange(private_key: X25519PrivateKey, peer_public: bytes) -> bytes:
    """X25519 with the peer's raw key; a low-order point (an all-zero shared secret) is a SealError."""
    try:
        return private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        raise SealError("the key is not a usable X25519 public key") from None


def _key(purpose: bytes, shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=purpose + ephemeral_public + recipient_public).derive(shared)


def _aad(purpose: bytes, binding: str) -> bytes:
    return purpose + b":" + binding.encode()


def seal(recipient_public_b64: str, purpose: bytes, binding: str, secret: str, now: float) -> tuple[str, str]:
    """Seal ``secret`` for the helper whose public key is given; return (seal as JSON text, seal id).

    Raises SealError for a public key that is not 32 bytes of X25519.
    """
    recipient_public = decode_public_key(recipient_public_b64)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = public_key_bytes(ephemeral)
    shared = _exchange(ephemeral, recipient_public)
    seal_id = secrets.token_urlsafe(16)
    plaintext = json.dumps({"secret": secret, "bind": binding, "exp": now + SEAL_TTL_SECONDS, "id": seal_id}).encode()
    nonce = os.urandom(12)
    key = _key(purpose, shared, ephemeral_public, recipient_public)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _aad(purpose, binding))
    sealed = {"v": SEAL_VERSION, "epk": b64encode(ephemeral_public), "nonce": b64encode(nonce),
              "ct": b64encode(ciphertext)}
    return json.dumps(sealed, separators=(",", ":")), seal_id


def open_sealed(private_key: X25519PrivateKey, seal_text: str, purpose: bytes, binding: str,
                now: float) -> OpenedSeal:
    """Open a seal made for this key, this purpose and this binding; raise SealError otherwise or when expired."""
    if not isinstance(seal_text, str) or len(seal_text) > SEAL_MAX_BYTES:
        raise SealError("malformed seal")
    try:
        sealed = json.loads(seal_text)
    except ValueError:
        raise SealError("malformed seal") from None
    if not isinstance(sealed, dict) or sealed.get("v") != SEAL_VERSION:
        raise SealError("unknown seal version")
    ephemeral_public = b64decode(sealed.get("epk", ""))
    nonce = b64decode(sealed.get("nonce", ""))
    ciphertext = b64decode(sealed.get("ct", ""))
    if len(ephemeral_public) != X25519_KEY_BYTES or len(nonce) != 12:
        raise SealError("malformed seal")
    shared = _exchange(private_key, ephemeral_public)
    key = _key(purpose, shared, ephemeral_public, public_key_bytes(private_key))
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, _aad(purpose, binding))
    except InvalidTag:
        raise SealError(f"the seal was made for another {_BINDING_NAMES.get(purpose, 'use')} "
                        "or another helper, or was altered") from None
    try:
        content = json.loads(plaintext)
        secret, bound, expires_at, seal_id = content["secret"], content["bind"], float(content["exp"]), content["id"]
    except (ValueError, TypeError, KeyError):
        raise SealError("malformed seal") from None
    if not all(isinstance(value, str) for value in (secret, bound, seal_id)):
        raise SealError("malformed seal")
    if bound != binding:
        raise SealError(f"the seal was made for another {_BINDING_NAMES.get(purpose, 'use')}")
    if expires_at < now:
        raise SealError("the seal has expired")
    return OpenedSeal(secret=secret, binding=bound, expires_at=expires_at, seal_id=seal_id)


def seal_puk(recipient_public_b64: str, serial: str, puk: str, now: float) -> tuple[str, str]:
    """The PUK sealed for one helper and one card serial; see ``seal``."""
    return seal(recipient_public_b64, PUK_PURPOSE, serial, puk, now)


def open_seal(private_key: X25519PrivateKey, seal_text: str, card_serial: str, now: float) -> OpenedSeal:
    """A PUK seal opened for the card in the reader; see ``open_sealed``."""
    return open_sealed(private_key, seal_text, PUK_PURPOSE, card_serial, now)


def seal_pairing_code(recipient_public_b64: str, origin: str, code: str, now: float) -> tuple[str, str]:
    """A pairing code sealed for one helper, bound to the portal origin that asks it to be shown."""
    return seal(recipient_public_b64, PAIRING_PURPOSE, origin, code, now)


def open_pairing_code(private_key: X25519PrivateKey, seal_text: str, origin: str, now: float) -> OpenedSeal:
    """A pairing code opened for the origin the request came from; see ``open_sealed``."""
    return open_sealed(private_key, seal_text, PAIRING_PURPOSE, origin, now)

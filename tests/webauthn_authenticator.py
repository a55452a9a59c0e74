"""A software WebAuthn authenticator, so HTTP tests can enrol and use passkeys without a browser.

It plays both the browser and a platform authenticator: it reads the options JSON the portal sends,
builds clientDataJSON the way a browser does, and answers with what `credential.toJSON()` would give.
Keys are ES256 (P-256) and attestation is "none", which is what the portal accepts from real passkeys.
The responses are built with the standard library, cbor2 and cryptography only, not with the
`webauthn` package the portal verifies with, so a format mistake on either side shows up in a test.
The `origin`, `rp_id` and `sign_count` arguments exist to act out what a phishing page or a cloned
key would send; a real browser never lets a page choose them.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from urllib.parse import urlparse

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ES256 = -7
FLAG_USER_PRESENT = 0x01
FLAG_USER_VERIFIED = 0x04
FLAG_ATTESTED_CREDENTIAL_DATA = 0x40
# "none" attestation carries no claim about the maker, so the AAGUID is all zeros.
NONE_AAGUID = bytes(16)


def to_base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_base64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


class SoftAuthenticator:
    def __init__(self, *, user_verified: bool = True):
        self.user_verified = user_verified
        self.credentials: dict[bytes, Credential] = {}

    def register(self, options: dict | str, *, origin: str, rp_id: str | None = None) -> str:
        """Create a credential for PublicKeyCredentialCreationOptionsJSON; return RegistrationResponseJSON.

        Raises ValueError when the options do not offer ES256, as a real authenticator would refuse.
        """
        options = json.loads(options) if isinstance(options, str) else options
        if ES256 not in [param["alg"] for param in options["pubKeyCredParams"]]:
            raise ValueError("the options do not offer ES256, the only algorithm this authenticator has")
        rp_id = rp_id or options["rp"].get("id") or urlparse(origin).hostname
        credential_id = secrets.token_bytes(32)
        credential = Credential(ec.generate_private_key(ec.SECP256R1()), rp_id,
                                from_base64url(options["user"]["id"]))
        self.credentials[credential_id] = credential

        public = credential.private_key.public_key().public_numbers()
        cose_key = cbor2.dumps({1: 2, 3: ES256, -1: 1, -2: public.x.to_bytes(32, "big"),
                                -3: public.y.to_bytes(32, "big")})
        attested_credential_data = NONE_AAGUID + struct.pack(">H", len(credential_id)) + credential_id + cose_key
        auth_data = self._authenticator_data(rp_id, FLAG_ATTESTED_CREDENTIAL_DATA, 0) + attested_credential_data
        attestation_object = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = _client_data("webauthn.create", options["challenge"], origin)
        return json.dumps({
            "id": to_base64url(credential_id),
            "rawId": to_base64url(credential_id),
            "type": "public-key",
            "response": {"clientDataJSON": to_base64url(client_data),
                         "attestationObject": to_base64url(attestation_object),
                         "transports": ["internal"]},
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })

    def assert_(self, options: dict | str, *, origin: str, rp_id: str | None = None,
                credential_id: bytes | None = None, sign_count: int | None = None) -> str:
        """Sign PublicKeyCredentialRequestOptionsJSON's challenge; return AuthenticationResponseJSON.

        Uses `credential_id` when given; otherwise, like a browser, the first credential in a non-empty
        allowCredentials that it holds for the options' rp id, or with no allowCredentials (a
        discoverable login) any it holds for that rp id. `sign_count` replaces the counter, to act
        out a cloned key. Raises LookupError when it holds no fitting credential.
        """
        options = json.loads(options) if isinstance(options, str) else options
        requested_rp_id = options.get("rpId") or urlparse(origin).hostname
        credential_id = credential_id or self._pick_credential(options, requested_rp_id)
        credential = self.credentials[credential_id]
        credential.sign_count = credential.sign_count + 1 if sign_count is None else sign_count

        auth_data = self._authenticator_data(rp_id or requested_rp_id, 0, credential.sign_count)
        client_data = _client_data("webauthn.get", options["challenge"], origin)
        signature = credential.private_key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                                ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": to_base64url(credential_id),
            "rawId": to_base64url(credential_id),
            "type": "public-key",
            "response": {"clientDataJSON": to_base64url(client_data),
                         "authenticatorData": to_base64url(auth_data),
                         "signature": to_base64url(signature),
                         "userHandle": to_base64url(credential.user_handle)},
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })

    def _pick_credential(self, options: dict, rp_id: str) -> bytes:
        allowed = [from_base64url(entry["id"]) for entry in options.get("allowCredentials") or []]
        candidates = allowed or list(self.credentials)
        for candidate in candidates:
            if candidate in self.credentials and self.credentials[candidate].rp_id == rp_id:
                return candidate
        raise LookupError(f"no credential held for rp id {rp_id!r} among those the options allow")

    def _authenticator_data(self, rp_id: str, extra_flags: int, sign_count: int) -> bytes:
        flags = FLAG_USER_PRESENT | extra_flags | (FLAG_USER_VERIFIED if self.user_verified else 0)
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", sign_count)


def _client_data(ceremony: str, challenge: str, origin: str) -> bytes:
    # The member order and compact separators a browser uses; the signature covers these exact bytes.
    return json.dumps({"type": ceremony, "challenge": challenge, "origin": origin, "crossOrigin": False},
                      separators=(",", ":")).encode()

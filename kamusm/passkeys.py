"""Passkeys: WebAuthn credentials (py_webauthn) as a phishing-resistant second factor.

Security assumptions:
- The relying party is fixed by KAMUSM_PUBLIC_URL, never by the request's Host: the browser signs the
  origin it really is on and the authenticator scopes a credential to its rp id, so a look-alike site
  relaying the login gets an assertion that fails here. Browsers refuse an IP address as rp id, so a
  portal without a public name offers passkeys at http://localhost:5000 (the demo's own address).
- User verification (the device's PIN or biometric) is required at enrolment and at every use.
- py_webauthn has no memory (tests/test_webauthn_authenticator.py pins this): each challenge is stored
  hashed with its holder, purpose and expiry, and claimed in the database before the response is
  checked, so an assertion replays nowhere; the sign count only moves forward, by a conditional update.
- Attestation is not asked for ("none"): the portal trusts the holder's choice of device, as the issue
  asks; anything about the maker would be a claim it could not check without a metadata service.
- Failed uses count on the passkey factor's own failure counter (kamusm.factors).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from kamusm import factors, storage
from kamusm.errors import KamusmError, ValidationError

FACTOR = "passkey"
CHALLENGE_SECONDS = 300
DEFAULT_PUBLIC_URL = "http://localhost:5000"
PURPOSE_REGISTER = "register"
PURPOSE_AUTHENTICATE = "authenticate"
NAME_MAX = 40
MAX_RESPONSE_BYTES = 16384
DEFAULT_PORTS = {"http": 80, "https": 443}
_IP_HOST = re.compile(r"^[0-9.]+$|:")
_BAD_RESPONSE = (WebAuthnException, ValueError, KeyError, TypeError, AttributeError)


class PasskeyRejected(KamusmError):
    """The passkey's answer does not stand: wrong site, expired or used challenge, unknown key, bad signature."""

    status = 422


@dataclass(frozen=True)
class RelyingParty:
    rp_id: str
    origin: str
    name: str

    @property
    def usable(self) -> bool:
        """Browsers create passkeys only for a host name (localhost counts), never for an IP address."""
        return bool(self.rp_id) and self.origin.startswith(("http://", "https://")) and not _IP_HOST.search(self.rp_id)


def relying_party(public_url: str, name: str) -> RelyingParty:
    """The relying party of the portal's public URL, its origin written as browsers send it: host in lower
    case, no default port, no user part."""
    parts = urlsplit(public_url or DEFAULT_PUBLIC_URL)
    host = (parts.hostname or "").lower()
    netloc = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != DEFAULT_PORTS.get(parts.scheme):
        netloc += f":{parts.port}"
    return RelyingParty(host, f"{parts.scheme}://{netloc}", name)


def user_handle(key: bytes, holder_id: int) -> bytes:
    """The opaque, stable WebAuthn user id of a holder: it carries no identity number or name."""
    return hmac.new(key, f"kamusm-webauthn-user:{holder_id}".encode(), "sha256").digest()[:16]


def check_name(raw: str, fallback: str) -> str:
    name = " ".join((raw or "").split())
    if len(name) > NAME_MAX or any(not character.isprintable() for character in name):
        raise ValidationError(_l("Ad en çok %(n)d karakter olabilir.", n=NAME_MAX))
    return name or fallback


def _challenge_hash(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def _save_challenge(db, holder_id: int, challenge: bytes, purpose: str, now: float) -> None:
    storage.factors.save_challenge(db, _challenge_hash(challenge), holder_id, purpose, now + CHALLENGE_SECONDS)


def _descriptors(rows: list[dict]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(row["credential_id"])) for row in rows]


def registration_options(db, rp: RelyingParty, key: bytes, holder: dict, account: str, now: float) -> str:
    """PublicKeyCredentialCreationOptionsJSON for a new passkey of the holder; its challenge is kept."""
    options = generate_registration_options(
        rp_id=rp.rp_id, rp_name=rp.name, user_id=user_handle(key, holder["id"]), user_name=account,
        user_display_name=account, timeout=CHALLENGE_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=_descriptors(storage.factors.holder_passkeys(db, holder["id"])))
    _save_challenge(db, holder["id"], options.challenge, PURPOSE_REGISTER, now)
    return options_to_json(options)


def authentication_options(db, rp: RelyingParty, holder_id: int, now: float) -> str:
    """PublicKeyCredentialRequestOptionsJSON naming the holder's passkeys; its challenge is kept."""
    options = generate_authentication_options(
        rp_id=rp.rp_id, timeout=CHALLENGE_SECONDS * 1000, user_verification=UserVerificationRequirement.REQUIRED,
        allow_credentials=_descriptors(storage.factors.holder_passkeys(db, holder_id)))
    _save_challenge(db, holder_id, options.challenge, PURPOSE_AUTHENTICATE, now)
    return options_to_json(options)


def _claim(db, holder_id: int, client_data_json: bytes, purpose: str, now: float) -> bytes:
    challenge = parse_client_data_json(client_data_json).challenge
    if not storage.factors.claim_challenge(db, _challenge_hash(challenge), holder_id, purpose, now):
        raise PasskeyRejected(_l("Geçiş anahtarı isteğinin süresi doldu ya da istek kullanıldı. "
                                 "Lütfen yeniden deneyiniz."))
    return challenge


def _check_size(response_json: str) -> None:
    if not response_json or len(response_json) > MAX_RESPONSE_BYTES:
        raise ValidationError(_l("Geçiş anahtarından yanıt alınamadı. Lütfen yeniden deneyiniz."))


def register(db, rp: RelyingParty, holder_id: int, response_json: str, name: str, now: float) -> dict:
    """Verify a RegistrationResponseJSON and keep the new passkey; return its row. Raises PasskeyRejected."""
    _check_size(response_json)
    try:
        credential = parse_registration_credential_json(response_json)
        challenge = _claim(db, holder_id, credential.response.client_data_json, PURPOSE_REGISTER, now)
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=rp.rp_id, expected_origin=rp.origin,
                                                require_user_verification=True)
    except _BAD_RESPONSE:
        raise PasskeyRejected(_l("Geçiş anahtarı doğrulanamadı. Lütfen yeniden deneyiniz.")) from None
    transports = ",".join(sorted(str(getattr(item, "value", item)) for item in credential.response.transports or []))
    passkey_id = storage.factors.add_passkey(db, holder_id, bytes_to_base64url(verified.credential_id),
                                             verified.credential_public_key, verified.sign_count, transports, name, now)
    if passkey_id is None:
        raise PasskeyRejected(_l("Bu geçiş anahtarı zaten kayıtlı."))
    return storage.factors.find_passkey(db, holder_id, bytes_to_base64url(verified.credential_id))


def authenticate(db, rp: RelyingParty, holder_id: int, response_json: str, now: float, ip: str = "") -> dict:
    """Verify an AuthenticationResponseJSON from one of the holder's passkeys, once; return the passkey's
    row. Raises ValidationError, PasskeyRejected or FactorLocked."""
    _check_size(response_json)
    with factors.counted(db, holder_id, FACTOR, now, ip):
        try:
            credential = parse_authentication_credential_json(response_json)
            challenge = _claim(db, holder_id, credential.response.client_data_json, PURPOSE_AUTHENTICATE, now)
            row = storage.factors.find_passkey(db, holder_id, bytes_to_base64url(credential.raw_id))
            if row is None:
                raise PasskeyRejected(_l("Bu geçiş anahtarı hesabınızda kayıtlı değil."))
            verified = verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp.rp_id,
                expected_origin=rp.origin, credential_public_key=row["public_key"],
                credential_current_sign_count=row["sign_count"], require_user_verification=True)
        except _BAD_RESPONSE:
            raise PasskeyRejected(_l("Geçiş anahtarı doğrulanamadı. Lütfen yeniden deneyiniz.")) from None
        if not storage.factors.advance_passkey(db, row["id"], row["sign_count"], verified.new_sign_count, now):
            raise PasskeyRejected(_l("Geçiş anahtarı doğrulanamadı. Lütfen yeniden deneyiniz."))
    return row


"""The software authenticator against py_webauthn, the library the portal verifies passkeys with.

If these pass, an HTTP test that enrols or logs in with SoftAuthenticator exercises the same checks
a real browser's passkey would meet; they also pin down which checks py_webauthn leaves to the portal.
"""
import json

import pytest
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    UserVerificationRequirement,
)

from tests.webauthn_authenticator import SoftAuthenticator, from_base64url

RP_ID = "localhost"
ORIGIN = "http://localhost:5000"
USER_HANDLE = b"holder-1"


def enrol(authenticator: SoftAuthenticator, require_user_verification: bool = True):
    """Register a passkey the way the portal will; py_webauthn's VerifiedRegistration."""
    options = generate_registration_options(
        rp_id=RP_ID, rp_name="KamuSM", user_name="selin", user_id=USER_HANDLE,
        authenticator_selection=AuthenticatorSelectionCriteria(user_verification=UserVerificationRequirement.REQUIRED))
    response = authenticator.register(options_to_json(options), origin=ORIGIN)
    return verify_registration_response(credential=response, expected_challenge=options.challenge,
                                        expected_rp_id=RP_ID, expected_origin=ORIGIN,
                                        require_user_verification=require_user_verification)


def login_options(credential_id: bytes):
    return generate_authentication_options(
        rp_id=RP_ID, allow_credentials=[PublicKeyCredentialDescriptor(id=credential_id)],
        user_verification=UserVerificationRequirement.REQUIRED)


def verify_login(response: str, options, enrolled, current_sign_count: int):
    return verify_authentication_response(
        credential=response, expected_challenge=options.challenge, expected_rp_id=RP_ID, expected_origin=ORIGIN,
        credential_public_key=enrolled.credential_public_key, credential_current_sign_count=current_sign_count,
        require_user_verification=True)


def test_registration_verifies_with_user_verification_required():
    authenticator = SoftAuthenticator()
    enrolled = enrol(authenticator)
    assert list(authenticator.credentials) == [enrolled.credential_id]
    assert (enrolled.fmt, enrolled.sign_count, enrolled.user_verified) == ("none", 0, True)
    assert authenticator.credentials[enrolled.credential_id].user_handle == USER_HANDLE


def test_registration_without_user_verification_is_refused_when_required():
    with pytest.raises(InvalidRegistrationResponse, match="User verification is required"):
        enrol(SoftAuthenticator(user_verified=False))


def test_authentication_verifies_and_returns_the_new_sign_count():
    authenticator = SoftAuthenticator()
    enrolled = enrol(authenticator)
    for expected_count in (1, 2):
        options = login_options(enrolled.credential_id)
        response = authenticator.assert_(options_to_json(options), origin=ORIGIN)
        verified = verify_login(response, options, enrolled, current_sign_count=expected_count - 1)
        assert (verified.credential_id, verified.new_sign_count, verified.user_verified) == (
            enrolled.credential_id, expected_count, True)
    assert from_base64url(json.loads(response)["response"]["userHandle"]) == USER_HANDLE


@pytest.mark.parametrize(("where", "message"), [
    ({"origin": "http://evil.example:5000"}, "Unexpected client data origin"),
    ({"origin": ORIGIN, "rp_id": "evil.example"}, "Unexpected RP ID hash"),
])
def test_an_assertion_made_for_another_site_is_refused(where, message):
    authenticator = SoftAuthenticator()
    enrolled = enrol(authenticator)
    options = login_options(enrolled.credential_id)
    response = authenticator.assert_(options_to_json(options), **where)
    with pytest.raises(InvalidAuthenticationResponse, match=message):
        verify_login(response, options, enrolled, current_sign_count=0)


def test_an_assertion_without_user_verification_is_refused_when_required():
    authenticator = SoftAuthenticator(user_verified=False)
    enrolled = enrol(authenticator, require_user_verification=False)
    options = login_options(enrolled.credential_id)
    response = authenticator.assert_(options_to_json(options), origin=ORIGIN)
    with pytest.raises(InvalidAuthenticationResponse, match="User verification is required"):
        verify_login(response, options, enrolled, current_sign_count=0)


def test_a_cloned_key_behind_the_stored_sign_count_is_refused():
    authenticator = SoftAuthenticator()
    enrolled = enrol(authenticator)
    options = login_options(enrolled.credential_id)
    response = authenticator.assert_(options_to_json(options), origin=ORIGIN, sign_count=3)
    with pytest.raises(InvalidAuthenticationResponse, match="sign count of 3 was not greater than current count of 5"):
        verify_login(response, options, enrolled, current_sign_count=5)


def test_py_webauthn_does_not_refuse_a_reused_challenge():
    # py_webauthn has no memory: it accepts any good signature over the challenge it is handed.
    # Refusing a replay is the portal's job: the challenge is stored hashed and claimed on its
    # first use, and the stored sign count must move forward. If this test fails, the library has
    # started doing part of that itself; re-read what the portal relies on.
    authenticator = SoftAuthenticator()
    enrolled = enrol(authenticator)
    options = login_options(enrolled.credential_id)
    first = authenticator.assert_(options_to_json(options), origin=ORIGIN)
    assert verify_login(first, options, enrolled, current_sign_count=0).new_sign_count == 1
    assert verify_login(first, options, enrolled, current_sign_count=0).new_sign_count == 1
    second = authenticator.assert_(options_to_json(options), origin=ORIGIN)
    assert verify_login(second, options, enrolled, current_sign_count=1).new_sign_count == 2
    with pytest.raises(InvalidAuthenticationResponse, match="not greater than current count"):
        verify_login(first, options, enrolled, current_sign_count=2)


def test_it_answers_with_the_allowed_credential_or_any_for_the_rp_when_none_is_named():
    authenticator = SoftAuthenticator()
    first, second = enrol(authenticator), enrol(authenticator)
    allowed = authenticator.assert_(options_to_json(login_options(second.credential_id)), origin=ORIGIN)
    discoverable = authenticator.assert_(options_to_json(generate_authentication_options(rp_id=RP_ID)), origin=ORIGIN)
    assert from_base64url(json.loads(allowed)["rawId"]) == second.credential_id
    assert from_base64url(json.loads(discoverable)["rawId"]) == first.credential_id
    with pytest.raises(LookupError):
        SoftAuthenticator().assert_(options_to_json(login_options(first.credential_id)), origin=ORIGIN)

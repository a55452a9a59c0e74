"""What a view knows about the request it serves: the portal's clock, the client's address, the holder.

The clock is the app's CLOCK setting (time.time, or a test's settable clock), so every rule gets
`now` from one place and tests never sleep.
"""
from __future__ import annotations

from flask import current_app, request, session

from kamusm import auth, otp, passkeys, sms, storage
from kamusm.web.db import get_db


def now() -> float:
    return current_app.config["CLOCK"]()


def client_ip() -> str:
    return request.remote_addr or ""


def holder() -> dict:
    return storage.holders.get_holder(get_db(), auth.login_state(session).holder_id)


def masked_name() -> str:
    """The holder's masked name, kept in the session at login: the menu needs nothing else from the
    database. (A session from before it was kept reads the holder.)"""
    return session.get("masked_name") or auth.mask_name(holder()["name"])


def sms_sender() -> sms.SmsBackend:
    return sms.make_backend(current_app.config, get_db, now)


def code_policy() -> otp.CodePolicy:
    return otp.CodePolicy.from_settings(current_app.config)


def relying_party() -> passkeys.RelyingParty:
    config = current_app.config
    return passkeys.relying_party(config["KAMUSM_PUBLIC_URL"], config["KAMUSM_INSTITUTION_NAME"])

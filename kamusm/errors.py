"""The one exception hierarchy of kamusm.

Views turn a KamusmError into a 4xx (or 503 for a failing outside service)
page with its user-facing message. Messages never carry a secret.
"""
from __future__ import annotations


class KamusmError(Exception):
    """Base of every error the portal expects and shows to a user."""

    status = 400


class ConfigError(KamusmError):
    """A setting is missing, malformed, or would weaken security."""


class ValidationError(KamusmError):
    """Form input failed a rule; the message says why and `field` names the input."""

    status = 422

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class LoginFailed(KamusmError):
    """Identity, security word or lockout: one message for all, so IDs stay unknowable."""

    status = 401


class CodeRejected(KamusmError):
    """An SMS code was wrong, expired, used, or out of tries."""

    status = 422


class CodeExpired(CodeRejected):
    """The SMS code's lifetime is over; a new one must be sent."""


class TooSoon(KamusmError):
    """A resend or similar action came before its cool-down ended."""

    status = 429

    def __init__(self, message: str, retry_after_seconds: int):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class SmsFailed(KamusmError):
    """The SMS gateway did not accept the message after its retries."""

    status = 503

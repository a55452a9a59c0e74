"""The portal's forms, as classes (microblog's way); fields are text, validated by the rules they feed."""
from __future__ import annotations

from flask import (
    request,
)
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from wtforms import PasswordField, StringField


class TextForm(FlaskForm):
    """A form of text fields read from the urlencoded or multipart form only, without a CSRF field of its own.

    Flask-WTF would also fill fields from file parts (FileStorage) and JSON bodies (any type);
    every field here is a string, so those sources are never consulted.
    """

    class Meta:
        csrf = False  # CSRFProtect has checked every POST before a view runs; a second token per form only costs

        def wrap_formdata(self, form, formdata):
            if formdata is not _Auto:
                return formdata
            return request.form if request.method in {"POST", "PUT", "PATCH", "DELETE"} else None

    def sent(self) -> dict[str, str]:
        """The fields the request carried. An absent field is not an empty one: a form without `code`
        asks for a code to be sent, a form with an empty `code` is a code left blank."""
        return {name: field.data for name, field in self._fields.items() if field.raw_data}


class LoginForm(TextForm):
    identity = StringField()
    captcha = StringField()
    security_word = PasswordField()


class CodeForm(TextForm):
    code = StringField()


class SecondStepForm(TextForm):
    """The login's second step: a passkey's answer, an app code or a recovery code; none of them sends an SMS."""
    credential = StringField()
    totp_code = StringField()
    recovery_code = StringField()


class ForgotForm(TextForm):
    identity = StringField()


class LostForm(TextForm):
    """Kartımı kaybettim: identity and the lost-card code, no login (and the login's captcha)."""
    identity = StringField()
    captcha = StringField()
    lost_code = StringField()


class ResetForm(TextForm):
    security_word = PasswordField()
    security_word_confirm = PasswordField()


class StepUpForm(TextForm):
    """A step-up's factor, on any screen that asks for one: an SMS code (or `send_sms` to be sent one),
    a passkey's answer, a code from the authenticator app, a recovery code."""
    code = StringField()
    send_sms = StringField()
    credential = StringField()
    totp_code = StringField()
    recovery_code = StringField()


class PinPukForm(StepUpForm):
    confirm = StringField()


class CertificateChangeForm(StepUpForm):
    certificate = StringField()
    action = StringField()
    reason = StringField()
    confirm = StringField()


class RenewalRequestForm(TextForm):
    """Yenileme Talebi: which certificate; no step-up (it only asks the institution)."""
    certificate = StringField()


class ProfileChangeForm(StepUpForm):
    email = StringField()
    phone = StringField()


class PairStartForm(TextForm):
    helper_key = StringField()
    helper_name = StringField()


class PairForm(TextForm):
    pairing_code = StringField()
    helper_key = StringField()


class NewPinForm(TextForm):
    new_pin = StringField()
    new_pin_confirm = StringField()


class SealForm(NewPinForm):
    helper_key = StringField()
    card_serial = StringField()


class PinOperationForm(NewPinForm):
    op = StringField()


class OutcomeForm(TextForm):
    op = StringField()
    outcome = StringField()
    card_serial = StringField()


class SecurityForm(StepUpForm):
    """Güvenlik Yöntemlerim: what to change, and what the change needs. A new passkey's answer and a new
    app's first code have names of their own, so they are never taken for a step-up's factor."""
    action = StringField()
    passkey = StringField()
    name = StringField()
    new_credential = StringField()
    new_totp_code = StringField()


class AdminLoginForm(TextForm):
    name = StringField()
    password = PasswordField()
    totp_code = StringField()


class AdminEnrolForm(TextForm):
    password = PasswordField()
    password_confirm = PasswordField()
    totp_code = StringField()


def printable_only(text: str | None) -> str | None:
    """A search term without control characters: none is typed, and PostgreSQL refuses a NUL in text."""
    return None if text is None else "".join(character for character in text if character.isprintable())


class AdminSearchForm(TextForm):
    """Read from the query string: a search is a GET, so its result can be linked and paged."""
    q = StringField(filters=[printable_only])
    page = StringField()


class AdminAuditForm(TextForm):
    holder = StringField(filters=[printable_only])
    event = StringField(filters=[printable_only])
    operator = StringField(filters=[printable_only])
    since = StringField(filters=[printable_only])
    until = StringField(filters=[printable_only])


class AdminSuspendForm(TextForm):
    certificate = StringField()
    note = StringField()


class ScenarioForm(TextForm):
    """A presenter button: the scenario it names (the button's own value) and the demo holder chosen."""
    scenario = StringField()
    holder = StringField()


class AdminRenewalDoneForm(TextForm):
    """Closing a renewal request; `back` is where the console returns: "holder" or the list."""
    back = StringField()


class AdminOperatorForm(TextForm):
    name = StringField()
    role = StringField()
    action = StringField()

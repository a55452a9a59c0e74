"""Phone numbers and e-mail addresses: one definition of what the portal accepts.

Phones are Turkish mobiles in E.164 (+905xxxxxxxxx): SMS codes go nowhere else.
E-mail addresses are plain ASCII addresses, in KAMUSM_EMAIL_DOMAINS when set.
"""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

from kamusm.errors import ValidationError

EMAIL_MAX_LENGTH = 254
PHONE_PATTERN = re.compile(r"\+905[0-9]{9}", re.ASCII)
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)", re.ASCII)


def email_domain_allowed(email: str, domains: list[str]) -> bool:
    return not domains or email.rpartition("@")[2].lower() in {domain.lower() for domain in domains}


def normalize_phone(raw: str) -> str:
    """'0543 000 00 01', '543-000-0001' or '+905430000001' -> '+905430000001'; ValidationError otherwise."""
    text = re.sub(r"[\s()-]", "", raw or "")
    if text.startswith("0"):
        text = "+90" + text[1:]
    elif text.startswith("5") and len(text) == 10:
        text = "+90" + text
    if not PHONE_PATTERN.fullmatch(text):
        raise ValidationError(_l("Cep telefonu numarasını 05XX XXX XX XX biçiminde giriniz."), "phone")
    return text


def normalize_email(raw: str, domains: list[str]) -> str:
    text = (raw or "").strip()
    if len(text) > EMAIL_MAX_LENGTH or not EMAIL_PATTERN.fullmatch(text):
        raise ValidationError(_l("Geçerli bir e-posta adresi giriniz."), "email")
    if not email_domain_allowed(text, domains):
        raise ValidationError(_l("Yalnızca kurumsal e-posta adresleri kabul edilir: %(domains)s",
                                 domains=", ".join(domains)), "email")
    return text.lower()


def mask_email(email: str) -> str:
    """'selin.yeni@demo.edu.tr' -> 's*****@demo.edu.tr': the domain and the first character, a fixed number of stars."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}*****@{domain}"

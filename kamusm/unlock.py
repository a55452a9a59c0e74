"""Kilit Çözme: unblock the card's PIN with the vaulted PUK, through the holder's local helper.

The browser page (static/js/unlock.js) talks to two parties: the local helper on
127.0.0.1, which holds the card, and this portal, which holds the PUK. The page
reports what the helper said (its key, the card's serial and counters, or its
error) and the portal answers the screen state for it (`screen_state`): helper
unreachable, helper not paired, pairing code asked, card problem, card of
another holder, card blocked for good, or the forms.

The portal never hands the PUK to the browser in clear: it seals it to a helper
key pinned to the holder by pairing (kamusm.pairing), bound to the card serial
the helper read, for kamusm.sealing.SEAL_TTL_SECONDS and one use, and only after
an SMS code confirmed in the last 5 minutes. The new PIN passes through the
portal only to check its rules; it is never stored or logged.

Security assumptions:
- Everything the page reports is untrusted: it only chooses which screen to
  show. The seal checks for itself that the key is pinned, the code is fresh
  and the serial is one of the holder's own cards.
- Seals are capped per holder per day (the vault's PUK is the scarce thing:
  three wrong PUKs block a card for good); PIN checks and changes the page
  asks for are capped too, as is every route by flask-limiter.
- What the browser reports back (the outcome) is recorded as reported; it can
  mark a stored PIN stale, never reveal or change a secret.

The screens over these rules are in kamusm/web/views/unlock.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kamusm import pairing, sealing, storage
from kamusm.errors import ValidationError
from kamusm.helper.service import DEFAULT_PORT as DEFAULT_HELPER_PORT

SEALS_PER_DAY = 3


PIN_OPERATIONS_PER_DAY = 10


DAY_SECONDS = 24 * 3600


PIN_MIN_DIGITS = 4


PIN_MAX_DIGITS = 8


MAX_TRIES_REPORTED = 15


OPERATIONS = ("verify", "change", "unblock")


OUTCOMES = ("ok", "no_reader", "no_card", "card_removed", "wrong_pin", "wrong_puk", "pin_blocked", "puk_blocked",
            "bad_request", "forbidden_origin", "busy", "pcsc_unavailable", "unreachable")


# What the helper may answer instead of a card; "unreachable" is the page's own word for no answer at all.
HELPER_DOWN = ("unreachable", "forbidden_origin")


CARD_PROBLEMS = ("no_reader", "no_card", "card_removed", "busy", "pcsc_unavailable", "bad_request")


_PIN = re.compile(r"[0-9]+", re.ASCII)


_SERIAL = re.compile(r"[A-Za-z0-9]{4,32}", re.ASCII)


def check_new_pin(new_pin: str, confirm: str) -> str:
    """Raise ValidationError (naming the field) unless new_pin is a PIN the card will take and hard to guess."""
    if not new_pin:
        raise ValidationError(_l("Yeni PIN'i giriniz."), "new_pin")
    if not _PIN.fullmatch(new_pin) or not PIN_MIN_DIGITS <= len(new_pin) <= PIN_MAX_DIGITS:
        raise ValidationError(_l("PIN %(low)d-%(high)d rakamdan oluşmalıdır.", low=PIN_MIN_DIGITS, high=PIN_MAX_DIGITS),
                              "new_pin")
    digits = [int(char) for char in new_pin]
    steps = {later - earlier for earlier, later in zip(digits, digits[1:], strict=False)}
    if len(set(digits)) == 1 or steps in ({1}, {-1}):
        raise ValidationError(_l("Tek rakamın tekrarı ya da ardışık rakamlar PIN olamaz."), "new_pin")
    if new_pin != confirm:
        raise ValidationError(_l("İki PIN birbirinin aynı değil."), "new_pin_confirm")
    return new_pin


def holder_card(db, holder_id: int, serial: str) -> dict | None:
    """The card with this serial if it is the holder's own, else None."""
    if not _SERIAL.fullmatch(serial or ""):
        return None
    card = storage.cards.find_card(db, serial)
    if card is None or card["holder_id"] != holder_id:
        return None
    return card


def uses_this_today(db, holder_id: int, event: str, outcome: str, now: float) -> int:
    """How often today the event had the outcome that spends the cap (refusals spend nothing)."""
    return storage.audit_log.count_audit_events(db, holder_id, event, outcome, now - DAY_SECONDS)


@dataclass(frozen=True)
class HelperFacts:
    """What the page says the helper answered: its key and name, then the card or an error name."""

    error: str = ""
    helper_key: str = ""
    helper_name: str = ""
    reader: str = ""
    serial: str = ""
    pin_tries_left: int | None = None
    puk_tries_left: int | None = None


def _tries(text: str | None) -> int | None:
    if text in (None, ""):
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_TRIES_REPORTED:
        raise ValidationError(_l("Kart yardımcısından gelen bilgi anlaşılamadı. Lütfen sayfayı yenileyiniz."))
    return int(text)


def read_facts(args: Mapping[str, str]) -> HelperFacts:
    """The page's report, checked for shape; ValidationError for anything a helper would not say."""
    not_understood = ValidationError(_l("Kart yardımcısından gelen bilgi anlaşılamadı. Lütfen sayfayı yenileyiniz."))
    error = args.get("error", "")
    if error and error not in OUTCOMES:
        raise not_understood
    helper_key = args.get("helper_key", "")
    if helper_key:
        try:
            sealing.decode_public_key(helper_key)
        except sealing.SealError:
            raise not_understood from None
    elif error not in HELPER_DOWN:
        raise not_understood
    serial = args.get("serial", "")
    if serial and not _SERIAL.fullmatch(serial):
        raise not_understood
    return HelperFacts(error=error, helper_key=helper_key, serial=serial,
                       helper_name=pairing.clean_helper_name(args.get("helper_name", "")),
                       reader=pairing.clean_helper_name(args.get("reader", "")),
                       pin_tries_left=_tries(args.get("pin_tries_left")),
                       puk_tries_left=_tries(args.get("puk_tries_left")))


def screen_state(facts: HelperFacts, pinned: bool, pairing_waits: bool, own_card: bool) -> str:
    """The /unlock state for what the helper reported; the first that applies wins."""
    if facts.error in HELPER_DOWN or not facts.helper_key:
        return "unreachable"
    if not pinned:
        return "pair_code" if pairing_waits else "pair"
    if facts.error or not facts.serial:
        return "card_problem"
    if not own_card:
        return "foreign_card"
    if facts.puk_tries_left == 0:
        return "blocked"
    return "forms"


def holder_system(user_agent: str, platform_hint: str = "") -> str:
    """Which install steps to show first: from Sec-CH-UA-Platform when sent, else the User-Agent."""
    text = f"{platform_hint} {user_agent}".lower()
    if "windows" in text:
        return "windows"
    if "mac" in text and "iphone" not in text and "ipad" not in text:
        return "macos"
    return "debian"


@dataclass(frozen=True)
class InstallSteps:
    system: str
    label: str
    install: str
    start: str


def install_steps(wheel_url: str, sha256: str, origin: str, first: str, port: int = 8765) -> list[InstallSteps]:
    """The install and start commands for each system, the holder's own first.

    The wheel's URL carries its SHA-256 as a #sha256= fragment, which pip checks before installing.
    Debian and Ubuntu take pyscard and cryptography from their own packages (pyscard would otherwise
    be compiled), which pipx's --system-site-packages lets the helper use.
    """
    package = f'"{wheel_url}#sha256={sha256}"'
    options = f"--origin {origin}" if port == DEFAULT_HELPER_PORT else f"--port {port} --origin {origin}"
    steps = [
        InstallSteps("debian", "Debian / Ubuntu",
                     "sudo apt install pcscd pipx python3-pyscard python3-cryptography && "
                     f"pipx install --system-site-packages {package}",
                     f"~/.local/bin/kamusm-helper {options}"),
        InstallSteps("windows", "Windows", f"py -m pip install --user {package}",
                     f"py -m kamusm.helper {options}"),
        InstallSteps("macos", "macOS", f"brew install pipx && pipx install {package}",
                     f"~/.local/bin/kamusm-helper {options}"),
    ]
    return sorted(steps, key=lambda step: step.system != first)


def pairing_notice(fingerprint: str) -> str:
    return _("Kamu SM: hesabınıza yeni bir kart yardımcısı eşleştirildi (anahtar %(fingerprint)s). "
             "Bunu siz yapmadıysanız Kilit Çözme ekranından kaldırıp kurumunuzla görüşünüz.", fingerprint=fingerprint)


def outcome_message(operation: str, outcome: str) -> str:
    if outcome == "ok":
        return {"verify": _("PIN doğru."), "change": _("PIN'iniz değiştirildi."),
                "unblock": _("Kartınızın kilidi çözüldü; yeni PIN'iniz geçerli.")}[operation]
    return {
        "no_reader": _("Kart okuyucu bulunamadı. Okuyucuyu takıp tekrar deneyiniz."),
        "no_card": _("Okuyucuda kart yok. Kartınızı takıp tekrar deneyiniz."),
        "card_removed": _("Kart işlem sırasında çıkarıldı. Kartı takıp tekrar deneyiniz."),
        "wrong_pin": _("PIN hatalı."),
        "wrong_puk": _("PUK kartta kabul edilmedi. Lütfen kurumunuzla görüşünüz."),
        "pin_blocked": _("PIN bloke. Kilit Çözme ile yeni PIN belirleyebilirsiniz."),
        "puk_blocked": _("PUK kalıcı olarak bloke; yeni sertifika gerekir."),
        "busy": _("Kart yardımcısı başka bir işlemle meşgul. Biraz sonra tekrar deneyiniz."),
        "pcsc_unavailable": _("Bilgisayarınızdaki akıllı kart hizmeti çalışmıyor."),
        "unreachable": _("Kart yardımcısına ulaşılamadı."),
    }.get(outcome, _("İşlem tamamlanamadı."))

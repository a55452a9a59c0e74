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
portal only to check its rules (kamusm.policy.check_new_pin); it is never stored or logged.

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

from dataclasses import dataclass
from typing import Mapping

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kamusm import pairing, sealing, storage
from kamusm.errors import ValidationError
from kamusm.helper.service import DEFAULT_PORT as DEFAULT_HELPER_PORT
from kamusm.policy import SERIAL_PATTERN

SEALS_PER_DAY = 3
PIN_OPERATIONS_PER_DAY = 10
DAY_SECONDS = 24 * 3600
MAX_TRIES_REPORTED = 15
OPERATIONS = ("verify", "change", "unblock")
OUTCOMES = ("ok", "no_reader", "no_card", "card_removed", "wrong_pin", "wrong_puk", "pin_blocked", "puk_blocked",
            "bad_request", "forbidden_origin", "busy", "pcsc_unavailable", "unreachable")


# What the helper may answer instead of a card; "unreachable" is the page's own word for no answer at all.
HELPER_DOWN = ("unreachable", "forbidden_origin")
CARD_PROBLEMS = ("no_reader", "no_card", "card_removed", "busy", "pcsc_unavailable", "bad_request")


# The /unlock texts the page's script shows or more than one place says, the helper's answers
# (OUTCOMES) among them: views and templates render them from here and the script reads them from
# the page's data-messages, so none has a second copy.
MESSAGES = {
    "ok": _l("İşlem tamamlandı."),
    "no_reader": _l("Kart okuyucu bulunamadı. Okuyucuyu takıp tekrar deneyiniz."),
    "no_card": _l("Okuyucuda kart yok. Kartınızı takıp tekrar deneyiniz."),
    "card_removed": _l("Kart işlem sırasında çıkarıldı. Kartı takıp tekrar deneyiniz."),
    "wrong_pin": _l("PIN hatalı."),
    "wrong_puk": _l("PUK kartta kabul edilmedi. Lütfen kurumunuzla görüşünüz."),
    "pin_blocked": _l("PIN bloke. Kilit Çözme ile yeni PIN belirleyebilirsiniz."),
    "puk_blocked": _l("Kartınızın PUK'u kalıcı olarak bloke olmuştur; kilidi çözülemez. "
                      "Yeni sertifika için kurumunuzla görüşünüz."),
    "bad_request": _l("Kart yardımcısı isteği kabul etmedi. Lütfen sayfayı yenileyiniz."),
    "forbidden_origin": _l("Bilgisayarınızdaki kart yardımcısı bu portal için başlatılmamış. "
                           "Aşağıdaki başlatma komutuyla yeniden başlatınız."),
    "busy": _l("Kart yardımcısı başka bir işlemle meşgul. Biraz sonra tekrar deneyiniz."),
    "pcsc_unavailable": _l("Bilgisayarınızdaki akıllı kart hizmeti çalışmıyor."),
    "unreachable": _l("Kart yardımcısına ulaşılamadı."),
    "card_unreadable": _l("Kart okunamadı. Kartınızı çıkarıp yeniden takınız."),
    "foreign_card": _l("Okuyucudaki kart size ait değil. Lütfen kendi kartınızı takınız."),
    "bad_helper_key": _l("Kart yardımcısının anahtarı geçersiz. Lütfen yardımcıyı yeniden başlatınız."),
    "not_understood": _l("Kart yardımcısından gelen bilgi anlaşılamadı. Lütfen sayfayı yenileyiniz."),
    "unknown_operation": _l("Bilinmeyen işlem."),
    "portal_error": _l("Portal isteği yanıtlayamadı. Lütfen sayfayı yenileyiniz."),
    "working": _l("Kartla işlem yapılıyor; kartı çıkarmayınız…"),
    "last_try": _l("Yalnızca bir deneme hakkı kaldı. Devam etmek için aşağıdaki onay kutusunu işaretleyiniz."),
    "tries_left": _l("kalan deneme"),
}


DONE_MESSAGES = {
    "verify": _l("PIN doğru."),
    "change": _l("PIN'iniz değiştirildi."),
    "unblock": _l("Kartınızın kilidi çözüldü; yeni PIN'iniz geçerli."),
}


def messages() -> dict[str, str]:
    """MESSAGES in the request's language, for the page's data-messages and the templates."""
    return {name: str(text) for name, text in MESSAGES.items()}


def outcome_message(operation: str, outcome: str) -> str:
    """What the page shows once the helper answered `outcome` (one of OUTCOMES) to `operation`."""
    return str(DONE_MESSAGES[operation] if outcome == "ok" else MESSAGES[outcome])


def card_problem_message(error: str) -> str:
    """The card_problem screen's message for what the helper answered instead of a card.

    bad_request there means the card's answer made no sense to the helper (not a refused request).
    """
    return str(MESSAGES[error] if error in CARD_PROBLEMS and error != "bad_request" else MESSAGES["card_unreadable"])


def holder_card(db, holder_id: int, serial: str) -> dict | None:
    """The card with this serial if it is the holder's own, else None."""
    if not SERIAL_PATTERN.fullmatch(serial or ""):
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
        raise ValidationError(MESSAGES["not_understood"])
    return int(text)


def read_facts(args: Mapping[str, str]) -> HelperFacts:
    """The page's report, checked for shape; ValidationError for anything a helper would not say."""
    not_understood = ValidationError(MESSAGES["not_understood"])
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
    if serial and not SERIAL_PATTERN.fullmatch(serial):
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

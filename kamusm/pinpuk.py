"""PIN ve PUK Bilgileri: show masked, reveal after a recent code, save, delete for good.

Security assumptions:
- Secrets are opened from the vault only for a reveal or a save, and only when
  the holder confirmed an SMS code in the last 5 minutes (kamusm.web.stepup); otherwise a
  fresh code is sent first (step-up). Revealed values go only into that
  response, which is never cached; they are not put in the session.
- Delete needs the same recent code, and its `confirm` box on top: a session
  left open (or stolen) cannot destroy the vault, and a code alone deletes nothing.
- The PUK of a card whose certificate was issued in 2011 or later is never
  shown: such cards are unlocked online (Kilit Çözme), which uses the PUK
  without showing it.
- Delete destroys the ciphertexts and the data key; see kamusm.vault.

The screens over these rules are in kamusm/web/views/pin_puk.py.
"""
from __future__ import annotations

from flask_babel import gettext as _

from kamusm import storage, vault

PUK_SHOWN_UNTIL_YEAR = 2010
CONFIRM_VALUE = "yes"


def puk_is_shown(cert_issued: str) -> bool:
    """The seed: cards from 2010 and earlier are unlocked with the PUK by the holder, so it is shown."""
    return int(cert_issued[:4]) <= PUK_SHOWN_UNTIL_YEAR


def mask(value: str) -> str:
    """'482916' -> '4*****', as on the CA's screen: the first character and a fixed number of stars."""
    return f"{value[:1]}*****" if value else ""


def mask_serial(serial: str) -> str:
    return f"{serial[:2]}*****"


def card_rows(db, keyring: vault.Keyring | None, holder_id: int) -> list[dict]:
    """The holder's cards for the screen; with a keyring, the opened secrets too."""
    rows = []
    for card in storage.cards.holder_cards(db, holder_id):
        opened = vault.read_secrets(db, keyring, holder_id, card["serial"]) if keyring else {}
        rows.append({**card, "show_puk": puk_is_shown(card["cert_issued"]),
                     "has_secrets": bool(storage.vault.card_secrets(db, holder_id, card["serial"])),
                     "pin": opened.get("pin"), "puk": opened.get("puk")})
    return rows


def secrets_text(rows: list[dict]) -> str:
    lines = [_("PIN ve PUK Bilgileri"), ""]
    for row in rows:
        lines.append(f"{_('Kart Seri Numarası')}: {row['serial']}")
        if row["pin"]:
            lines.append(f"PIN: {row['pin']}")
        if row["show_puk"] and row["puk"]:
            lines.append(f"PUK: {row['puk']}")
        lines.append("")
    lines.append(_("Kamu Sertifikasyon Merkezi, güvenliğiniz için PIN/PUK bilgilerinizin silinmesini ve ikinci "
                   "şahısların ulaşabileceği yerlere kaydedilmemesini önerir."))
    return "\n".join(lines) + "\n"

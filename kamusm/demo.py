"""Demo mode: the demo holders of DESIGN.md, and the "phone" and "mailbox" a
teacher puts beside the portal on a projector.

These routes exist only when KAMUSM_DEMO=1; they show every message in the
outbox, so they must never be reachable in a real deployment.

Each demo holder has a fixed lost-card code, documented in README.md beside the security words (a class
copies it from the board, as a holder would from the sheet printed at activation); loading the demo puts
it back in force, also after /lost has spent it.

The screens over these rules are in kamusm/web/views/demo.py.
"""
from __future__ import annotations

from kamusm import lostcard, storage, vault

DEMO_HOLDERS = (
    {"identity": "10000000146", "security_word": "demo-ankara-2014", "name": "Selin Yılmaz",
     "phone": "+905430000001", "email": "selin.yilmaz@demo.edu.tr", "card_serial": "14000001",
     "pin": "482916", "puk": "73910284", "cert_issued": "2014-03-12",
     "lost_code": "KAYP-KART-0000-0146"},
    {"identity": "10000000214", "security_word": "demo-izmir-2009", "name": "Kemal Demir",
     "phone": "+905430000002", "email": "kemal.demir@demo.edu.tr", "card_serial": "14000002",
     "pin": "250813", "puk": "61937402", "cert_issued": "2009-06-01",
     "lost_code": "KAYP-KART-0000-0214"},
    {"identity": "10000000382", "security_word": "demo-bursa-2020", "name": "Ayşe Kaya",
     "phone": "+905430000003", "email": "ayse.kaya@demo.edu.tr", "card_serial": "14000003",
     "pin": "907531", "puk": "38461027", "cert_issued": "2020-09-15",
     "lost_code": "KAYP-KART-0000-0382"},
)


def load_demo_holders(db, hasher, keyring: vault.Keyring, now: float) -> list[int]:
    """Create or refresh the demo holders, their cards and vaulted PIN/PUK; return their ids."""
    ids = []
    for holder in DEMO_HOLDERS:
        record = {name: holder[name] for name in ("identity", "name", "phone", "email")}
        record["word_hash"] = hasher.hash(holder["security_word"])
        with storage.write(db, durable=True):
            holder_id = storage.holders.upsert_holder(db, record, now)
            storage.holders.clear_failures(db, holder_id, storage.holders.LOGIN)
            storage.cards.upsert_card(db, holder_id, holder["card_serial"], holder["cert_issued"])
            vault.store_secrets(db, keyring, holder_id, holder["card_serial"],
                                {"pin": holder["pin"], "puk": holder["puk"]})
            lostcard.store_known_code(db, holder_id, holder["lost_code"], now)
        ids.append(holder_id)
    return ids

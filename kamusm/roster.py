"""Card roster import: validate every row, then load all of them or none.

Header (UTF-8): identity,name,phone,email,card_serial,cert_issued,pin,puk[,security_word]
A file with any bad row imports nothing; the error names every bad line and
why, never echoing a PIN, PUK or security word. Re-importing updates holders
by identity and cards by serial, never duplicating them.

Identity, card serial, PIN, PUK and security word are checked by the rules every
other way in uses (kamusm.identity, kamusm.policy): a word /reset would refuse is
refused here too. Their reasons read "<column>: <the rule's message>", in the
command line's language. An issued PIN is checked for what the card takes only:
it is the card's, not one the holder chose.

No lost-card code is made here, and a re-import keeps the one a holder has: a code must reach its
holder alone, so they get it on screen when they set their word from the activation link, or make
one on /security (kamusm.lostcard).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Callable, Iterable

from kamusm import policy, storage, vault
from kamusm.contact import EMAIL_PATTERN, PHONE_PATTERN, email_domain_allowed
from kamusm.errors import KamusmError, ValidationError
from kamusm.identity import normalize_identity

REQUIRED_COLUMNS = ("identity", "name", "phone", "email", "card_serial", "cert_issued", "pin", "puk")
OPTIONAL_COLUMNS = ("security_word",)
NAME_MAX_LENGTH = 100
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


class RosterError(KamusmError):
    """The roster file was refused as a whole; `problems` lists (line, reason)."""

    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        super().__init__("\n".join(f"line {line}: {reason}" for line, reason in problems))


@dataclass
class RosterRow:
    line: int
    identity: str
    name: str
    phone: str
    email: str
    card_serial: str
    cert_issued: str
    pin: str = field(repr=False)
    puk: str = field(repr=False)
    security_word: str = field(default="", repr=False)


def validate_row(line: int, raw: dict[str, str], email_domains: list[str]) -> tuple[RosterRow | None, list[str]]:
    """Check one row; return the row or the list of reasons it is bad."""
    values = {name: (raw.get(name) or "").strip() for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
    reasons = []

    def check(column: str, rule: Callable[..., str], *more: str | None) -> None:
        try:
            values[column] = rule(values[column], *more)
        except ValidationError as exc:
            reasons.append(f"{column}: {exc}")

    check("identity", normalize_identity)
    if not values["name"] or len(values["name"]) > NAME_MAX_LENGTH:
        reasons.append(f"name must be 1 to {NAME_MAX_LENGTH} characters")
    if not PHONE_PATTERN.fullmatch(values["phone"]):
        reasons.append("phone must be a Turkish mobile number in E.164 (+905xxxxxxxxx)")
    if not EMAIL_PATTERN.fullmatch(values["email"]):
        reasons.append("email is not an e-mail address")
    elif not email_domain_allowed(values["email"], email_domains):
        reasons.append(f"email domain is not one of {', '.join(email_domains)}")
    check("card_serial", policy.normalize_serial)
    if not _DATE.fullmatch(values["cert_issued"]):
        reasons.append("cert_issued must be a date YYYY-MM-DD")
    else:
        try:
            date.fromisoformat(values["cert_issued"])
        except ValueError:
            reasons.append("cert_issued is not a real date")
    check("pin", policy.check_pin)
    check("puk", policy.check_puk)
    if values["security_word"]:
        check("security_word", policy.check_security_word, None, values["identity"], values["name"])
    if reasons:
        return None, reasons
    return RosterRow(line=line, **values), []


def parse_roster(text: str, email_domains: list[str]) -> list[RosterRow]:
    """Validate the whole file; raise RosterError naming every bad line."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        problems = [(1, f"missing columns: {', '.join(missing)}")] if missing else []
        problems += [(1, f"unknown columns: {', '.join(unknown)}")] if unknown else []
        raise RosterError(problems)
    rows, problems = [], []
    seen_identity: dict[str, int] = {}
    seen_serial: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if None in raw:
            problems.append((line, "more fields than columns"))
            continue
        row, reasons = validate_row(line, raw, email_domains)
        if row is not None:
            if row.card_serial in seen_serial:
                reasons.append(f"card_serial repeats line {seen_serial[row.card_serial]}")
            previous = seen_identity.get(row.identity)
            if previous is not None:
                reasons.append(f"identity repeats line {previous}")
        if reasons:
            problems.append((line, "; ".join(reasons)))
            continue
        seen_identity[row.identity] = line
        seen_serial[row.card_serial] = line
        rows.append(row)
    if problems:
        raise RosterError(problems)
    if not rows:
        raise RosterError([(1, "the file has no rows")])
    return rows


def import_rows(db, rows: Iterable[RosterRow], keyring: vault.Keyring, hash_word: Callable[[str], str],
                now: float, on_row: Callable[[], None] | None = None) -> int:
    """Load validated rows in one transaction; return how many. Any failure loads none."""
    count = 0
    with storage.write(db, durable=True):
        for row in rows:
            holder_id = storage.holders.upsert_holder(db, {
                "identity": row.identity, "name": row.name, "phone": row.phone, "email": row.email,
                "word_hash": hash_word(row.security_word) if row.security_word else None}, now)
            storage.cards.upsert_card(db, holder_id, row.card_serial, row.cert_issued)
            vault.store_secrets(db, keyring, holder_id, row.card_serial, {"pin": row.pin, "puk": row.puk})
            count += 1
            if on_row:
                on_row()
    return count

"""Teaching mode: put a demo holder into a state a class learns from, show a teacher where every demo holder
stands, and start the next class afresh (`kamusm scenario`, `kamusm demo --reset`, /demo/presenter).

Each scenario goes through the rule that would bring it about for real: the sim card spends its own tries on
wrong PINs and PUKs, a suspension is kamusm.certificates.apply_change (audited, the CRL re-signed), the
lockout is counted like failed logins. The docs for a class are docs/teaching.md.

Security assumptions:
- Demo mode only: the callers (the demo blueprint, registered only with KAMUSM_DEMO=1, and the commands)
  check it, and every function here refuses a holder who is not one of kamusm.demo.DEMO_HOLDERS.
- The sim card's state file (instance/demo-helper/sim-card.json, as `make demo-helper` runs the helper) keeps
  the PIN and PUK as salted hashes; only its retry counters leave this module.
- The demo helper holds its card in memory: it sees a card this module rewrote once it is started again.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask_babel import lazy_gettext as _l

from kamusm import audit, auth, ca, certificates, factors, passkeys, recovery, storage, totp, vault
from kamusm.card import apdu, reader
from kamusm.card.profile import DEFAULT_PROFILE
from kamusm.card.sim import DEMO_CARD, SimCard
from kamusm.demo import DEMO_HOLDERS, load_demo_holders
from kamusm.errors import KamusmError
from kamusm.helper.service import SIM_CARD_FILE_NAME, prepare_home
from kamusm.words import WordHasher

PIN_BLOCKED = "pin-blocked"
PUK_LAST_TRY = "puk-last-try"
CERTIFICATE_SUSPENDED = "certificate-suspended"
CERTIFICATE_EXPIRING = "certificate-expiring"
PHONE_NOT_VERIFIED = "phone-not-verified"
LOCKED_OUT = "locked-out"
SCENARIOS = (PIN_BLOCKED, PUK_LAST_TRY, CERTIFICATE_SUSPENDED, CERTIFICATE_EXPIRING, PHONE_NOT_VERIFIED, LOCKED_OUT)
SCENARIO_LABELS = {
    PIN_BLOCKED: _l("PIN blokeli"),
    PUK_LAST_TRY: _l("PUK'un son hakkı"),
    CERTIFICATE_SUSPENDED: _l("Sertifika askıda"),
    CERTIFICATE_EXPIRING: _l("Sertifikanın süresi doluyor"),
    PHONE_NOT_VERIFIED: _l("Telefon henüz güvenilir değil"),
    LOCKED_OUT: _l("Giriş kilitli"),
}
CARD_SCENARIOS = frozenset({PIN_BLOCKED, PUK_LAST_TRY})
DEFAULT_IDENTITY = DEMO_HOLDERS[0]["identity"]
DEMO_HELPER_FOLDER = "demo-helper"
DAY_SECONDS = 86400
# Inside the 30-day reminder (kamusm/reminders.py), with a few days to spare before the 15-day one.
EXPIRING_DAYS_LEFT = 20
# Failures past the threshold, so the lock lasts long enough (30 s doubled five times: 16 minutes) for a
# class to try the right word and see it refused.
LOCKED_OUT_EXTRA_FAILURES = 5
# A certificate ending sooner would have reminders due: the reset replaces it, so a class starts with none.
FRESH_CERTIFICATE_DAYS = 90
SUPERSEDED = "superseded"
# Not the demo card's PIN (482916) or PUK (73910284): the fresh card refuses them and spends a try.
WRONG_PIN = "000000"
WRONG_PUK = "00000000"
UNBLOCK_PIN = "123456"
SECOND_FACTORS = (factors.SMS, passkeys.FACTOR, totp.FACTOR, recovery.FACTOR)

NOT_A_DEMO_HOLDER = _l("Senaryolar yalnız tanıtım kart sahipleri için çalışır.")
UNKNOWN_SCENARIO = _l("Bilinmeyen bir senaryo istendi. Lütfen listeden seçiniz.")
CARD_IS_SELINS = _l("Kart senaryoları yalnız yerel yardımcının sanal kartında çalışır: %(name)s adına "
                    "%(serial)s seri numaralı kart.")


class ScenarioRefused(KamusmError):
    """An unknown scenario, a holder who is not a demo holder, or a card scenario for a card the helper lacks."""

    status = 422


@dataclass(frozen=True)
class Classroom:
    """Where the demo lives and the settings its scenarios follow: the instance folder (the demo CA, the demo
    helper's home), the portal's public address (in the certificates), the login lockout threshold and the
    vault's keyring (the demo PIN/PUK are sealed again)."""

    instance_path: Path
    public_url: str
    lockout_threshold: int
    keyring: vault.Keyring

    @property
    def sim_card_path(self) -> Path:
        return sim_card_path(self.instance_path)


def sim_card_path(instance_path: Path) -> Path:
    """The demo helper's sim card state file, where `make demo-helper` keeps it."""
    return Path(instance_path) / DEMO_HELPER_FOLDER / SIM_CARD_FILE_NAME


@dataclass(frozen=True)
class CardState:
    """The retry counters of the demo helper's sim card, or why they cannot be read."""

    problem: str = ""  # "missing" (the helper never ran) or "unreadable"
    serial: str = ""
    pin_tries_left: int = 0
    puk_tries_left: int = 0
    pin_max_tries: int = DEFAULT_PROFILE.pin_max_tries
    puk_max_tries: int = DEFAULT_PROFILE.puk_max_tries

    @property
    def pin_blocked(self) -> bool:
        return not self.problem and self.pin_tries_left == 0

    @property
    def puk_blocked(self) -> bool:
        return not self.problem and self.puk_tries_left == 0


def card_state(state_path: Path) -> CardState:
    """The sim card's counters, read from its state file without changing it."""
    try:
        card = SimCard.load(state_path)
    except FileNotFoundError:
        return CardState(problem="missing")
    except (OSError, ValueError, KeyError):
        return CardState(problem="unreadable")
    return CardState(serial=card.serial, pin_tries_left=card.pin_tries_left, puk_tries_left=card.puk_tries_left)


def holder_states(db, now: float) -> list[dict]:
    """Each demo holder as the presenter shows them: name, identity, the newest certificate (with its days
    left), the login lockout, the 72-hour phone rule. Holders not loaded yet are left out."""
    states = []
    for demo_holder in DEMO_HOLDERS:
        holder = storage.holders.find_holder(db, demo_holder["identity"])
        if holder is None:
            continue
        rows = storage.certificates.holder_certificates(db, holder["id"])
        certificate = rows[-1] if rows else None
        days_left = None
        if certificate and certificate["not_after"]:
            days_left = max(0, int((certificate["not_after"] - now) // DAY_SECONDS))
        states.append({
            "name": holder["name"], "identity": holder["identity"], "card_serial": demo_holder["card_serial"],
            "certificate": certificate, "days_left": days_left,
            "locked": holder["locked_until"] > now, "locked_until": holder["locked_until"],
            "failed_logins": holder["failed_logins"], "phone_binding": factors.phone_binding(holder, now),
            "sms_disabled": bool(holder["sms_disabled"]),
        })
    return states


def find_demo_holder(db, identity: str) -> dict:
    """The demo holder with that identity. Raises ScenarioRefused for anyone else."""
    if identity not in {holder["identity"] for holder in DEMO_HOLDERS}:
        raise ScenarioRefused(NOT_A_DEMO_HOLDER)
    holder = storage.holders.find_holder(db, identity)
    if holder is None:
        raise ScenarioRefused(NOT_A_DEMO_HOLDER)
    return holder


def apply_scenario(db, classroom: Classroom, scenario: str, identity: str, now: float, ip: str = "") -> dict:
    """Put the demo holder into `scenario`; audited as demo.scenario. Return the holder.

    Raises ScenarioRefused for an unknown scenario, a holder who is not a demo holder, or a card scenario
    for a holder whose card is not the demo helper's.
    """
    if scenario not in SCENARIOS:
        raise ScenarioRefused(UNKNOWN_SCENARIO)
    holder = find_demo_holder(db, identity)
    if scenario in CARD_SCENARIOS and holder["identity"] != DEFAULT_IDENTITY:
        raise ScenarioRefused(CARD_IS_SELINS % {"name": DEMO_HOLDERS[0]["name"], "serial": DEMO_CARD["card_serial"]})
    if scenario == PIN_BLOCKED:
        _block_pin(db, classroom, holder)
    elif scenario == PUK_LAST_TRY:
        backend = _block_pin(db, classroom, holder)
        for _try in range(backend.card.profile.puk_max_tries - 1):
            _refused(lambda: reader.unblock_pin(backend, WRONG_PUK, UNBLOCK_PIN, confirm_last_try=True))
    elif scenario == CERTIFICATE_SUSPENDED:
        _suspend_certificate(db, classroom, holder, now, ip)
    elif scenario == CERTIFICATE_EXPIRING:
        _issue_expiring_certificate(db, classroom, holder, now, ip)
    elif scenario == PHONE_NOT_VERIFIED:
        storage.holders.set_phone_changed_at(db, holder["id"], now)
    else:
        _lock_out(db, classroom, holder, now)
    audit.record(db, now, "demo.scenario", "ok", holder["id"], ip, scenario=scenario)
    return holder


def reset_demo(db, hasher: WordHasher, classroom: Classroom, now: float, ip: str = "") -> dict[str, int]:
    """Start a class afresh: the demo holders as DESIGN.md has them (security word, card, vaulted PIN/PUK,
    lost-card code), no lockout, no second factor but SMS, no session, valid certificates with no reminder
    due, an empty outbox and a sim card with the demo PIN/PUK and every try. Audited as admin.demo_reset;
    returns what it counted."""
    ids = load_demo_holders(db, hasher, classroom.keyring, now)
    authority = certificates.ensure_demo_ca(db, classroom.instance_path, now)
    counts = {"holders": len(ids), "sessions": 0, "certificates": 0, "messages": 0}
    for holder_id in ids:
        with storage.write(db):
            counts["sessions"] += storage.sessions.delete_holder_sessions(db, holder_id)
            storage.teaching.forget_phone_change(db, holder_id)
            storage.holders.set_sms_disabled(db, holder_id, False)
            storage.holders.clear_failures(db, holder_id, storage.holders.LOST_CODE)
            for passkey in storage.factors.holder_passkeys(db, holder_id):
                storage.factors.delete_passkey(db, holder_id, passkey["id"])
            storage.factors.delete_totp(db, holder_id)
            storage.factors.delete_recovery_codes(db, holder_id)
            for factor in SECOND_FACTORS:
                storage.factors.clear_factor_failures(db, holder_id, factor)
        _settle_certificates(db, authority, holder_id, now, ip)
    counts["certificates"] = certificates.add_missing_certificates(db, authority, classroom.public_url, now,
                                                                   count_revoked=False)
    counts["messages"] = storage.teaching.empty_outbox(db)
    _fresh_sim_card(classroom)
    audit.record(db, now, "admin.demo_reset", "ok", None, ip, **counts)
    return counts


def _fresh_sim_card(classroom: Classroom) -> SimCard:
    """The demo card as issued (demo PIN and PUK, every try), written over the helper's state file."""
    home = prepare_home(classroom.sim_card_path.parent)
    return SimCard(DEMO_CARD["card_serial"], DEMO_CARD["pin"], DEMO_CARD["puk"], state_path=home / SIM_CARD_FILE_NAME)


def _refused(operation) -> None:
    """Run a card operation that is meant to fail (a wrong PIN or PUK spends a try)."""
    try:
        operation()
    except apdu.CardError:
        return
    raise RuntimeError("the sim card accepted a secret that is not its own")


def _block_pin(db, classroom: Classroom, holder: dict) -> reader.SimBackend:
    """A fresh card whose PIN wrong tries have blocked; the portal's card and vault agree with it again."""
    demo_holder = next(entry for entry in DEMO_HOLDERS if entry["identity"] == holder["identity"])
    with storage.write(db, durable=True):
        storage.cards.upsert_card(db, holder["id"], demo_holder["card_serial"], demo_holder["cert_issued"])
        vault.store_secrets(db, classroom.keyring, holder["id"], demo_holder["card_serial"],
                            {"pin": demo_holder["pin"], "puk": demo_holder["puk"]})
    # Counted tries, not "until the counter says so": the backend may reload the card from its file
    # (SimCard.fresh), and a card that stopped counting must not hang a class.
    backend = reader.SimBackend(_fresh_sim_card(classroom))
    for _try in range(backend.card.profile.pin_max_tries):
        _refused(lambda: reader.verify_pin(backend, WRONG_PIN, confirm_last_try=True))
    return backend


def _live_certificates(db, holder_id: int) -> list[dict]:
    return [row for row in storage.certificates.holder_certificates(db, holder_id) if row["status"] != "revoked"]


def _suspend_certificate(db, classroom: Classroom, holder: dict, now: float, ip: str) -> None:
    authority = certificates.ensure_demo_ca(db, classroom.instance_path, now)
    certificates.add_missing_certificates(db, authority, classroom.public_url, now, holder["id"], count_revoked=False)
    for row in _live_certificates(db, holder["id"]):
        if row["status"] == "valid":
            certificates.apply_change(db, authority, certificates.Change(row, "suspend", ca.REASON_HOLD),
                                      holder["id"], ip, now, scenario=CERTIFICATE_SUSPENDED)


def _issue_expiring_certificate(db, classroom: Classroom, holder: dict, now: float, ip: str) -> None:
    """Supersede the holder's live certificates with one issued long ago that ends in EXPIRING_DAYS_LEFT days."""
    authority = certificates.ensure_demo_ca(db, classroom.instance_path, now)
    for row in _live_certificates(db, holder["id"]):
        certificates.apply_change(db, authority, certificates.Change(row, "revoke", SUPERSEDED), holder["id"], ip,
                                  now, scenario=CERTIFICATE_EXPIRING)
    # ca.issue_certificate dates a certificate from the day it is given: one given that long ago ends soon.
    issued_at = now - (ca.CERT_VALIDITY_DAYS - EXPIRING_DAYS_LEFT) * DAY_SECONDS
    for card in storage.cards.holder_cards(db, holder["id"]):
        cert = ca.issue_certificate(authority, holder["name"], card["serial"], classroom.public_url, issued_at)
        serial = ca.serial_hex(cert.serial_number)
        with storage.write(db):
            certificate_id = storage.certificates.insert_certificate(
                db, holder["id"], card["serial"], serial, ca.certificate_der(cert),
                cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp(), now)
            audit.record(db, now, "certificate.issue", "ok", holder["id"], ip, certificate_id=certificate_id,
                         serial=serial, scenario=CERTIFICATE_EXPIRING)


def _settle_certificates(db, authority: ca.Authority, holder_id: int, now: float, ip: str) -> None:
    """Resume a suspended certificate; supersede one that ends within FRESH_CERTIFICATE_DAYS or waits for its
    renewal, so that only valid certificates with no reminder due stay (new ones are issued after)."""
    for row in _live_certificates(db, holder_id):
        if row["status"] == "suspended":
            certificates.apply_change(db, authority, certificates.Change(row, "resume", ""), holder_id, ip, now,
                                      via="demo_reset")
            row = {**row, "status": "valid"}
        ending = row["not_after"] is not None and row["not_after"] - now < FRESH_CERTIFICATE_DAYS * DAY_SECONDS
        if ending or storage.reminders.open_renewal_request(db, row["id"]) is not None:
            certificates.apply_change(db, authority, certificates.Change(row, "revoke", SUPERSEDED), holder_id, ip,
                                      now, via="demo_reset")


def _lock_out(db, classroom: Classroom, holder: dict, now: float) -> None:
    """Count failed logins as the login does, past the threshold, and set the lock that count earns."""
    failures = classroom.lockout_threshold + LOCKED_OUT_EXTRA_FAILURES
    with storage.write(db):
        storage.holders.clear_failures(db, holder["id"], storage.holders.LOGIN)
        for _ in range(failures):
            storage.holders.count_attempt(db, holder["id"], storage.holders.LOGIN, now)
        storage.holders.lock_out(db, holder["id"], storage.holders.LOGIN,
                                 now + auth.lock_seconds(failures, classroom.lockout_threshold))


def classroom_for(app) -> Classroom:
    """The Classroom of a running app (its instance folder and settings)."""
    config = app.config
    return Classroom(Path(app.instance_path), config["KAMUSM_PUBLIC_URL"] or ca.DEFAULT_PUBLIC_URL,
                     config["KAMUSM_LOCKOUT_THRESHOLD"], vault.load_keyring(Path(app.instance_path),
                                                                            config["KAMUSM_VAULT_KEY"],
                                                                            config["KAMUSM_VAULT_KEY_NEXT"]))

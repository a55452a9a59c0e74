"""The PIN/PUK vault: envelope encryption with AES-GCM.

Each holder has a random 256-bit data key (DEK); every secret is sealed under
it with a fresh 96-bit random nonce and associated data naming the holder, the
card serial and the field, so a ciphertext moved to another row, card or field
fails to open. The DEK is stored only wrapped by the key-encryption key (KEK),
itself never in the database: KAMUSM_VAULT_KEY, else instance/vault.key
(0600). Each wrapped key carries the id of the KEK that wrapped it, so during
a rotation the keyring opens records under either key.

Deleting a holder's secrets deletes the ciphertexts and the wrapped DEK in one
transaction with secure_delete on: the live database no longer holds anything
that opens them, whoever holds the KEK. Backups taken earlier still hold both
(README says so).
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kamusm import storage
from kamusm.errors import KamusmError
from kamusm.keys import KEY_FILE_MODE, load_or_create_key

KEY_BYTES = 32
NONCE_BYTES = 12
FIELDS = ("pin", "puk")
KEY_FILE = "vault.key"
NEXT_KEY_FILE = "vault.key.next"
TOTP_PURPOSE = "totp"
OPERATOR_TOTP_PURPOSE = "operator-totp"


class VaultError(KamusmError):
    """A secret could not be opened: wrong key, moved or altered ciphertext, or no key."""

    status = 409


def key_id(kek: bytes) -> str:
    """A short public name for a KEK: a hash prefix, which reveals nothing useful about the key."""
    return hashlib.sha256(b"kamusm-kek-id:" + kek).hexdigest()[:16]


@dataclass(frozen=True)
class Keyring:
    """The KEK new wraps use, plus every KEK that may still open an old wrap."""

    current: bytes
    others: tuple[bytes, ...] = ()

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def find(self, wanted_id: str) -> bytes:
        for kek in (self.current, *self.others):
            if key_id(kek) == wanted_id:
                return kek
        raise VaultError("no key-encryption key with that id is available")


def _decode_key(text: str, name: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise KamusmError(f"{name} is not base64") from None
    if len(key) != KEY_BYTES:
        raise KamusmError(f"{name} must decode to {KEY_BYTES} bytes")
    return key


def load_keyring(instance_path: Path, env_key: str = "", env_next_key: str = "") -> Keyring:
    """The keyring from the environment key, else from instance/vault.key (made if absent).

    While a rotation is pending (vault.key.next or KAMUSM_VAULT_KEY_NEXT exists),
    the next key wraps new data keys and the old one still opens old wraps, so
    an interrupted rotation leaves every wrap openable. Read it per use, not
    once per process, so running servers follow a rotation.
    """
    if env_key:
        current = _decode_key(env_key, "KAMUSM_VAULT_KEY")
        if env_next_key:
            return Keyring(_decode_key(env_next_key, "KAMUSM_VAULT_KEY_NEXT"), (current,))
        return Keyring(current)
    current = load_or_create_key(instance_path / KEY_FILE, KEY_BYTES)
    next_path = instance_path / NEXT_KEY_FILE
    if next_path.exists():
        return Keyring(next_path.read_bytes(), (current,))
    return Keyring(current)


def app_keyring() -> Keyring:
    """The keyring of the running app, read afresh (see load_keyring)."""
    from flask import current_app

    config = current_app.config
    return load_keyring(Path(current_app.instance_path), config["KAMUSM_VAULT_KEY"], config["KAMUSM_VAULT_KEY_NEXT"])


def _aad(holder_id: int, serial: str, field: str) -> bytes:
    return f"kamusm:v1:secret:{holder_id}:{serial}:{field}".encode()


def _dek_aad(holder_id: int) -> bytes:
    return f"kamusm:v1:dek:{holder_id}".encode()


def wrap_key(kek: bytes, dek: bytes, holder_id: int) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, dek, _dek_aad(holder_id))


def unwrap_key(kek: bytes, wrapped: bytes, holder_id: int) -> bytes:
    try:
        return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _dek_aad(holder_id))
    except InvalidTag:
        raise VaultError("the data key does not open under this key-encryption key") from None


def seal(dek: bytes, holder_id: int, serial: str, field: str, secret: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(dek).encrypt(nonce, secret.encode(), _aad(holder_id, serial, field))


def open_sealed(dek: bytes, holder_id: int, serial: str, field: str, sealed: bytes) -> str:
    try:
        return AESGCM(dek).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                   _aad(holder_id, serial, field)).decode()
    except InvalidTag:
        raise VaultError("the secret does not open: altered, moved, or the wrong key") from None


def _kek_aad(holder_id: int, purpose: str) -> bytes:
    return f"kamusm:v1:kek-sealed:{purpose}:{holder_id}".encode()


def seal_under_kek(kek: bytes, holder_id: int, purpose: str, secret: str) -> bytes:
    """Seal a secret straight under a KEK (an authenticator app's seed): it must outlive the holder's data
    key, which deleting PIN/PUK destroys."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, secret.encode(), _kek_aad(holder_id, purpose))


def open_under_kek(kek: bytes, holder_id: int, purpose: str, sealed: bytes) -> str:
    try:
        return AESGCM(kek).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _kek_aad(holder_id, purpose)).decode()
    except InvalidTag:
        raise VaultError("the secret does not open: altered, moved, or the wrong key") from None


def _holder_dek(db, keyring: Keyring, holder_id: int, create: bool) -> bytes | None:
    row = storage.vault.get_data_key(db, holder_id)
    if row is None:
        if not create:
            return None
        dek = secrets.token_bytes(KEY_BYTES)
        storage.vault.save_data_key(db, holder_id, wrap_key(keyring.current, dek, holder_id), keyring.current_id)
        return dek
    return unwrap_key(keyring.find(row["kek_id"]), row["wrapped_key"], holder_id)


def store_secrets(db, keyring: Keyring, holder_id: int, serial: str, values: dict[str, str]) -> None:
    """Seal and store the given fields of one card, in the caller's transaction or one of its own."""
    with storage.write(db, durable=True):
        dek = _holder_dek(db, keyring, holder_id, create=True)
        for field, secret in values.items():
            if field not in FIELDS:
                raise ValueError(f"unknown vault field {field}")
            storage.vault.save_secret(db, holder_id, serial, field, seal(dek, holder_id, serial, field, secret))


def read_secrets(db, keyring: Keyring, holder_id: int, serial: str) -> dict[str, str]:
    """Open every stored field of one card; {} when nothing is stored (or it was deleted)."""
    rows = storage.vault.card_secrets(db, holder_id, serial)
    if not rows:
        return {}
    dek = _holder_dek(db, keyring, holder_id, create=False)
    if dek is None:
        raise VaultError("the holder's data key is gone")
    return {row["field"]: open_sealed(dek, holder_id, serial, row["field"], row["sealed"]) for row in rows}


def destroy_secrets(db, holder_id: int) -> int:
    """Delete every sealed secret of the holder and the data key, in one transaction."""
    with storage.write(db, durable=True):
        removed = storage.vault.delete_secrets(db, holder_id)
        storage.vault.delete_data_key(db, holder_id)
    return removed


def rewrap_all(db, keyring: Keyring, new_kek: bytes, on_progress=None) -> int:
    """Re-wrap every data key and re-seal every authenticator-app seed (holders' and operators') not yet
    under new_kek, one transaction per row; return how many.

    Safe to interrupt and to run again: each row names the KEK that wraps it.
    """
    new_id = key_id(new_kek)
    count = 0
    for row in storage.vault.data_keys_not_under(db, new_id):
        with storage.write(db, durable=True):
            dek = unwrap_key(keyring.find(row["kek_id"]), row["wrapped_key"], row["holder_id"])
            storage.vault.save_data_key(db, row["holder_id"], wrap_key(new_kek, dek, row["holder_id"]), new_id)
        count += 1
        if on_progress:
            on_progress(count)
    sealed_seeds = [  # (rows, the owner's id column, purpose, sealed column, how to store the new seal)
        (storage.factors.totp_not_under(db, new_id), "holder_id", TOTP_PURPOSE, "sealed_secret",
         storage.factors.reseal_totp),
        (storage.operators.operators_not_under(db, new_id), "id", OPERATOR_TOTP_PURPOSE, "sealed_totp",
         storage.operators.reseal_operator_totp),
    ]
    for rows, owner, purpose, column, reseal in sealed_seeds:
        for row in rows:
            with storage.write(db, durable=True):
                seed = open_under_kek(keyring.find(row["kek_id"]), row[owner], purpose, row[column])
                reseal(db, row[owner], seal_under_kek(new_kek, row[owner], purpose, seed), new_id)
            count += 1
            if on_progress:
                on_progress(count)
    return count


def rotate_key_file(db, instance_path: Path, on_progress=None) -> int:
    """Rotate instance/vault.key: make vault.key.next, re-wrap everything, then swap the files.

    Every step is resumable; a crash at any point leaves both keys on disk and
    every record naming one of them.
    """
    next_path = instance_path / NEXT_KEY_FILE
    new_kek = load_or_create_key(next_path, KEY_BYTES)
    keyring = load_keyring(instance_path)
    count = 0
    while True:  # a server may have wrapped one more key under the old KEK meanwhile
        done = rewrap_all(db, keyring, new_kek, on_progress)
        count += done
        if not done:
            break
    current_path = instance_path / KEY_FILE
    os.replace(next_path, current_path)
    os.chmod(current_path, KEY_FILE_MODE)
    directory = os.open(instance_path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return count

"""The vault's envelope encryption, on a real database."""
import base64
import os
from pathlib import Path

import pytest

from kamusm import storage, vault
from kamusm.vault import Keyring, VaultError
from tests.conftest import KEMAL, SELIN, id_of


@pytest.fixture
def keyring(app):
    with app.app_context():
        return vault.app_keyring()


@pytest.fixture
def holders(db):
    return {holder["identity"]: id_of(db, holder) for holder in (SELIN, KEMAL)}


def test_round_trip(db, keyring, holders):
    holder_id = holders[SELIN["identity"]]
    vault.store_secrets(db, keyring, holder_id, "99000001", {"pin": "123456", "puk": "87654321"})
    assert vault.read_secrets(db, keyring, holder_id, "99000001") == {"pin": "123456", "puk": "87654321"}


@pytest.mark.sqlite_only  # reads the database file itself (docs/postgresql.md: deleted rows on PostgreSQL)
def test_ciphertext_holds_no_plaintext(db, keyring, holders):
    holder_id = holders[SELIN["identity"]]
    vault.store_secrets(db, keyring, holder_id, "99000001", {"pin": "123456", "puk": "87654321"})
    raw = b"".join(row["sealed"] for row in storage.vault.card_secrets(db, holder_id, "99000001"))
    assert b"123456" not in raw and b"87654321" not in raw
    with open(db.conn.execute("PRAGMA database_list").fetchone()[2], "rb") as handle:
        assert b"87654321" not in handle.read()


def test_nonces_are_never_reused(db, keyring, holders):
    holder_id = holders[SELIN["identity"]]
    seen = set()
    for _ in range(50):
        vault.store_secrets(db, keyring, holder_id, "99000001", {"pin": "123456"})
        seen.add(storage.vault.card_secrets(db, holder_id, "99000001")[0]["sealed"][:12])
    assert len(seen) == 50


def test_wrong_key_fails(db, keyring, holders):
    holder_id = holders[SELIN["identity"]]
    vault.store_secrets(db, keyring, holder_id, "99000001", {"pin": "123456"})
    with pytest.raises(VaultError):
        vault.read_secrets(db, Keyring(os.urandom(32)), holder_id, "99000001")


def test_swapped_rows_fail(db, keyring, holders):
    selin, kemal = holders[SELIN["identity"]], holders[KEMAL["identity"]]
    vault.store_secrets(db, keyring, selin, "99000001", {"pin": "111111", "puk": "11111111"})
    vault.store_secrets(db, keyring, kemal, "99000002", {"pin": "222222"})
    sealed_pin = storage.vault.card_secrets(db, selin, "99000001")[0]["sealed"]
    sealed_puk = storage.vault.card_secrets(db, selin, "99000001")[1]["sealed"]
    # the PIN row's ciphertext put in the PUK field of the same card
    storage.vault.save_secret(db, selin, "99000001", "puk", sealed_pin)
    with pytest.raises(VaultError):
        vault.read_secrets(db, keyring, selin, "99000001")
    storage.vault.save_secret(db, selin, "99000001", "puk", sealed_puk)
    # Selin's ciphertext moved under another card serial of hers
    storage.vault.save_secret(db, selin, "99000009", "pin", sealed_pin)
    with pytest.raises(VaultError):
        vault.read_secrets(db, keyring, selin, "99000009")
    # Selin's wrapped data key given to Kemal
    storage.vault.save_data_key(db, kemal, storage.vault.get_data_key(db, selin)["wrapped_key"], keyring.current_id)
    with pytest.raises(VaultError):
        vault.read_secrets(db, keyring, kemal, "99000002")


def test_tampered_ciphertext_fails(db, keyring, holders):
    holder_id = holders[SELIN["identity"]]
    vault.store_secrets(db, keyring, holder_id, "99000001", {"pin": "123456"})
    sealed = bytearray(storage.vault.card_secrets(db, holder_id, "99000001")[0]["sealed"])
    sealed[-1] ^= 1
    storage.vault.save_secret(db, holder_id, "99000001", "pin", bytes(sealed))
    with pytest.raises(VaultError):
        vault.read_secrets(db, keyring, holder_id, "99000001")


@pytest.mark.sqlite_only  # reads the database file itself (docs/postgresql.md: deleted rows on PostgreSQL)
def test_delete_is_final_even_with_the_key(db, keyring, holders):
    holder_id = holders[SELIN["identity"]]
    vault.store_secrets(db, keyring, holder_id, "99000001", {"pin": "123456", "puk": "87654321"})
    sealed = storage.vault.card_secrets(db, holder_id, "99000001")
    wrapped = storage.vault.get_data_key(db, holder_id)["wrapped_key"]
    assert vault.destroy_secrets(db, holder_id) >= 2
    assert storage.vault.card_secrets(db, holder_id, "99000001") == []
    assert storage.vault.get_data_key(db, holder_id) is None
    assert vault.read_secrets(db, keyring, holder_id, "99000001") == {}
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    with open(path, "rb") as handle:
        content = handle.read()
    assert wrapped not in content and all(row["sealed"] not in content for row in sealed)


@pytest.mark.sqlite_only  # reads the database file itself (docs/postgresql.md: deleted rows on PostgreSQL)
def test_secure_delete_is_on(db):
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_keyring_from_environment():
    key = os.urandom(32)
    ring = vault.load_keyring(None, base64.b64encode(key).decode())
    assert ring.current == key


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_bad_environment_key_is_refused(bad):
    with pytest.raises(Exception, match="KAMUSM_VAULT_KEY"):
        vault.load_keyring(None, bad)


def test_key_file_is_private(tmp_path):
    vault.load_keyring(tmp_path)
    assert (tmp_path / "vault.key").stat().st_mode & 0o777 == 0o600


def test_rotation_rewraps_everything(db, app, keyring, holders):
    instance = Path(app.instance_path)
    holder_id = holders[SELIN["identity"]]
    vault.store_secrets(db, keyring, holder_id, "99000001", {"pin": "123456"})
    old_id = keyring.current_id
    assert vault.rotate_key_file(db, instance) == 3
    new_ring = vault.load_keyring(instance)
    assert new_ring.current_id != old_id and new_ring.others == ()
    assert storage.vault.data_keys_not_under(db, new_ring.current_id) == []
    assert vault.read_secrets(db, new_ring, holder_id, "99000001") == {"pin": "123456"}
    assert not (instance / "vault.key.next").exists()

"""`kamusm rotate-vault-key` killed with SIGKILL midway leaves every record readable."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kamusm import storage, vault
from kamusm.storage.postgres import is_postgres

HOLDERS = 3000
ROOT = Path(__file__).resolve().parent.parent


def fill_vault(db, instance: Path) -> None:
    keyring = vault.load_keyring(instance)
    with storage.write(db, durable=True):
        for number in range(HOLDERS):
            holder_id = storage.holders.upsert_holder(db, {"identity": f"P{number:08d}", "name": "Test Holder",
                                                 "phone": "+905430000099", "email": "t@demo.edu.tr",
                                                 "word_hash": None}, 0.0)
            vault.store_secrets(db, keyring, holder_id, f"S{number:08d}", {"pin": f"{number:06d}"})


def all_readable(db, instance: Path) -> bool:
    keyring = vault.load_keyring(instance)
    for number in (0, HOLDERS // 2, HOLDERS - 1):
        holder_id = storage.holders.find_holder(db, f"P{number:08d}")["id"]
        assert vault.read_secrets(db, keyring, holder_id, f"S{number:08d}") == {"pin": f"{number:06d}"}
    for row in db.query("SELECT holder_id, wrapped_key, kek_id FROM data_keys"):
        vault.unwrap_key(keyring.find(row["kek_id"]), row["wrapped_key"], row["holder_id"])
    return True


ROTATE = [sys.executable, "-m", "flask", "--app", "app", "kamusm", "rotate-vault-key"]


def rotate_env(app) -> dict:
    # Outside demo mode the portal must name real backends (config.check_settings); nothing is sent here.
    return {**os.environ, "KAMUSM_INSTANCE": app.instance_path, "KAMUSM_VAULT_KEY": "", "KAMUSM_DEMO": "0",
            "KAMUSM_SMS_BACKEND": "console", "KAMUSM_MAIL_BACKEND": "smtp",
            "KAMUSM_DATABASE_URL": app.config["KAMUSM_DATABASE_URL"]}


def test_kill_during_rotation_loses_nothing(app, db):
    instance = Path(app.instance_path)
    fill_vault(db, instance)
    old_id = vault.load_keyring(instance).current_id
    process = subprocess.Popen(ROTATE, cwd=ROOT, env=rotate_env(app), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    next_path = instance / vault.NEXT_KEY_FILE
    deadline = time.monotonic() + 60
    rotated = 0
    while time.monotonic() < deadline and process.poll() is None:
        if next_path.exists() and next_path.stat().st_size == vault.KEY_BYTES:
            next_id = vault.key_id(next_path.read_bytes())
            rotated = db.execute("SELECT count(*) FROM data_keys WHERE kek_id = ?", [next_id]).fetchone()[0]
            if rotated >= 20:
                process.send_signal(signal.SIGKILL)
                break
        time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the rotation finished before it could be killed"
    total = storage.vault.count_data_keys(db)
    assert 20 <= rotated < total
    assert all_readable(db, instance)
    if not is_postgres(db):  # PostgreSQL's own WAL recovery has no file-level check to ask for
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    finish = subprocess.run(ROTATE, cwd=ROOT, env=rotate_env(app), capture_output=True, text=True,
                            timeout=120)
    assert finish.returncode == 0, finish.stderr
    keyring = vault.load_keyring(instance)
    assert keyring.current_id != old_id and keyring.others == ()
    assert storage.vault.data_keys_not_under(db, keyring.current_id) == []
    assert all_readable(db, instance)

"""The console's background jobs: the roster import (checked first, every bad line named, nothing kept;
then imported with progress, all or nothing; the upload kept only sealed, and gone afterwards) and the
vault key rotation from its page."""
from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from kamusm import storage, vault
from tests.conftest import SELIN, open_db, post
from tests.test_admin import enrol
from tests.test_roster import GOOD, HEADER

JOB = re.compile(r"/admin/import/([A-Za-z0-9_-]{22})")


@pytest.fixture
def operator(app, client, clock):
    operator = enrol(app, client, clock, "yukleyici", "operator")
    assert operator.log_in().status_code == 303
    return operator


def upload(client, text: str, name: str = "roster.csv"):
    return post(client, "/admin/import", token_page="/admin/import",
                roster=(io.BytesIO(text.encode("utf-8")), name))


def wait_until_finished(client, job: str) -> str:
    for _ in range(200):  # the import runs in a thread of its own; each poll is what the page does every second
        page = client.get(f"/admin/import/{job}").get_data(as_text=True)
        if 'id="admin_import_running"' not in page:
            return page
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def test_a_good_file_is_checked_then_imported_in_the_background(app, client, operator):
    checked = upload(client, HEADER + "".join(GOOD))
    text = checked.get_data(as_text=True)
    assert checked.status_code == 200 and "2 satır içe aktarılmaya hazır" in text
    job = JOB.search(text).group(1)
    with open_db(app) as db:
        assert storage.holders.find_holder(db, "10000000450") is None  # nothing before the import is asked for
    uploads = list((Path(app.instance_path) / "jobs").glob("*.sealed"))
    assert len(uploads) == 1 and b"12345678" not in uploads[0].read_bytes()
    started = post(client, f"/admin/import/{job}", token_page="/admin/import")
    assert started.status_code == 200
    done = wait_until_finished(client, job)
    assert "İçe aktarma tamamlandı: 2 satır kaydedildi." in done
    with open_db(app) as db:
        deniz = storage.holders.find_holder(db, "10000000450")
        assert deniz is not None
        events = [(entry["event"], entry["outcome"], entry["detail"]) for entry in
                  storage.audit_log.search_audit(db, event="admin.import")]
        with app.app_context():
            assert vault.read_secrets(db, vault.app_keyring(), deniz["id"], "15000010")["puk"] == "12345678"
    assert any(outcome == "ok" and '"operator":"yukleyici"' in detail for _, outcome, detail in events)
    assert not list((Path(app.instance_path) / "jobs").glob("*.sealed"))
    assert post(client, f"/admin/import/{job}", token_page="/admin/import").status_code == 409


def test_bad_lines_are_each_named_and_nothing_is_kept(app, client, operator):
    bad = (HEADER + GOOD[0]
           + "10000000451,Bad Checksum,+905430000012,x@demo.edu.tr,15000012,2015-01-01,1234,12345678,\n")
    response = upload(client, bad)
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "Satır 3: identity" in text and "Satır 2" not in text
    assert "12345678" not in text
    imports = Path(app.instance_path) / "jobs"
    assert not imports.exists() or not list(imports.glob("*.sealed"))
    with open_db(app) as db:
        assert storage.holders.find_holder(db, "10000000450") is None


@pytest.mark.parametrize(("content", "name"), [(b"\xff\xfe\x00bad", "roster.csv"), (b"", "")])
def test_a_file_that_is_no_csv_gets_a_message(client, operator, content, name):
    response = post(client, "/admin/import", token_page="/admin/import", roster=(io.BytesIO(content), name))
    assert response.status_code == 422 and 'class="alert alert-error"' in response.get_data(as_text=True)


def test_an_upload_larger_than_a_form_is_taken_up_to_its_own_limit(app, client, operator):
    rows = [f"{10000000000 + n},Kisi {n},+905430000010,k{n}@demo.edu.tr,S{n:07d},2015-01-01,1234,12345678,\n"
            for n in range(2000)]
    response = upload(client, HEADER + "".join(rows))
    assert response.status_code == 422  # checked as a whole (the identities fail their checksum), not a 413
    assert "Satır 2:" in response.get_data(as_text=True)
    from tests.conftest import csrf_token

    boundary = "kamusm-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
            f"{csrf_token(client, '/admin/import')}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f"name=\"roster\"; filename=\"roster.csv\"\r\n\r\n").encode() + b"x" * (9 * 1024 * 1024)
    huge = client.post("/admin/import", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert huge.status_code == 413


def test_an_auditor_may_not_import(app, client, clock):
    auditor = enrol(app, client, clock, "okuyucu", "auditor")
    auditor.log_in()
    assert client.get("/admin/import").status_code == 403
    assert upload(client, HEADER + "".join(GOOD)).status_code in (400, 403)


def test_an_unknown_job_is_404(client, operator):
    assert client.get("/admin/import/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert client.get("/admin/import/../../etc").status_code == 404


def test_an_import_that_cannot_finish_says_so_and_keeps_nothing(app, client, operator):
    job = JOB.search(upload(client, HEADER + "".join(GOOD)).get_data(as_text=True)).group(1)
    (Path(app.instance_path) / "jobs" / f"{job}.sealed").unlink()
    post(client, f"/admin/import/{job}", token_page="/admin/import")
    page = wait_until_finished(client, job)
    assert 'id="admin_import_failed"' in page and "hiçbir satır kaydedilmedi" in page
    with open_db(app) as db:
        assert storage.holders.find_holder(db, "10000000450") is None
        assert ("admin.import", "failed") in [(entry["event"], entry["outcome"])
                                              for entry in storage.audit_log.search_audit(db, event="admin.import")]


def test_an_admin_rotates_the_vault_key_from_the_page_and_every_secret_still_opens(app, client, clock, auth):
    admin = enrol(app, client, clock, "kasaci", "admin")
    admin.log_in()
    before = client.get("/admin/vault").get_data(as_text=True)
    old_id = re.search(r"<dd>([0-9a-f]{16})</dd>", before).group(1)
    started = post(client, "/admin/vault/rotate", token_page="/admin/vault")
    job = re.search(r"/admin/vault/([A-Za-z0-9_-]{22})", started.get_data(as_text=True)).group(1)
    for _ in range(200):
        page = client.get(f"/admin/vault/{job}").get_data(as_text=True)
        if 'id="admin_vault_running"' not in page:
            break
        time.sleep(0.05)
    assert 'id="admin_vault_done"' in page
    after = client.get("/admin/vault").get_data(as_text=True)
    assert old_id not in after
    with open_db(app) as db:
        holder = storage.holders.find_holder(db, SELIN["identity"])
        with app.app_context():
            assert vault.read_secrets(db, vault.app_keyring(), holder["id"], SELIN["card_serial"])
        entries = [entry["detail"] for entry in storage.audit_log.search_audit(db, event="admin.rotate_vault_key")]
    assert any('"operator":"kasaci"' in detail and "rewrapped" in detail for detail in entries)
    post(client, "/admin/logout", token_page="/admin")
    assert admin.log_in().headers["Location"] == "/admin"  # the operator's own app seed was re-sealed too


def test_only_an_admin_sees_the_vault_page(app, client, clock):
    operator = enrol(app, client, clock, "isci", "operator")
    operator.log_in()
    assert client.get("/admin/vault").status_code == 403
    assert post(client, "/admin/vault/rotate", token_page="/admin").status_code == 403

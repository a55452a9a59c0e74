"""Roster import in the console: upload and check (every bad line named, nothing imported), then import
in the background with a progress bar the page polls (kamusm.roster_jobs)."""
from __future__ import annotations

import threading
from pathlib import Path

from flask import Blueprint, Flask, current_app, g, request
from flask_babel import gettext as _

from kamusm import audit, certificates, jobs, operators, roster, roster_jobs, vault
from kamusm.web import current
from kamusm.web.db import get_db
from kamusm.web.views.admin import record, require_operator, screen

bp = Blueprint("admin_import", __name__, url_prefix="/admin")

ROSTER_MAX_BYTES = 8 * 1024 * 1024
UPLOAD_ENDPOINT = "admin_import.upload"


def raise_upload_limit() -> None:
    """The upload may be larger than any other form (64 KiB); set before CSRFProtect reads the body."""
    if request.endpoint == UPLOAD_ENDPOINT:
        request.max_content_length = ROSTER_MAX_BYTES


@bp.get("/import")
@require_operator(operators.MANAGE_HOLDERS)
def import_page():
    return screen("import", "form")


@bp.post("/import")
@require_operator(operators.MANAGE_HOLDERS)
def upload():
    upload_file = request.files.get("roster")
    if upload_file is None or not upload_file.filename:
        return screen("import", "form", 422, message=_("Bir CSV dosyası seçiniz."))
    try:
        text = upload_file.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return screen("import", "form", 422, message=_("Dosya UTF-8 metin değil."))
    try:
        rows = roster.parse_roster(text, current_app.config["KAMUSM_EMAIL_DOMAINS"])
    except roster.RosterError as exc:
        record("admin.import", outcome="rejected", bad_lines=len(exc.problems))
        return screen("import", "form", 422, problems=exc.problems,
                      message=_("Hiçbir satır içe aktarılmadı: %(n)d satır hatalı. Düzeltip dosyayı yeniden "
                                "yükleyiniz.", n=len(exc.problems)))
    job = roster_jobs.save_upload(Path(current_app.instance_path), vault.app_keyring(), text, len(rows),
                                  current.now())
    record("admin.import", outcome="checked", rows=len(rows))
    return screen("import", "checked", job=job, rows=len(rows),
                  without_word=sum(1 for row in rows if not row.security_word))


@bp.post("/import/<job>")
@require_operator(operators.MANAGE_HOLDERS)
def start(job: str):
    instance = Path(current_app.instance_path)
    progress = jobs.read_progress(instance, job)
    if progress is None or progress.get("kind") != roster_jobs.KIND or progress["state"] != "checked":
        return screen("import", "form", 409,
                      message=_("Bu yükleme artık içe aktarılamaz; dosyayı yeniden yükleyiniz."))
    jobs.write_progress(instance, job, {**progress, "state": "running"})
    thread = threading.Thread(target=_run, name=f"roster-import-{job[:6]}", daemon=True,
                              args=(current_app._get_current_object(), job, g.operator["name"], current.client_ip()))
    thread.start()
    return _progress_screen(job)


def _run(app: Flask, job: str, operator_name: str, ip: str) -> None:
    with app.app_context():
        db, now = get_db(), app.config["CLOCK"]()
        try:
            count = roster_jobs.run(db, Path(app.instance_path), vault.app_keyring(),
                                    app.extensions["kamusm.hasher"].hash, job, app.config["KAMUSM_EMAIL_DOMAINS"], now)
        except Exception as exc:  # the job's state says failed and the page shows it; no thread dies silently
            audit.record(db, now, "admin.import", "failed", None, ip, operator=operator_name,
                         problem=type(exc).__name__)
            app.logger.warning("roster import %s failed: %s", job[:6], type(exc).__name__)
            return
        # The page says done only once everything is: the new cards' certificates, then the audit entry.
        try:
            certificates.issue_for_new_cards(db, Path(app.instance_path), app.config["KAMUSM_DEMO"],
                                             app.config["KAMUSM_PUBLIC_URL"], now)
        finally:
            audit.record(db, now, "admin.import", "ok", None, ip, operator=operator_name, rows=count)
            roster_jobs.mark_done(Path(app.instance_path), job, count, now)


def _progress_screen(job: str):
    progress = jobs.read_progress(Path(current_app.instance_path), job)
    if progress is None or progress.get("kind") != roster_jobs.KIND:
        return screen("import", "form", 404, message=_("Böyle bir içe aktarma yok."))
    state = {"checked": "running", "running": "running", "done": "done", "failed": "failed"}[progress["state"]]
    return screen("import", state, job=job, progress=progress)


@bp.get("/import/<job>")
@require_operator(operators.MANAGE_HOLDERS)
def progress_page(job: str):
    return _progress_screen(job)

"""GET /healthz: liveness and readiness (the database answers and is migrated, the catalogs are compiled)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, jsonify

from kamusm import catalogs, storage
from kamusm.storage.connection import StorageError
from kamusm.web.db import get_db
from kamusm.web.locale import LANGUAGES

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        version = storage.migrations.schema_version(get_db())
    except StorageError:
        return jsonify(status="error", database="unavailable"), 503
    problems = catalogs.catalog_problems(LANGUAGES, Path(current_app.config["BABEL_TRANSLATION_DIRECTORIES"]))
    if problems:
        return jsonify(status="error", database="ok", schema=version, translations=problems), 503
    ready = version == len(storage.migrations.MIGRATIONS)
    return jsonify(status="ok" if ready else "starting", database="ok", schema=version, translations="ok"), \
        200 if ready else 503

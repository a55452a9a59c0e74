"""GET /healthz: liveness and readiness (the database answers and is migrated)."""
from __future__ import annotations

import sqlite3

from flask import Blueprint, jsonify

from kamusm import storage
from kamusm.web.db import get_db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        version = storage.migrations.schema_version(get_db())
    except sqlite3.Error:
        return jsonify(status="error", database="unavailable"), 503
    ready = version == len(storage.migrations.MIGRATIONS)
    return jsonify(status="ok" if ready else "starting", database="ok", schema=version), 200 if ready else 503

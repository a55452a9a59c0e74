"""GET /helper/<wheel>: the helper's wheel, for holders to install."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, send_file

from kamusm.helper_dist import WHEEL_MIMETYPE, wheel_info

bp = Blueprint("helper_dist", __name__)


@bp.get("/helper/<filename>")
def wheel(filename: str):
    info = wheel_info(current_app.config)
    if info is None or filename != info["filename"]:
        abort(404)
    return send_file(Path(current_app.config["KAMUSM_HELPER_DIST_DIR"]) / filename, mimetype=WHEEL_MIMETYPE,
                     as_attachment=True, download_name=filename, etag=info["sha256"])

"""GET /helper/<wheel>: the local card helper's wheel built by ``make helper-dist``, and its SHA-256
for the /unlock page, so a holder installs the helper from the portal they already log in to.

Security assumptions:
- Only the exact file name of the current HELPER_VERSION's wheel is served; the name in the URL is
  compared, never joined to a path, so no request reaches another file of the folder.
- The SHA-256 is of the file's bytes, computed again whenever the file changes (its mtime, size or
  inode): ``make helper-dist`` replaces the file whole, so a rebuild shows its own digest at once.
- Public and read-only: no login, no session, no state change.

The screens over these rules are in kamusm/web/views/helper_dist.py.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from kamusm.helper.dist import wheel_filename

HASH_CHUNK_BYTES = 1024 * 1024
DIST_DIR_NAME = "helper"
WHEEL_MIMETYPE = "application/octet-stream"


def dist_dir(settings: Mapping[str, Any], instance_path: Path) -> Path:
    """KAMUSM_HELPER_DIST_DIR, else the instance folder's helper/."""
    return Path(settings["KAMUSM_HELPER_DIST_DIR"] or Path(instance_path) / DIST_DIR_NAME).resolve()


def configured_dist_dir() -> Path:
    """The folder the portal started from this environment reads (``make helper-dist`` writes there).

    Raises kamusm.errors.ConfigError for a setting that does not parse.
    """
    from kamusm.serve import effective_settings, instance_path

    return dist_dir(effective_settings(), instance_path())


@lru_cache(maxsize=8)
def _sha256(path: str, mtime_ns: int, size: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def wheel_info(app_config: Mapping[str, Any]) -> dict[str, Any] | None:
    """{filename, url, sha256 (hex), size (bytes)} of the wheel the portal serves; None when not built."""
    filename = wheel_filename()
    path = Path(app_config["KAMUSM_HELPER_DIST_DIR"]) / filename
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return {"filename": filename, "url": f"/helper/{filename}",
            "sha256": _sha256(str(path), status.st_mtime_ns, status.st_size, status.st_ino), "size": status.st_size}

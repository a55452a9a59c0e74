"""Key files in the instance folder: created once, mode 0600, never logged."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_FILE_MODE = 0o600


def load_or_create_key(path: Path, size_bytes: int = 32) -> bytes:
    """Return the key stored at path, creating it atomically with mode 0600 if absent."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(size_bytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key

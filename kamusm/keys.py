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
    # Written whole under a private temporary name, then linked into place: another process either
    # finds no key file or a complete one, never an empty one.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_bytes()
    finally:
        temporary.unlink()
    return key

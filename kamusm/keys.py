"""Private files: keys created once, and JSON state replaced atomically; mode 0600, never logged."""
from __future__ import annotations

import json
import os
import secrets
import tempfile
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


def write_private_json(path: Path, data: object) -> None:
    """Replace path with data as JSON, mode 0600, all at once: a reader sees the old or the new file."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise

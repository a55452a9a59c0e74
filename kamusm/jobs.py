"""Background jobs of the console (roster import, vault key rotation): their progress, in small JSON files.

A job runs in a thread of the worker that started it, inside its own long transactions, so its progress
is kept outside the database: a file in instance/jobs/, replaced atomically, which any worker can read
when the page polls. A job id is 128 random bits; only ids of that shape are ever turned into paths.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

FOLDER = "jobs"
STALE_SECONDS = 3600
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def folder(instance_path: Path) -> Path:
    path = Path(instance_path) / FOLDER
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def new_job(instance_path: Path) -> str:
    """A fresh job id; traces of jobs older than STALE_SECONDS are cleared on the way."""
    for old in folder(instance_path).iterdir():
        if old.stat().st_mtime < time.time() - STALE_SECONDS:
            old.unlink(missing_ok=True)
    return secrets.token_urlsafe(16)


def valid_job(job: str) -> bool:
    return bool(_JOB_ID.fullmatch(job or ""))


def write_progress(instance_path: Path, job: str, progress: dict) -> None:
    path = folder(instance_path) / f"{job}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(progress))
    os.replace(temporary, path)


def read_progress(instance_path: Path, job: str) -> dict | None:
    path = folder(instance_path) / f"{job}.json"
    if not valid_job(job) or not path.exists():
        return None
    return json.loads(path.read_text())


def running(instance_path: Path, kind: str) -> str | None:
    """The id of a job of `kind` still running (and not stale), if any."""
    for path in folder(instance_path).glob("*.json"):
        progress = json.loads(path.read_text())
        if progress.get("kind") == kind and progress["state"] == "running" \
                and path.stat().st_mtime >= time.time() - STALE_SECONDS:
            return path.stem
    return None

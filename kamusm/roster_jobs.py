"""Roster import from the console: a checked upload waits sealed, then imports in the background.

Security and behaviour assumptions:
- The upload holds PINs and PUKs, so between the check and the import it is kept only sealed under the
  vault's KEK (AES-GCM, the job id in the associated data) in instance/jobs/, and the file is
  deleted when the import ends, fails, or is abandoned (older than JOB_SECONDS when the next job starts).
- The import is kamusm.roster.import_rows: one transaction, all rows or none, as `kamusm import`.
- Progress is kamusm.jobs' (a file any worker can read while the import's transaction holds the
  database's write lock).
"""
from __future__ import annotations

from pathlib import Path

from kamusm import jobs, roster, vault
from kamusm.jobs import write_progress

KIND = "roster-import"


def _upload_path(instance_path: Path, job: str) -> Path:
    return jobs.folder(instance_path) / f"{job}.sealed"


def _purpose(job: str) -> str:
    return f"roster-upload:{job}"


def save_upload(instance_path: Path, keyring: vault.Keyring, text: str, rows: int, now: float) -> str:
    """Keep a checked upload sealed for the import that follows; return its job id."""
    job = jobs.new_job(instance_path)
    sealed = vault.seal_under_kek(keyring.current, 0, _purpose(job), text)
    _upload_path(instance_path, job).write_bytes(keyring.current_id.encode() + b"\n" + sealed)
    write_progress(instance_path, job, {"kind": KIND, "state": "checked", "total": rows, "done": 0, "at": now})
    return job


def open_upload(instance_path: Path, keyring: vault.Keyring, job: str) -> str | None:
    path = _upload_path(instance_path, job)
    if not jobs.valid_job(job) or not path.exists():
        return None
    kek_id, _, sealed = path.read_bytes().partition(b"\n")
    return vault.open_under_kek(keyring.find(kek_id.decode()), 0, _purpose(job), sealed)


def drop_upload(instance_path: Path, job: str) -> None:
    _upload_path(instance_path, job).unlink(missing_ok=True)


def run(db, instance_path: Path, keyring: vault.Keyring, hash_word, job: str, email_domains: list[str],
        now: float) -> int:
    """Import the job's upload (checked again: the holders may have changed since); return how many rows.
    Progress is written as it goes, "done" is left to the caller (mark_done, once all its work is over);
    the sealed upload is gone afterwards whatever happened."""
    try:
        text = open_upload(instance_path, keyring, job)
        if text is None:
            raise roster.RosterError([(1, "the upload is gone; upload the file again")])
        rows = roster.parse_roster(text, email_domains)
        total = len(rows)
        step = max(1, total // 100)
        done = 0

        def advance() -> None:
            nonlocal done
            done += 1
            if done % step == 0:
                write_progress(instance_path, job, {"kind": KIND, "state": "running", "total": total, "done": done,
                                                          "at": now})

        write_progress(instance_path, job, {"kind": KIND, "state": "running", "total": total, "done": 0, "at": now})
        count = roster.import_rows(db, rows, keyring, hash_word, now, on_row=advance)
    except Exception as exc:
        write_progress(instance_path, job, {"kind": KIND, "state": "failed", "total": 0, "done": 0, "at": now,
                                            "problems": getattr(exc, "problems", [(0, type(exc).__name__)])})
        raise
    finally:
        drop_upload(instance_path, job)
    return count


def mark_done(instance_path: Path, job: str, count: int, now: float) -> None:
    write_progress(instance_path, job, {"kind": KIND, "state": "done", "total": count, "done": count, "at": now})

"""Server-side sessions stored in SQLite.

The cookie carries only a random 256-bit token; the database keys the row by
the token's SHA-256, so a copy of the database cannot be replayed as cookies.
Idle and absolute timeouts are enforced here on every request; `rotate()` gives
a new id at login, `destroy()` removes the row at logout, and the rows of sessions
nobody came back to are purged here on kamusm.housekeeping's schedule.

The institution console (/admin) is an area of its own: its session has another cookie (read only
under /admin, while the holder's cookie is never read there), a 15-minute idle timeout, and the area
is written into the session's row, so neither kind of token opens the other area even if copied
into the other cookie.

Requests for static files and the logo are sessionless: the cookie is not read, no row is
touched or made, and no cookie is set, so even a missing file's 404 page hands
out no session and no CSRF token. A response that sets or clears the cookie is
marked no-store here, whoever built it.
"""
from __future__ import annotations

import hashlib
import secrets
import time

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from kamusm import housekeeping, storage
from kamusm.storage.connection import StorageError

TOKEN_BYTES = 32
TOUCH_INTERVAL_SECONDS = 15
COOKIE_NAME = "kamusm_session"
SECURE_COOKIE_NAME = "__Host-kamusm_session"
ADMIN_COOKIE_NAME = "kamusm_admin"
SECURE_ADMIN_COOKIE_NAME = "__Host-kamusm_admin"
AREA_KEY = "_area"
HOLDER_AREA = "holder"
ADMIN_AREA = "admin"
SESSIONLESS_PATHS = frozenset({"/branding/logo"})


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, data: dict | None = None, token: str | None = None, created_at: float | None = None,
                 seen_at: float | None = None):
        def on_update(session: "ServerSession") -> None:
            session.modified = True

        super().__init__(data or {}, on_update)
        self.token = token
        self.created_at = created_at
        self.seen_at = seen_at
        self.modified = False
        self.rotate_requested = False
        self.destroy_requested = False
        self.expired_on_open = False
        self.storage_error: Exception | None = None
        self.sessionless = False

    def rotate(self) -> None:
        """Give this session a new id at the end of the request (session fixation)."""
        self.rotate_requested = True
        self.modified = True

    def destroy(self) -> None:
        """Delete the session server-side and clear the cookie."""
        self.clear()
        self.destroy_requested = True


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def area(path: str) -> str:
    return ADMIN_AREA if path == "/admin" or path.startswith("/admin/") else HOLDER_AREA


def cookie_name(request: Request) -> str:
    if area(request.path) == ADMIN_AREA:
        return SECURE_ADMIN_COOKIE_NAME if request.is_secure else ADMIN_COOKIE_NAME
    return SECURE_COOKIE_NAME if request.is_secure else COOKIE_NAME


def idle_seconds(app: Flask, request: Request) -> int:
    if area(request.path) == ADMIN_AREA:
        return app.config["KAMUSM_ADMIN_IDLE_SECONDS"]
    return app.config["KAMUSM_SESSION_IDLE_SECONDS"]


def is_static_path(app: Flask, path: str) -> bool:
    """Static files and the logo: the same for everyone, so they open no session (module docstring)."""
    return path in SESSIONLESS_PATHS or (bool(app.static_url_path) and path.startswith(f"{app.static_url_path}/"))


class SqliteSessionInterface(SessionInterface):
    def __init__(self, db_factory, clock=time.time, schedule: housekeeping.PurgeSchedule | None = None):
        self._db_factory = db_factory
        self._clock = clock
        self.purge_schedule = schedule or housekeeping.PurgeSchedule()

    def is_null_session(self, obj: object) -> bool:
        """Flask saves no null session: a sessionless request's writes (if any) go nowhere."""
        return getattr(obj, "sessionless", False) or super().is_null_session(obj)

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        now = self._clock()
        if is_static_path(app, request.path):
            sessionless = ServerSession(created_at=now)
            sessionless.sessionless = True
            return sessionless
        token = request.cookies.get(cookie_name(request))
        if not token or len(token) > 100:
            return ServerSession(created_at=now)
        try:
            row = storage.sessions.load_session(self._db_factory(), _hash(token))
        except StorageError as exc:
            # The database cannot be read: hand out an empty session so the error page can render;
            # kamusm.web.errors.raise_storage_error turns the fault into a 503 before any view runs.
            unavailable = ServerSession(created_at=now)
            unavailable.storage_error = exc
            return unavailable
        if row is None or row["data"].pop(AREA_KEY, HOLDER_AREA) != area(request.path):
            return ServerSession(created_at=now)
        idle = idle_seconds(app, request)
        absolute = app.config["KAMUSM_SESSION_MAX_SECONDS"]
        if now - row["seen_at"] > idle or now - row["created_at"] > absolute:
            storage.sessions.delete_session(self._db_factory(), row["id_hash"])
            expired = ServerSession(created_at=now)
            expired.expired_on_open = True
            return expired
        return ServerSession(row["data"], token=token, created_at=row["created_at"], seen_at=row["seen_at"])

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:
        if session.storage_error is not None:
            return
        self._save(app, session, response)
        if self.purge_schedule.due(self._clock()):
            purged = housekeeping.purge_expired_sessions(self._db_factory(), self._clock(),
                                                         app.config["KAMUSM_SESSION_IDLE_SECONDS"],
                                                         app.config["KAMUSM_SESSION_MAX_SECONDS"],
                                                         app.config["KAMUSM_ADMIN_IDLE_SECONDS"])
            if purged:
                app.logger.info("purged %d expired session(s)", purged)

    def _save(self, app: Flask, session: ServerSession, response: Response) -> None:
        from flask import request

        name = cookie_name(request)
        db = self._db_factory()
        now = self._clock()
        secure = request.is_secure
        if session.destroy_requested or (not session and session.token and session.modified):
            if session.token:
                storage.sessions.delete_session(db, _hash(session.token))
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
            response.headers["Cache-Control"] = "no-store"
            return
        if not session.modified:
            if session.token and now - (session.seen_at or 0) > TOUCH_INTERVAL_SECONDS:
                storage.sessions.touch_session(db, _hash(session.token), now)
            return
        if not session:
            return
        with storage.write(db):  # a rotation drops the old id and saves the new one at once
            if session.rotate_requested and session.token:
                storage.sessions.delete_session(db, _hash(session.token))
                session.token = None
            if session.token is None:
                session.token = secrets.token_urlsafe(TOKEN_BYTES)
                session.created_at = now
            storage.sessions.save_session(db, _hash(session.token), {**session, AREA_KEY: area(request.path)},
                                          session.get("holder_id"), session.created_at, now)
        response.set_cookie(name, session.token, path="/", secure=secure, httponly=True, samesite="Lax")
        response.headers["Cache-Control"] = "no-store"  # a cached copy would hand the cookie to the next user

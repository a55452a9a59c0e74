"""What every response shares: page-or-partial rendering, security headers,
cross-site refusal, language choice, and the error pages.

Security assumptions: the CSP forbids inline script and style, so templates
carry none and htmx never evaluates code; Cache-Control no-store goes on every
dynamic response and every error page (a missing static file's too), and
kamusm.sessions adds it to any response that sets the session cookie, so no
page with a secret, a CSRF token or a cookie is cached; POSTs
from another site are refused by Sec-Fetch-Site/Origin before CSRF is checked.
"""
from __future__ import annotations

import hmac
import logging
import re
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from babel import Locale
from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.globals import request_ctx
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, generate_csrf
from flask_wtf.form import _Auto
from markupsafe import Markup
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_accept_header

from kamusm import templating
from kamusm.db import note_storage_fault
from kamusm.errors import KamusmError

CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
HSTS_SECONDS = 365 * 24 * 3600
LANGUAGES = ("tr", "en")
LOCALES = {code: Locale.parse(code) for code in LANGUAGES}
LANGUAGE_COOKIE = "kamusm_lang"
SIGNED_CSRF_TOKEN = "csrf_token_signed"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


class TextForm(FlaskForm):
    """A form of text fields read from the urlencoded or multipart form only, without a CSRF field of its own.

    Flask-WTF would also fill fields from file parts (FileStorage) and JSON bodies (any type);
    every field here is a string, so those sources are never consulted.
    """

    class Meta:
        csrf = False  # CSRFProtect has checked every POST before a view runs; a second token per form only costs

        def wrap_formdata(self, form, formdata):
            if formdata is not _Auto:
                return formdata
            return request.form if request.method in {"POST", "PUT", "PATCH", "DELETE"} else None


def is_htmx_partial() -> bool:
    """A partial is wanted for HTMX requests except history restores, which need the page."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Request-Type") != "full"


def render_screen(screen: str, state: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render templates/pages/<screen>.html, or only its partial <screen>_<state> for HTMX."""
    partial = f"partials/{screen}_{state}.html"
    language = str(get_locale())
    if is_htmx_partial():
        return render_template(templating.page_template(partial, language), current_locale=language, **context), status
    return render_template(templating.page_template(f"pages/{screen}.html", language), partial=partial,
                           current_locale=language, **context), status


def redirect_to(endpoint: str, **values: Any) -> Response:
    """303 for normal requests; HX-Redirect for HTMX so the browser loads the next screen."""
    target = url_for(endpoint, **values)
    if request.headers.get("HX-Request") == "true":
        response = Response(status=200)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, code=303)


def select_locale() -> Locale:
    """The request's language as a ready Locale (Flask-Babel would parse a code on every request)."""
    if not has_request_context():
        return LOCALES["en"]  # the command line speaks English, like its own messages
    # Most pages have no query string: parsing one only to find no "lang" in it cost more than the lookup.
    asked = request.args.get("lang") if b"lang=" in request.query_string else None
    if asked in LANGUAGES:
        g.language_asked = asked
        return LOCALES[asked]
    remembered = request.cookies.get(LANGUAGE_COOKIE)
    if remembered in LANGUAGES:
        return LOCALES[remembered]
    return LOCALES[_best_language(request.headers.get("Accept-Language", ""))]


@lru_cache(maxsize=256)
def _best_language(accept_language: str) -> str:
    """The language an Accept-Language header prefers: browsers send the same few headers again and again."""
    return parse_accept_header(accept_language, LanguageAccept).best_match(LANGUAGES) or "tr"


def raise_storage_error() -> None:
    """A database fault met while opening the session becomes the storage error page (503)."""
    error = getattr(session, "storage_error", None)
    if error is not None:
        raise error


def refuse_cross_site() -> None:
    """Refuse state-changing requests that a browser marks as coming from another site.

    Sec-Fetch-Site, where the browser sends it, decides. Without it the Origin
    must match; "null" counts as foreign then. (With Referrer-Policy no-referrer,
    browsers send Origin: null on ordinary same-origin form posts, so null alone
    cannot be refused when Sec-Fetch-Site vouches for the request.) Both are compared
    without regard to case, so a "CROSS-SITE" from some client or proxy is still refused
    (an origin's scheme and host are case-insensitive anyway).
    """
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site in {"cross-site", "same-site"}:
        abort(403)
    if site in {"same-origin", "none"}:
        return
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != request.host_url.rstrip("/").lower():
        abort(403)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    if request.endpoint == "unlock.unlock":
        # The unlock page's script talks to the holder's local card helper, and only there.
        helper = urlsplit(current_app.config["KAMUSM_HELPER_URL"])
        headers["Content-Security-Policy"] = f"{CSP}; connect-src 'self' {helper.scheme}://{helper.netloc}"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.is_secure:
        headers["Strict-Transport-Security"] = f"max-age={HSTS_SECONDS}; includeSubDomains"
    if request.endpoint != "static" or response.status_code >= 400:  # a static file's 404 is a page too
        headers["Cache-Control"] = "no-store"
        headers.add("Vary", "HX-Request")
    if getattr(g, "language_asked", None) and not session.sessionless:
        response.set_cookie(LANGUAGE_COOKIE, g.language_asked, max_age=LANGUAGE_COOKIE_SECONDS,
                            secure=request.is_secure, httponly=True, samesite="Lax")
    return response


def start_fresh_session() -> None:
    """Empty the session and give it a new id (session fixation) and a new CSRF token, at each step of
    a login. The token is made now so that it is saved with the new id: the next page need not write
    the session again just to add one."""
    session.clear()
    session.rotate()
    g.pop("csrf_token", None)  # Flask-WTF's per-request copy of the old token
    page_csrf_token()


def page_csrf_token() -> str:
    """The CSRF token for a page; empty when the session could not be opened (an error page about storage).

    Flask-WTF signs the session's CSRF secret anew for every page, a tenth of what a page cost. With
    WTF_CSRF_TIME_LIMIT off, the signature never expires while the secret and the key stay the same, so
    the signed token is kept in the session, beside the id of the key that signed it.

    Also empty for a sessionless request (a static file's error page): it has no session to keep a token in."""
    if session.sessionless:
        return ""
    try:
        key_id = _key_id(current_app.config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key)
        kept = session.get(SIGNED_CSRF_TOKEN)
        if kept and kept[0] == key_id:
            return kept[1]
        token = generate_csrf()
        session[SIGNED_CSRF_TOKEN] = [key_id, token]
        return token
    except (AssertionError, sqlite3.Error):
        return ""


@lru_cache(maxsize=4)
def _key_id(key: str | bytes) -> str:
    """A short name for the signing key, made with it (an HMAC), so the name tells nothing about the key."""
    return hmac.new(key if isinstance(key, bytes) else key.encode(), b"kamusm csrf key id", "sha256").hexdigest()[:16]


def csrf_field() -> Markup:
    """The hidden CSRF input of a form; a global rather than a macro, so pages need no import for it."""
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % page_csrf_token()


def format_timestamp(timestamp: float) -> str:
    return format_datetime(datetime.fromtimestamp(timestamp, timezone.utc), "medium")


def _error_page(status: int, message: str):
    if request_ctx.url_adapter is None:
        # The request could not even be routed (e.g. a malformed Host): no page with links can be built.
        return Response(f"{message}\n", status=status, mimetype="text/plain")
    return render_screen("error", "message", status=status, status_code=status, message=message)


class RedactLinkTokens(logging.Filter):
    """Access logs print request paths; one-time link tokens (/reset/<token>, /profile/email/<token>)
    must not reach them."""

    PATTERN = re.compile(r"(/reset/|/profile/email/)[^\s?\"']+")

    def _redact(self, text: str) -> str:
        return self.PATTERN.sub(r"\1[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(str(record.msg))
        if isinstance(record.args, Mapping):
            # gunicorn's access atoms: a mapping object that must stay itself (it fills missing keys).
            for key, value in list(record.args.items()):
                if isinstance(value, str):
                    record.args[key] = self._redact(value)
        elif record.args:
            record.args = tuple(self._redact(arg) if isinstance(arg, str) else arg
                                for arg in (record.args if isinstance(record.args, tuple) else (record.args,)))
        return True


def init_app(app: Flask) -> None:
    for logger in (logging.getLogger("werkzeug"), logging.getLogger("gunicorn.access"),
                   logging.getLogger("gunicorn.error"), app.logger):
        if not any(isinstance(existing, RedactLinkTokens) for existing in logger.filters):
            logger.addFilter(RedactLinkTokens())
    app.before_request(raise_storage_error)
    app.before_request(refuse_cross_site)
    app.after_request(add_security_headers)
    app.jinja_env.globals["page_csrf_token"] = page_csrf_token  # a global, so imported macros see it too
    app.jinja_env.globals["csrf_field"] = csrf_field
    app.add_template_filter(format_timestamp, "datetime")
    templating.init_app(app, LANGUAGES)
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.ico"))
    register_error_pages(app)


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _error_page(400, _("Form süresi doldu ya da geçersiz. Lütfen sayfayı yenileyip tekrar deneyiniz."))

    @app.errorhandler(KamusmError)
    def kamusm_error(error: KamusmError):
        return _error_page(error.status, str(error))

    @app.errorhandler(sqlite3.OperationalError)
    def storage_unavailable(error: sqlite3.OperationalError):
        # Locked past the busy timeout, read-only, or full: the write was rolled back, nothing is half-done.
        current_app.logger.error("storage unavailable: %s", error)
        note_storage_fault()
        response = make_response(_error_page(503, _(
            "Sistem şu anda isteğinizi kaydedemiyor. Hiçbir bilginiz değişmedi; lütfen biraz sonra tekrar deneyiniz.")))
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        messages = {
            400: _("İstek anlaşılamadı. Lütfen sayfayı yenileyip tekrar deneyiniz."),
            403: _("Bu istek başka bir siteden geldiği için reddedildi."),
            404: _("Aradığınız sayfa bulunamadı."),
            405: _("Bu işlem bu sayfada yapılamaz."),
            413: _("Gönderilen bilgi çok uzun."),
            429: _("Çok fazla istek gönderdiniz. Lütfen bir süre bekleyip tekrar deneyiniz."),
        }
        status = error.code or 500
        return _error_page(status, messages.get(status, _("Beklenmeyen bir hata oluştu.")))

    @app.errorhandler(500)
    def server_error(error: Exception):
        # A storage fault while saving the session happens after the view, where only 500 handlers run.
        original = getattr(error, "original_exception", None)
        if isinstance(original, sqlite3.OperationalError):
            return storage_unavailable(original)
        return _error_page(500, _("Beklenmeyen bir hata oluştu. Lütfen daha sonra tekrar deneyiniz."))

"""Page or partial: every screen renders through render_screen, and moves on through redirect_to.

The CSRF token of a page is made here too, kept in the session once signed, and the session is
renewed (new id, new token) at each step of a login.
"""
from __future__ import annotations

import hmac
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from flask import (
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_datetime, get_locale
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from kamusm.storage.connection import StorageError
from kamusm.web import templating

SIGNED_CSRF_TOKEN = "csrf_token_signed"


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
    except (AssertionError, *StorageError):
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


def link_for(token: str, endpoint: str = "reset.reset") -> str:
    """The absolute link a mail carries, on KAMUSM_PUBLIC_URL (the request's own host could be forged)."""
    base = current_app.config["KAMUSM_PUBLIC_URL"] or "http://127.0.0.1:5000"
    return base.rstrip("/") + url_for(endpoint, token=token)

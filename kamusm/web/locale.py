"""The language of a request: ?lang=, then the remembered cookie, then Accept-Language; Turkish by default."""
from __future__ import annotations

from functools import lru_cache

from babel import Locale
from flask import (
    g,
    has_request_context,
    request,
)
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

LANGUAGES = ("tr", "en")
LOCALES = {code: Locale.parse(code) for code in LANGUAGES}
LANGUAGE_COOKIE = "kamusm_lang"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


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

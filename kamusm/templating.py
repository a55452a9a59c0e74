"""Page templates: one compiled set per language, and links that are built once.

Every page translates a dozen fixed strings and links the same endpoints and static files. Done
anew on each request, that was more than half of what a page cost (bench/README.md). So:

- Each language has its own Jinja environment (an overlay of the app's, sharing its globals and
  filters) whose templates are compiled with every `{{ _("literal") }}` already translated into
  page text. Anything else (a string with variables, a translated variable) is still translated
  when the page is rendered, through the request's catalog.
- `url_for` in templates builds a link to an endpoint without arguments once per script root and
  keeps it: the app registers no URL defaults or value preprocessors that could make the same call
  give another link. Links with values (tokens, query arguments) are built every time, never kept.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

from babel.support import NullTranslations
from flask import Flask, current_app, has_request_context, request, url_for
from flask_babel import force_locale, get_locale, get_translations
from jinja2 import Environment, Template
from jinja2.ext import Extension
from jinja2.lexer import (
    TOKEN_DATA,
    TOKEN_LPAREN,
    TOKEN_NAME,
    TOKEN_RPAREN,
    TOKEN_STRING,
    TOKEN_VARIABLE_BEGIN,
    TOKEN_VARIABLE_END,
    Token,
)

ENVIRONMENTS = "kamusm.page_environments"
LITERAL_CALL = (TOKEN_VARIABLE_BEGIN, TOKEN_NAME, TOKEN_LPAREN, TOKEN_STRING, TOKEN_RPAREN, TOKEN_VARIABLE_END)


class CompiledTranslations(Extension):
    """Replaces `{{ _("literal") }}` with the literal's translation from the environment's catalog.

    The result is the same text the i18n extension would output at render time: newstyle gettext
    marks a translation safe and formats it with no variables, which changes nothing in a string
    without "%" (one with "%" is left to render time, where formatting applies)."""

    def filter_stream(self, stream: Iterable[Token]) -> Iterator[Token]:
        catalog: NullTranslations = self.environment.kamusm_catalog  # type: ignore[attr-defined]
        tokens = list(stream)
        index = 0
        while index < len(tokens):
            window = tokens[index:index + len(LITERAL_CALL)]
            if (tuple(token.type for token in window) == LITERAL_CALL and window[1].value == "_"
                    and "%" not in window[3].value):
                yield Token(window[0].lineno, TOKEN_DATA, catalog.ugettext(window[3].value))
                index += len(LITERAL_CALL)
            else:
                yield tokens[index]
                index += 1


def language_environments(app: Flask, languages: Iterable[str]) -> dict[str, Environment]:
    """An overlay of app.jinja_env per language, each with that language's catalog compiled in."""
    environments = {}
    with app.app_context():
        for language in languages:
            environment = app.jinja_env.overlay(extensions=[CompiledTranslations])
            with force_locale(language):
                environment.kamusm_catalog = get_translations()  # type: ignore[attr-defined]
            environments[language] = environment
    return environments


def page_template(name: str) -> Template:
    """The template compiled for the request's language (the first language's when there is none)."""
    environments = current_app.extensions[ENVIRONMENTS]
    environment = environments.get(str(get_locale())) or next(iter(environments.values()))
    return environment.get_template(name)


@lru_cache(maxsize=512)
def _fixed_url(script_root: str, endpoint: str, filename: str | None) -> str:
    if filename is None:
        return url_for(endpoint)
    return url_for(endpoint, filename=filename)


def template_url_for(endpoint: str, **values: object) -> str:
    """url_for, keeping the link when it has no values (module docstring)."""
    if values or endpoint.startswith(".") or not has_request_context():
        return url_for(endpoint, **values)
    return _fixed_url(request.script_root, endpoint, None)


def static_url(filename: str) -> str:
    """url_for('static') for the layout's files: they never move while the process runs."""
    return _fixed_url(request.script_root, "static", filename)


def init_app(app: Flask, languages: Iterable[str]) -> None:
    app.jinja_env.globals["url_for"] = template_url_for
    app.jinja_env.globals["static_url"] = static_url
    app.extensions[ENVIRONMENTS] = language_environments(app, languages)

"""Page templates: one compiled set per language, with their fixed strings and links compiled in.

Every page translates a dozen fixed strings and links the same endpoints and static files. Done
anew on each request, that was more than half of what a page cost (bench/README.md). So each
language has its own Jinja environment (an overlay of the app's, sharing its globals and filters)
whose templates are compiled with
- every `{{ _("literal") }}` already translated into page text;
- every `{{ url_for('endpoint') }}` and `{{ static_url('file') }}` already built, after the
  request's script root (`request.root_path`, the same prefix url_for puts before a path). The app
  registers no URL defaults, subdomains or host matching that could make url_for answer otherwise.
Anything else (a string with variables, a link with values, an endpoint not registered, say the
demo's outside demo mode) is left to render time, as before.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from babel.support import NullTranslations
from flask import Flask, current_app, url_for
from flask_babel import force_locale, get_translations
from jinja2 import Environment, Template, pass_context
from jinja2.ext import Extension
from jinja2.lexer import (
    TOKEN_DATA,
    TOKEN_DOT,
    TOKEN_LPAREN,
    TOKEN_NAME,
    TOKEN_RPAREN,
    TOKEN_STRING,
    TOKEN_VARIABLE_BEGIN,
    TOKEN_VARIABLE_END,
    Token,
)
from jinja2.runtime import Context
from werkzeug.routing import BuildError, MapAdapter

ENVIRONMENTS = "kamusm.page_environments"
LITERAL_CALL = (TOKEN_VARIABLE_BEGIN, TOKEN_NAME, TOKEN_LPAREN, TOKEN_STRING, TOKEN_RPAREN, TOKEN_VARIABLE_END)


class CompiledConstants(Extension):
    """Replaces literal calls of `_`, `url_for` and `static_url` with their results (module docstring).

    A translation is the text the i18n extension would output at render time: newstyle gettext marks
    it safe and formats it with no variables, which changes nothing in a string without "%" (one
    with "%" is left to render time, where formatting applies)."""

    def filter_stream(self, stream: Iterable[Token]) -> Iterator[Token]:
        tokens = list(stream)
        index = 0
        while index < len(tokens):
            window = tokens[index:index + len(LITERAL_CALL)]
            compiled = None
            if tuple(token.type for token in window) == LITERAL_CALL:
                compiled = self._compile(window[1].value, window[3].value, window[0].lineno)
            if compiled is None:
                yield tokens[index]
                index += 1
            else:
                yield from compiled
                index += len(LITERAL_CALL)

    def _compile(self, function: str, argument: str, lineno: int) -> list[Token] | None:
        if function == "_" and "%" not in argument:
            catalog: NullTranslations = self.environment.kamusm_catalog  # type: ignore[attr-defined]
            return [Token(lineno, TOKEN_DATA, catalog.ugettext(argument))]
        if function == "url_for" and not argument.startswith("."):
            path = self._path(argument, {})
        elif function == "static_url":
            path = self._path("static", {"filename": argument})
        else:
            return None
        if path is None:
            return None
        return [Token(lineno, TOKEN_VARIABLE_BEGIN, "{{"), Token(lineno, TOKEN_NAME, "request"),
                Token(lineno, TOKEN_DOT, "."), Token(lineno, TOKEN_NAME, "root_path"),
                Token(lineno, TOKEN_VARIABLE_END, "}}"), Token(lineno, TOKEN_DATA, path)]

    def _path(self, endpoint: str, values: dict[str, str]) -> str | None:
        urls: MapAdapter = self.environment.kamusm_urls  # type: ignore[attr-defined]
        try:
            return urls.build(endpoint, values)
        except BuildError:
            return None


def language_environments(app: Flask, languages: Iterable[str]) -> dict[str, Environment]:
    """An overlay of app.jinja_env per language, each with that language's catalog compiled in."""
    environments = {}
    with app.app_context():
        for language in languages:
            environment = app.jinja_env.overlay(extensions=[CompiledConstants])
            environment.kamusm_urls = app.url_map.bind("localhost")  # type: ignore[attr-defined]
            with force_locale(language):
                environment.kamusm_catalog = get_translations()  # type: ignore[attr-defined]
            environments[language] = environment
    return environments


def page_template(name: str, language: str) -> Template:
    """The template compiled for a language (the first language's for one without templates)."""
    environments = current_app.extensions[ENVIRONMENTS]
    environment = environments.get(language) or next(iter(environments.values()))
    return environment.get_template(name)


def _catalog(context: Context) -> NullTranslations:
    """The catalog of the language a template was compiled for; the request's for the app's own environment."""
    return getattr(context.environment, "kamusm_catalog", None) or get_translations()


@pass_context
def _gettext(context: Context, string: str) -> str:
    return _catalog(context).ugettext(string)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return _catalog(context).ungettext(singular, plural, n)


def static_url(filename: str) -> str:
    """url_for('static') for a file (literal calls are compiled in, see the module docstring)."""
    return url_for("static", filename=filename)


def init_app(app: Flask, languages: Iterable[str]) -> None:
    # Flask-Babel's callables would look the request's catalog up again for every string translated at render time.
    app.jinja_env.install_gettext_callables(gettext=_gettext, ngettext=_ngettext, newstyle=True)
    app.jinja_env.globals["static_url"] = static_url
    app.extensions[ENVIRONMENTS] = language_environments(app, languages)

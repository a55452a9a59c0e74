"""create_app: the portal's Flask application, built from its settings and blueprints."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from kamusm import catalogs, cli, helper_dist, policy, storage
from kamusm.config import check_settings, load_settings
from kamusm.keys import load_or_create_key
from kamusm.redaction import RedactLinkTokens
from kamusm.web import db as dbmod
from kamusm.web import guards, locale, rendering, templating
from kamusm.web.errors import raise_storage_error, register_error_pages
from kamusm.web.extensions import babel, csrf, limiter
from kamusm.web.security import add_security_headers, refuse_cross_site
from kamusm.web.sessions import SqliteSessionInterface
from kamusm.web.views import (
    activity,
    admin,
    admin_import,
    admin_staff,
    branding,
    certificates,
    demo,
    health,
    login,
    lost,
    menu,
    pin_puk,
    profile,
    reset,
    security,
    unlock,
)
from kamusm.web.views import helper_dist as helper_dist_views
from kamusm.words import WordHasher

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAX_REQUEST_BYTES = 64 * 1024


class RowIdConverter(IntegerConverter):
    """`<rowid:name>`: a database row id in a path, 1 to 2**63 - 1. Anything larger is a 404 like any unknown id;
    werkzeug's plain `int` would hand it on, and SQLite refuses integers past 64 bits with an OverflowError."""

    def __init__(self, url_map) -> None:
        super().__init__(url_map, min=1, max=2**63 - 1)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the portal: defaults, instance/kamusm.toml, environment, then test_config."""
    test_config = test_config or {}
    instance_path = Path(test_config.get("KAMUSM_INSTANCE")
                         or os.environ.get("KAMUSM_INSTANCE") or PROJECT_ROOT / "instance").resolve()
    app = Flask("kamusm", instance_path=str(instance_path), instance_relative_config=True,
                template_folder=str(PROJECT_ROOT / "templates"), static_folder=str(PROJECT_ROOT / "static"))
    instance_path.mkdir(parents=True, exist_ok=True)
    app.url_map.converters["rowid"] = RowIdConverter

    settings = load_settings(instance_path)
    settings.update({name: value for name, value in test_config.items() if name in settings})
    check_settings(settings)
    app.config.update(settings)
    app.config.update(
        DATABASE=settings["KAMUSM_DATABASE_URL"] or str(instance_path / "kamusm.db"),
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        # Referrer-Policy no-referrer removes the Referer this check wants; security.refuse_cross_site checks instead.
        WTF_CSRF_SSL_STRICT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token dies with the server-side session, which has its own timeouts
        # Our forms use no WTForms validators, so WTForms' own catalog (loaded per form) is never needed.
        WTF_I18N_ENABLED=False,
        BABEL_DEFAULT_LOCALE="tr",
        BABEL_TRANSLATION_DIRECTORIES=str(catalogs.TRANSLATIONS_DIR),
        CLOCK=time.time,
        CAPTCHA_FIXED_ANSWER=None,
    )
    app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_or_create_key(instance_path / "secret_key")
    if app.config["KAMUSM_PROXIES"]:
        proxies = app.config["KAMUSM_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    app.logger.setLevel(logging.INFO)
    dbmod.init_app(app)
    with app.app_context():
        storage.migrations.migrate(dbmod.get_db())
    dbmod.connections(app).close_all()  # a gunicorn --preload master must not hand connections to its workers

    app.session_interface = SqliteSessionInterface(dbmod.get_db, clock=lambda: app.config["CLOCK"]())
    app.extensions["kamusm.hasher"] = WordHasher(app.config["KAMUSM_ARGON2_MEMORY_KIB"],
                                                 app.config["KAMUSM_ARGON2_TIME_COST"],
                                                 app.config["KAMUSM_ARGON2_PARALLELISM"],
                                                 app.config["KAMUSM_ARGON2_SLOTS"] or os.cpu_count() or 1)
    catalogs.compile_stale_catalogs(locale.LANGUAGES, Path(app.config["BABEL_TRANSLATION_DIRECTORIES"]))
    babel.init_app(app, locale_selector=locale.select_locale)
    _init_web(app)  # before CSRFProtect, so a cross-site POST is refused as such
    csrf.init_app(app)
    limiter.init_app(app)
    for view in (login, lost, menu, activity, pin_puk, reset, unlock, profile, certificates, security, admin,
                 admin_staff, admin_import, health, branding):
        app.register_blueprint(view.bp)
    app.config["KAMUSM_HELPER_DIST_DIR"] = str(helper_dist.dist_dir(app.config, instance_path))
    app.register_blueprint(helper_dist_views.bp)
    if app.config["KAMUSM_DEMO"]:
        app.register_blueprint(demo.bp)
    cli.init_app(app)
    return app


def _init_web(app: Flask) -> None:
    """Hooks every request passes, the template globals, and the log filters."""
    for logger in (logging.getLogger("werkzeug"), logging.getLogger("gunicorn.access"),
                   logging.getLogger("gunicorn.error"), app.logger):
        if not any(isinstance(existing, RedactLinkTokens) for existing in logger.filters):
            logger.addFilter(RedactLinkTokens())
    app.before_request(raise_storage_error)
    app.before_request(refuse_cross_site)
    app.before_request(admin_import.raise_upload_limit)
    app.after_request(add_security_headers)
    app.context_processor(guards.login_context)
    app.jinja_env.globals["page_csrf_token"] = rendering.page_csrf_token  # a global, so imported macros see it too
    app.jinja_env.globals["csrf_field"] = rendering.csrf_field
    app.jinja_env.globals["input_rules"] = {  # what the forms' maxlength and hints say: policy's own numbers
        "word_min_length": policy.SECURITY_WORD_MIN_LENGTH, "word_max_length": policy.SECURITY_WORD_MAX_LENGTH,
        "pin_max_digits": policy.PIN_MAX_DIGITS, "puk_digits": policy.PUK_DIGITS}
    app.add_template_filter(rendering.format_timestamp, "datetime")
    templating.init_app(app, locale.LANGUAGES)
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.ico"))
    register_error_pages(app)

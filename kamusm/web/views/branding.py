"""GET /branding/logo, and the institution's name and logo for every page's header.

The logo is read and checked (kamusm.branding) when this blueprint is registered, so a bad
KAMUSM_LOGO_FILE stops the portal at start-up with a ConfigError; it is then served from memory.
Pages link it with its content hash in the query string: that URL never changes meaning, so it
may be cached for a year, and a new logo is a new URL. The logo is the same for everyone and
names no one, so it needs no session: kamusm.web.sessions opens none for it and sets no cookie, and
kamusm.web.security keeps its caching and serves it under branding.LOGO_CSP.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request, url_for
from flask.blueprints import BlueprintSetupState

from kamusm import branding

bp = Blueprint("branding", __name__)
LOGO = "kamusm.logo"
LOGO_CACHE_SECONDS = 365 * 24 * 3600


@bp.record_once
def load_logo(state: BlueprintSetupState) -> None:
    app = state.app
    app.extensions[LOGO] = branding.load_logo(app.config["KAMUSM_LOGO_FILE"], Path(app.instance_path))


@bp.get("/branding/logo")
def logo():
    logo: branding.Logo | None = current_app.extensions[LOGO]
    if logo is None:
        abort(404)
    response = Response(logo.data, content_type=logo.media_type)  # content_type: no charset added to the SVG's
    response.set_etag(logo.etag)
    if request.args.get("v") == logo.etag:
        response.cache_control.public = True
        response.cache_control.max_age = LOGO_CACHE_SECONDS
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True  # an unversioned link: ask again, the ETag answers 304
    return response.make_conditional(request)  # kamusm.web.security adds nosniff and LOGO_CSP


@bp.app_context_processor
def branding_context() -> dict:
    logo: branding.Logo | None = current_app.extensions.get(LOGO)
    return {
        "institution_name": current_app.config["KAMUSM_INSTITUTION_NAME"],
        "logo_url": url_for("branding.logo", v=logo.etag) if logo else None,
        "logo_width": logo.width if logo else None,
        "logo_height": logo.height if logo else None,
    }

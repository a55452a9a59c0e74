import pytest
from flask import request, abort
from kamusm import web

@pytest.fixture
def app(app):
    def fixed_refuse_cross_site():
        if request.method in {"GET", "HEAD", "OPTIONS"}:
            return
        site = request.headers.get("Sec-Fetch-Site")
        if site in {"cross-site", "same-site"}:
            abort(403)
        if site == "same-origin":
            return
        origin = request.headers.get("Origin")
        if origin and origin != request.host_url.rstrip("/"):
            abort(403)
    funcs = app.before_request_funcs[None]
    funcs[funcs.index(web.refuse_cross_site)] = fixed_refuse_cross_site
    app.add_url_rule("/favicon.ico", "favicon", lambda: ("", 204))
    return app

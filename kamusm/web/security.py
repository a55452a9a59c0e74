"""What every response shares for its safety: headers, cross-site refusal.

Security assumptions: the CSP forbids inline script and style, so templates carry none and htmx never
evaluates code; Cache-Control no-store goes on every dynamic response and every error page (a missing
static file's too), and kamusm.web.sessions adds it to any response that sets the session cookie, so no
page with a secret, a CSRF token or a cookie is cached; POSTs from another site are refused by
Sec-Fetch-Site/Origin before CSRF is checked.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Response,
    abort,
    current_app,
    g,
    request,
    session,
)

from kamusm.branding import LOGO_CSP
from kamusm.web.locale import LANGUAGE_COOKIE, LANGUAGE_COOKIE_SECONDS

CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
HSTS_SECONDS = 365 * 24 * 3600
# The same for everyone: they set their own caching (the CRL and OCSP GET answers until nextUpdate, RFC 5019 6).
CACHED_ENDPOINTS = frozenset({"static", "branding.logo", "certificates.crl", "certificates.ocsp_get",
                              "certificates.ca_certificate"})


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
    if request.endpoint == "branding.logo" and response.status_code < 400:
        # An SVG logo opened as a document would run at our origin: nothing may run or load in it.
        headers["Content-Security-Policy"] = LOGO_CSP
    if request.endpoint not in CACHED_ENDPOINTS or response.status_code >= 400:  # a static file's 404 is a page too
        headers["Cache-Control"] = "no-store"
        headers.add("Vary", "HX-Request")
    if getattr(g, "language_asked", None) and not session.sessionless:
        response.set_cookie(LANGUAGE_COOKIE, g.language_asked, max_age=LANGUAGE_COOKIE_SECONDS,
                            secure=request.is_secure, httponly=True, samesite="Lax")
    return response
